"""The supervisor: runs the Procfile's processes, logs their output and stops them in order.

Built on honcho's pieces: `parse_procfile` reads the Procfile,
`honcho.process.Popen` starts each line through the shell in its own session
(so its pid is also its process group id), and `Printer` writes the
colour-prefixed output on a terminal. Unlike honcho's Manager, one process
exiting does not stop the others: the exit is logged and recorded in its PID
file, whatever it left in its process group is stopped, and the rest keep
running.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

import psutil
from honcho.colour import get_colours
from honcho.environ import parse_procfile
from honcho.printer import Message, Printer
from honcho.process import Popen

from devenv import pidfiles
from devenv.logs import LogWriter, strip_ansi

logger = logging.getLogger(__name__)

KILL_WAIT_S = 3.0
# After SIGKILL the kernel frees a process almost at once; this bounds the wait for it.
KILL_CONFIRM_S = 2.0
GROUP_POLL_INTERVAL_S = 0.05
# A reader thread ends when every process holding the pipe has closed it; a
# grandchild that outlives its parent can hold it longer than this.
READER_JOIN_TIMEOUT_S = 1.0
# NOTE: finding a reloader's server process relies on how uvicorn's reloader works
# (checked with uvicorn 0.55). The reloader, whose pid devenv records, runs the
# server in a multiprocessing "spawn" child whose command line contains
# `spawn_main`. It starts a new one only after a file change. If uvicorn changes
# this, a reloader without a server process is no longer reported.
SERVER_PROCESS_MARKER = "spawn_main"
# How long a reloader may have no server process before it counts as lost. In a
# reload, uvicorn 0.55 starts the new server process right after the old one exits.
SERVER_PROCESS_GRACE_S = 0.5
SERVER_PROCESS_POLL_INTERVAL_S = 0.1


@dataclass(frozen=True)
class ProcessSpec:
    """One Procfile line: its name, shell command and the port it listens on.

    `role` is a pidfiles.ROLE_* name, and `reload` marks a uvicorn instance that runs under uvicorn's reloader.
    """

    name: str
    command: str
    port: int | None = None
    role: str = ""
    reload: bool = False


def read_procfile(text: str, ports: dict[str, int]) -> list[ProcessSpec]:
    """Parse Procfile text into specs, in file order, taking each port from `ports`."""
    procfile = parse_procfile(text)
    return [
        ProcessSpec(name=name, command=command, port=ports.get(name))
        for name, command in procfile.processes.items()
    ]


def describe_exit(returncode: int) -> str:
    """Return "exited with code 1" or "was killed by SIGKILL" for a Popen return code."""
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


def use_colour(output: TextIO) -> bool:
    """Return whether output gets ANSI colours: on a terminal, unless NO_COLOR is set."""
    if os.environ.get("NO_COLOR"):
        return False
    try:
        return output.isatty()
    except (AttributeError, ValueError):
        return False


@dataclass
class _Child:
    spec: ProcessSpec
    colour: str | None
    popen: Popen | None = None
    returncode: int | None = None
    stopping: bool = False
    finished: bool = False
    reader: threading.Thread | None = None
    exited: threading.Event = field(default_factory=threading.Event)


class Supervisor:
    """Supervisor of a list of processes, each in its own session, with output to the log files.

    `printer_output` receives the colour-prefixed lines (foreground mode); None
    means the output only goes to the log files.
    """

    def __init__(
        self,
        specs: list[ProcessSpec],
        cwd: Path,
        env: dict[str, str],
        log_writer: LogWriter,
        pids_dir: Path,
        config_path: str = "",
        printer_output: TextIO | None = None,
    ) -> None:
        self.cwd = cwd
        self.env = env
        self.log_writer = log_writer
        self.pids_dir = pids_dir
        self.config_path = config_path
        colours = get_colours()
        self._children = {spec.name: _Child(spec, next(colours)) for spec in specs}
        self._printer: Printer | None = None
        self._print_lock = threading.Lock()
        self._colour = False
        self.any_exit = threading.Event()
        self._server_monitor = ServerProcessMonitor()
        self._lost_server_processes: set[str] = set()
        if printer_output is not None:
            self._colour = use_colour(printer_output)
            width = max([len(pidfiles.MANAGER_NAME), *(len(name) for name in self._children)])
            self._printer = Printer(printer_output, width=width, colour=self._colour)

    @property
    def names(self) -> list[str]:
        return list(self._children)

    def start_all(self) -> None:
        """Start every process in Procfile order and write its PID file."""
        for child in self._children.values():
            self._start(child)

    def running_names(self) -> list[str]:
        """Return the names of the processes whose main pid has not exited."""
        return [name for name, child in self._children.items() if child.popen and not child.exited.is_set()]

    def exited_codes(self) -> dict[str, int]:
        """Return the return code of every process that has exited."""
        return {
            name: child.returncode
            for name, child in self._children.items()
            if child.exited.is_set() and child.returncode is not None
        }

    def print_line(self, name: str, text: str, colour: str | None = None, moment: datetime | None = None) -> None:
        """Print a line with the name prefix, when running in the foreground.

        Without colour, ANSI codes in the text are removed as well.
        """
        if self._printer is None:
            return
        if not self._colour:
            text = strip_ansi(text)
        message = Message(type="line", data=text, time=moment or datetime.now(), name=name, colour=colour)
        with self._print_lock:
            try:
                self._printer.write(message)
            except OSError:
                # A closed terminal fails writes with EIO. The line is in the log files already.
                pass

    def running_pid(self, name: str) -> int | None:
        """Return the pid of a process whose main pid has not exited, or None."""
        child = self._children.get(name)
        if child is None or child.popen is None or child.exited.is_set():
            return None
        return child.popen.pid

    def send_signal(self, name: str, signum: signal.Signals) -> bool:
        """Send a signal to a process's main pid; return False when it has exited.

        Popen.send_signal polls first and skips a process that it has reaped, which narrows the window for
        signalling a reused pid.
        """
        child = self._children.get(name)
        if child is None or child.popen is None or child.exited.is_set():
            return False
        child.popen.send_signal(signum)
        return child.popen.returncode is None

    def check_server_processes(self) -> set[str]:
        """Log once when a reloader's server process is lost and once when it is back.

        Returns the names of the running reloaders that have no server process now.
        """
        reloaders = {
            name: child.popen.pid
            for name, child in self._children.items()
            if child.spec.reload and child.popen is not None and not child.exited.is_set() and not child.stopping
        }
        lost = self._server_monitor.check(reloaders)
        for name in sorted(lost - self._lost_server_processes):
            logger.warning(
                "%s (pid %d) has no server process: the one uvicorn's reloader started has exited, "
                "and the reloader starts a new one only after a file change; see %s",
                name,
                reloaders[name],
                self.log_writer.logs_dir / f"{name}.log",
            )
        reported = self._lost_server_processes & set(reloaders)
        candidates = sorted(reported - lost)
        server_processes = find_server_processes(reloaders[name] for name in candidates) if candidates else {}
        for name in candidates:
            found = server_processes.get(reloaders[name])
            if not found:
                continue
            logger.info(
                "%s (pid %d) has a server process again (pid %s)", name, reloaders[name], ", ".join(map(str, found))
            )
            reported.discard(name)
        self._lost_server_processes = reported | lost
        return set(self._lost_server_processes)

    def stop(self, stages: Iterable[Iterable[str]], kill_wait_s: float = KILL_WAIT_S) -> None:
        """Stop the processes stage by stage; processes in no stage are stopped last."""
        remaining = dict(self._children)
        ordered: list[list[_Child]] = []
        for stage in stages:
            ordered.append([remaining.pop(name) for name in stage if name in remaining])
        ordered.append(list(remaining.values()))

        for stage_children in ordered:
            started = [child for child in stage_children if child.popen is not None and not child.finished]
            already_exited = {child.spec.name for child in started if child.exited.is_set()}
            for child in started:
                child.stopping = True
            # A process that already exited can leave members of its group behind, so every group is signalled.
            groups = {child.spec.name: child.popen.pid for child in started}
            killed = terminate_groups(groups, kill_wait_s)
            for child in started:
                child.exited.wait(READER_JOIN_TIMEOUT_S + KILL_CONFIRM_S)
                if child.spec.name in killed:
                    outcome = "killed"
                elif child.spec.name in already_exited:
                    outcome = "cleaned up after"
                else:
                    outcome = "stopped"
                self._finish(child, outcome)

    def _start(self, child: _Child) -> None:
        spec = child.spec
        child.popen = Popen(spec.command, env=self.env, cwd=str(self.cwd))
        pid = child.popen.pid
        try:
            record = pidfiles.record_for_pid(
                spec.name, pid, spec.port, self.config_path, role=spec.role, reload=spec.reload
            )
        except (psutil.NoSuchProcess, ProcessLookupError):
            # The shell exited before psutil could read it; the waiter thread reports the exit.
            record = pidfiles.PidRecord(
                name=spec.name, pid=pid, pgid=pid, create_time=0.0, port=spec.port, role=spec.role, reload=spec.reload
            )
        pidfiles.write_record(self.pids_dir, record)
        port_note = f", port {spec.port}" if spec.port is not None else ""
        logger.info("started %s (pid %d%s)", spec.name, pid, port_note)

        child.reader = threading.Thread(target=self._read_output, args=(child,), name=f"read-{spec.name}", daemon=True)
        child.reader.start()
        threading.Thread(target=self._wait_for_exit, args=(child,), name=f"wait-{spec.name}", daemon=True).start()

    def _read_output(self, child: _Child) -> None:
        stream = child.popen.stdout
        for raw_line in iter(stream.readline, b""):
            text = raw_line.decode("utf-8", "replace").rstrip("\r\n")
            now = datetime.now()
            self.log_writer.write(child.spec.name, text, now)
            self.print_line(child.spec.name, text, child.colour, now)
        stream.close()

    def _wait_for_exit(self, child: _Child) -> None:
        child.returncode = child.popen.wait()
        pid = child.popen.pid
        leftovers = [] if child.stopping else pidfiles.group_member_pids(pid)
        if leftovers:
            # A killed uvicorn reloader, for example, leaves its server process
            # here, which would keep serving the port without a supervisor.
            logger.warning(
                "%s (pid %d) %s; stopping what it left in its process group %d (pids %s); "
                "the other processes keep running",
                child.spec.name,
                pid,
                describe_exit(child.returncode),
                pid,
                ", ".join(map(str, leftovers)),
            )
            self._record_exit(child)
            self._stop_leftovers(child)
        # Let the reader drain the last lines so that they reach the logs before the exit is reported.
        child.reader.join(READER_JOIN_TIMEOUT_S)
        if not child.stopping and not leftovers:
            logger.warning(
                "%s (pid %d) %s; the other processes keep running",
                child.spec.name,
                pid,
                describe_exit(child.returncode),
            )
            self._record_exit(child)
        child.exited.set()
        self.any_exit.set()

    def _stop_leftovers(self, child: _Child) -> None:
        name, pgid = child.spec.name, child.popen.pid
        killed = terminate_groups({name: pgid}, KILL_WAIT_S)
        if pidfiles.group_has_members(pgid):
            logger.error("what %s left in process group %d still runs after SIGKILL", name, pgid)
        else:
            outcome = "killed" if killed else "stopped"
            logger.info("%s what %s left in process group %d", outcome, name, pgid)

    def _record_exit(self, child: _Child) -> None:
        record = pidfiles.read_record(pidfiles.record_path(self.pids_dir, child.spec.name))
        if record is not None and record.pid == child.popen.pid:
            record.exit_code = child.returncode
            pidfiles.write_record(self.pids_dir, record)

    def _finish(self, child: _Child, outcome: str) -> None:
        pid = child.popen.pid
        if not child.exited.is_set() or pidfiles.group_has_members(pid):
            logger.error("%s (process group %d) still runs after SIGKILL; its pidfile is kept", child.spec.name, pid)
            return
        logger.info("%s %s (pid %d)", outcome, child.spec.name, pid)
        child.finished = True
        pidfiles.remove_record(self.pids_dir, child.spec.name)


def terminate_groups(groups: dict[str, int], kill_wait_s: float) -> set[str]:
    """Send SIGTERM to each named process group, SIGKILL to those left after `kill_wait_s`.

    Returns the names that needed SIGKILL. Returns once every group is empty or
    KILL_CONFIRM_S after the SIGKILL.
    """
    _signal_groups(groups.values(), signal.SIGTERM)
    left = _wait_for_groups_empty(groups, kill_wait_s)
    if not left:
        return set()
    for name in left:
        logger.warning("%s (process group %d) still runs %.1f s after SIGTERM; sending SIGKILL", name, groups[name], kill_wait_s)
    _signal_groups((groups[name] for name in left), signal.SIGKILL)
    _wait_for_groups_empty({name: groups[name] for name in left}, KILL_CONFIRM_S)
    return set(left)


def _signal_groups(pgids: Iterable[int], signum: signal.Signals) -> None:
    for pgid in pgids:
        try:
            os.killpg(pgid, signum)
        except ProcessLookupError:
            continue


def _wait_for_groups_empty(groups: dict[str, int], timeout_s: float) -> list[str]:
    deadline = time.monotonic() + timeout_s
    left = [name for name, pgid in groups.items() if pidfiles.group_has_members(pgid)]
    while left and time.monotonic() < deadline:
        time.sleep(GROUP_POLL_INTERVAL_S)
        left = [name for name in left if pidfiles.group_has_members(groups[name])]
    return left


def find_server_processes(reloader_pids: Iterable[int]) -> dict[int, list[int] | None]:
    """Map each uvicorn reloader pid to the pids of its live server processes.

    None means the reloader has no child yet, so it has not started a server
    process (or it is gone). One scan of the process table serves every reloader.
    """
    children: dict[int, list[psutil.Process]] = {pid: [] for pid in reloader_pids}
    for process in psutil.process_iter(["ppid"]):
        parent = process.info["ppid"]
        if parent in children:
            children[parent].append(process)
    return {
        pid: [child.pid for child in found if _is_server_process(child)] if found else None
        for pid, found in children.items()
    }


def _is_server_process(process: psutil.Process) -> bool:
    try:
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return any(SERVER_PROCESS_MARKER in part for part in process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


class ServerProcessMonitor:
    """Tracker of uvicorn reloaders that finds those without a server process for longer than `grace_s`."""

    def __init__(self, grace_s: float = SERVER_PROCESS_GRACE_S) -> None:
        self.grace_s = grace_s
        self._missing_since: dict[tuple[str, int], float] = {}

    @property
    def missing(self) -> set[str]:
        """The names whose reloader had no server process at the last check, lost or not yet."""
        return {name for name, _ in self._missing_since}

    def check(self, reloaders: dict[str, int]) -> set[str]:
        """Return the names in `reloaders` (name to reloader pid) whose server process is lost.

        A reloader that has started no child yet is still starting and does not count.
        """
        now = time.monotonic()
        server_processes = find_server_processes(reloaders.values())
        missing_since: dict[tuple[str, int], float] = {}
        lost = set()
        for name, pid in reloaders.items():
            if server_processes.get(pid) is None or server_processes[pid]:
                continue
            since = self._missing_since.get((name, pid), now)
            missing_since[(name, pid)] = since
            if now - since >= self.grace_s:
                lost.add(name)
        self._missing_since = missing_since
        return lost


def find_lost_server_processes(reloaders: dict[str, int], grace_s: float = SERVER_PROCESS_GRACE_S) -> set[str]:
    """Return the names whose reloader has no server process, watching a missing one for `grace_s` first.

    Returns at once when every reloader has a server process or has started none yet.
    """
    monitor = ServerProcessMonitor(grace_s)
    while True:
        lost = monitor.check(reloaders)
        if not monitor.missing - lost:
            return lost
        time.sleep(SERVER_PROCESS_POLL_INTERVAL_S)
