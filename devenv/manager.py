"""The manager: the process that runs the supervisor (devenv.processes) of a start.

A detached start spawns it as `python -m devenv supervise CONFIG` in a session
of its own. A foreground start runs the same pieces in the devenv process.
Either way the manager records its pid under `state_dir/pids/`, so `stop` and
`status` find it from any shell.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from devenv import pidfiles, render
from devenv.config import DevConfig
from devenv.gateway import GatewayDownMarks
from devenv.logs import LogWriter, LogWriterHandler
from devenv.nginx import find_nginx
from devenv.pidfiles import MANAGER_NAME
from devenv.processes import Supervisor, read_procfile
from devenv.topology import process_ports, process_roles, stop_stages

logger = logging.getLogger(__name__)

MANAGER_POLL_INTERVAL_S = 0.2
# How often StopRequest.wait() looks at the flag its signal handler sets.
STOP_POLL_INTERVAL_S = 0.05
# How often the manager looks for reloaders that lost their server process. Each check scans the process table.
SERVER_PROCESS_CHECK_INTERVAL_S = 0.5
# The signals that make the manager stop every process in order. SIGHUP comes
# when the terminal of a foreground start closes.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
MANAGER_LOG_NAME = f"{MANAGER_NAME}.log"


def spawn_manager(config: DevConfig) -> subprocess.Popen:
    """Launch the manager of a detached start in a session of its own, with its output in MANAGER_LOG_NAME."""
    config.logs_dir.mkdir(parents=True, exist_ok=True)
    with open(config.logs_dir / MANAGER_LOG_NAME, "ab") as manager_log:
        manager = subprocess.Popen(
            [sys.executable, "-m", "devenv", "supervise", str(config.config_path)],
            cwd=config.root,
            stdin=subprocess.DEVNULL,
            stdout=manager_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=child_environment(),
        )
    write_manager_record(config, manager.pid)
    return manager


def write_manager_record(config: DevConfig, pid: int) -> None:
    pidfiles.write_record(
        config.pids_dir, pidfiles.record_for_pid(MANAGER_NAME, pid, config_path=str(config.config_path))
    )


def child_environment() -> dict[str, str]:
    """Return the environment of the manager and every supervised process: devenv's, unbuffered."""
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def build_supervisor(config: DevConfig, nginx_binary: Path, writer: LogWriter, printer_output=None) -> Supervisor:
    """Build a supervisor for the config's Procfile, rendered in memory.

    The Procfile at the root is shared by every config with that root, so the
    supervisor renders its own copy instead of reading a file another start may
    have rewritten.
    """
    procfile_text = render.render_procfile(config, nginx_binary)
    roles = process_roles(config)
    reloaded = {instance.name for instance in config.instances() if config.servers[instance.server].reload}
    specs = [
        replace(spec, role=roles.get(spec.name, ""), reload=spec.name in reloaded)
        for spec in read_procfile(procfile_text, process_ports(config))
    ]
    return Supervisor(
        specs,
        cwd=config.root,
        env=child_environment(),
        log_writer=writer,
        pids_dir=config.pids_dir,
        config_path=str(config.config_path),
        printer_output=printer_output,
    )


def supervise(config: DevConfig) -> int:
    """Run the supervisor of a detached start until SIGTERM, SIGINT or SIGHUP, then stop in order."""
    writer = LogWriter(config.logs_dir)
    handler = attach_manager_log(writer)
    try:
        nginx_binary = find_nginx(config)
        supervisor = build_supervisor(config, nginx_binary, writer)
    except BaseException:
        detach_manager_log(handler, writer)
        raise
    stop_request = StopRequest()
    stop_request.install(STOP_SIGNALS)
    try:
        supervisor.start_all()
        run_until_stopped(supervisor, stop_request, GatewayDownMarks(config, nginx_binary, supervisor))
    finally:
        supervisor.stop(stop_stages(process_roles(config)))
        remove_own_manager_record(config)
        stop_request.restore()
        detach_manager_log(handler, writer)
    return 0


def run_until_stopped(supervisor: Supervisor, stop_request: StopRequest, gateway: GatewayDownMarks) -> None:
    """Watch the processes until a stop request, and mark instances without a server process down in the gateway."""
    next_server_check = time.monotonic()
    while not stop_request.wait(MANAGER_POLL_INTERVAL_S):
        if supervisor.any_exit.is_set() and not supervisor.running_names():
            logger.error("every process has exited; the manager stops")
            return
        if time.monotonic() >= next_server_check:
            gateway.update(supervisor.check_server_processes())
            next_server_check = time.monotonic() + SERVER_PROCESS_CHECK_INTERVAL_S
    logger.info("received %s; stopping every process", stop_request.signal_name)


def discard_output_after_hangup(stop_request: StopRequest) -> None:
    """Point stdout and stderr at /dev/null after SIGHUP, because the terminal is gone and writes to it fail.

    The manager's lines still reach the log files.
    """
    if stop_request.signum != signal.SIGHUP:
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
        os.dup2(devnull, sys.stderr.fileno())
    finally:
        os.close(devnull)


def attach_manager_log(writer: LogWriter, echo_line: Callable[[str, str], None] | None = None) -> logging.Handler:
    handler = LogWriterHandler(writer, MANAGER_NAME, echo_line)
    handler.setFormatter(logging.Formatter("%(message)s"))
    package_logger = logging.getLogger("devenv")
    package_logger.addHandler(handler)
    package_logger.setLevel(logging.INFO)
    return handler


def detach_manager_log(handler: logging.Handler, writer: LogWriter) -> None:
    logging.getLogger("devenv").removeHandler(handler)
    writer.close()


class StopRequest:
    """Request to stop, set by SIGINT, SIGTERM or SIGHUP and acted on by the manager's main loop.

    The signal handler only assigns two attributes. It must not take a lock:
    threading.Event.set() in a handler deadlocks when the signal arrives while
    the main thread holds that Event's lock inside Event.wait(), which is
    where the main loop spends its time.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self.signal_name: str | None = None
        self._previous: dict[int, object] = {}

    def install(self, signums: tuple[signal.Signals, ...]) -> None:
        """Handle these signals until `restore()`."""
        for signum in signums:
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        """Put the previous handlers back."""
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def is_set(self) -> bool:
        return self.signum is not None

    def wait(self, timeout_s: float) -> bool:
        """Sleep until a stop is requested or `timeout_s` passes; return whether one was requested."""
        deadline = time.monotonic() + timeout_s
        while self.signum is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(remaining, STOP_POLL_INTERVAL_S))
        return self.signum is not None

    def _handle(self, signum: int, _frame) -> None:
        self.signal_name = signal.Signals(signum).name
        self.signum = signum


def remove_own_manager_record(config: DevConfig) -> None:
    # The manager removes its own record as its last step, just before it exits,
    # so that a clean stop leaves no stale pidfile to report at the next start.
    record = pidfiles.read_record(pidfiles.record_path(config.pids_dir, MANAGER_NAME))
    if record is not None and record.pid == os.getpid():
        pidfiles.remove_record(config.pids_dir, MANAGER_NAME)

