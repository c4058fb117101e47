"""Tests of the supervisor (devenv.processes) on real processes from a Procfile."""

from __future__ import annotations

import io
import logging
import os
import shlex
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from devenv import pidfiles, processes
from devenv.logs import UNIFIED_LOG_NAME, LogWriter
from devenv.processes import ProcessSpec, Supervisor

PYTHON = shlex.quote(sys.executable)


def python_line(directory: Path, name: str, code: str) -> str:
    """Write `code` to a script and return a Procfile command that runs it (a Procfile line cannot contain a newline)."""
    script = directory / f"{name}.py"
    script.write_text(code)
    return f"exec {PYTHON} {shlex.quote(str(script))}"


def wait_until(predicate, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def group_members(pgid: int) -> list[int]:
    members = []
    for process in psutil.process_iter(["status"]):
        try:
            if os.getpgid(process.pid) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(process.pid)
        except ProcessLookupError:
            continue
    return members


@pytest.fixture
def run_supervisor(tmp_path):
    """Build supervisors over Procfile text; every one is stopped at teardown."""
    supervisors: list[tuple[Supervisor, LogWriter]] = []

    def build(
        procfile: str, printer_output=None, env: dict[str, str] | None = None, reloaded: frozenset[str] = frozenset()
    ) -> Supervisor:
        writer = LogWriter(tmp_path / "logs")
        specs = [replace(spec, reload=spec.name in reloaded) for spec in processes.read_procfile(procfile, {"web": 8000})]
        supervisor = Supervisor(
            specs,
            cwd=tmp_path,
            env={**os.environ, **(env or {})},
            log_writer=writer,
            pids_dir=tmp_path / "pids",
            printer_output=printer_output,
        )
        supervisors.append((supervisor, writer))
        return supervisor

    yield build
    for supervisor, writer in supervisors:
        supervisor.stop([], kill_wait_s=0.5)
        writer.close()
        assert supervisor.running_names() == []


def log_text(tmp_path: Path, name: str) -> str:
    path = tmp_path / "logs" / f"{name}.log"
    return path.read_text() if path.exists() else ""


def test_read_procfile_keeps_order_and_ports():
    specs = processes.read_procfile("# comment\nweb: exec app\nworker: exec job --x\n", {"web": 8000})
    assert specs == [ProcessSpec("web", "exec app", 8000), ProcessSpec("worker", "exec job --x", None)]


def test_describe_exit():
    assert processes.describe_exit(0) == "exited with code 0"
    assert processes.describe_exit(3) == "exited with code 3"
    assert processes.describe_exit(-signal.SIGKILL) == "was killed by SIGKILL"


def test_use_colour_only_on_terminal(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    primary, secondary = os.openpty()
    terminal = os.fdopen(secondary, "w")
    try:
        assert processes.use_colour(io.StringIO()) is False
        assert processes.use_colour(terminal) is True
        monkeypatch.setenv("NO_COLOR", "1")
        assert processes.use_colour(terminal) is False
    finally:
        terminal.close()
        os.close(primary)


def test_output_reaches_logs_without_ansi(tmp_path, run_supervisor):
    code = (
        "import os, time\n"
        "print('cwd', os.getcwd())\n"
        "print('marker', os.environ['SUPERVISOR_TEST'])\n"
        "print('\\x1b[31mred\\x1b[0m text')\n"
        "time.sleep(30)\n"
    )
    supervisor = run_supervisor(f"web: {python_line(tmp_path, 'web', code)}\n", env={"SUPERVISOR_TEST": "passed", "PYTHONUNBUFFERED": "1"})
    supervisor.start_all()

    assert wait_until(lambda: "red text" in log_text(tmp_path, "web"))
    text = log_text(tmp_path, "web")
    assert f"cwd {tmp_path}" in text
    assert "marker passed" in text
    assert "\x1b" not in text
    unified = (tmp_path / "logs" / UNIFIED_LOG_NAME).read_text()
    assert "web                  | red text" in unified
    assert "\x1b" not in unified


def test_pidfile_records_own_process_group(tmp_path, run_supervisor):
    supervisor = run_supervisor("web: exec sleep 30\n")
    supervisor.start_all()

    record = pidfiles.read_record(tmp_path / "pids" / "web.json")
    assert record is not None
    assert record.port == 8000
    assert record.pgid == record.pid
    assert os.getsid(record.pid) == record.pid
    # The shell execs the command, so the recorded pid becomes the program's.
    assert wait_until(lambda: psutil.Process(record.pid).name() == "sleep")
    assert pidfiles.inspect_record(record) is pidfiles.ProcessState.RUNNING

    supervisor.stop([["web"]], kill_wait_s=1)
    assert not (tmp_path / "pids" / "web.json").exists()
    assert pidfiles.inspect_record(record) is pidfiles.ProcessState.GONE


def test_exit_of_one_keeps_others_running(tmp_path, run_supervisor, caplog):
    caplog.set_level(logging.INFO, logger="devenv.processes")
    supervisor = run_supervisor("web: exec sleep 30\nworker: echo bye; exit 3\n")
    supervisor.start_all()

    assert wait_until(lambda: supervisor.exited_codes() == {"worker": 3})
    assert supervisor.running_names() == ["web"]
    worker = pidfiles.read_record(tmp_path / "pids" / "worker.json")
    assert worker.exit_code == 3
    assert "bye" in log_text(tmp_path, "worker")
    assert f"worker (pid {worker.pid}) exited with code 3; the other processes keep running" in caplog.text
    web = pidfiles.read_record(tmp_path / "pids" / "web.json")
    assert pidfiles.inspect_record(web) is pidfiles.ProcessState.RUNNING


def test_stop_follows_stage_order(tmp_path, run_supervisor):
    order_file = tmp_path / "order.txt"
    procfile = ""
    for name in ("core", "module", "gateway"):
        code = (
            "import signal, sys, time\n"
            "def stop(signum, frame):\n"
            f"    open({str(order_file)!r}, 'a').write('{name}\\n')\n"
            "    time.sleep(0.2)\n"
            "    sys.exit(0)\n"
            "signal.signal(signal.SIGTERM, stop)\n"
            "print('ready', flush=True)\n"
            "time.sleep(30)\n"
        )
        procfile += f"{name}: {python_line(tmp_path, name, code)}\n"
    supervisor = run_supervisor(procfile)
    supervisor.start_all()
    assert wait_until(lambda: all("ready" in log_text(tmp_path, name) for name in ("core", "module", "gateway")))

    supervisor.stop([["gateway"], ["module"], ["core"]], kill_wait_s=3)

    assert order_file.read_text().split() == ["gateway", "module", "core"]
    assert supervisor.running_names() == []
    assert list((tmp_path / "pids").glob("*.json")) == []


def test_stop_kills_after_grace_period(tmp_path, run_supervisor, caplog):
    caplog.set_level(logging.INFO, logger="devenv.processes")
    # SIG_IGN survives exec, so `sleep` ignores SIGTERM.
    supervisor = run_supervisor("stubborn: trap '' TERM; exec sleep 30\n")
    supervisor.start_all()
    record = pidfiles.read_record(tmp_path / "pids" / "stubborn.json")
    assert wait_until(lambda: psutil.Process(record.pid).name() == "sleep")

    started = time.monotonic()
    supervisor.stop([["stubborn"]], kill_wait_s=0.5)
    elapsed = time.monotonic() - started

    assert 0.5 <= elapsed < 3
    assert "sending SIGKILL" in caplog.text
    assert f"killed stubborn (pid {record.pid})" in caplog.text
    assert group_members(record.pgid) == []


def test_stop_reaches_whole_process_group(tmp_path, run_supervisor):
    supervisor = run_supervisor("family: sleep 40 & exec sleep 30\n")
    supervisor.start_all()
    record = pidfiles.read_record(tmp_path / "pids" / "family.json")
    assert wait_until(lambda: len(group_members(record.pgid)) == 2)

    supervisor.stop([["family"]], kill_wait_s=2)

    assert group_members(record.pgid) == []


def test_printer_prefixes_lines_without_colour(tmp_path, run_supervisor):
    output = io.StringIO()
    code = "import time; print('\\x1b[32mgreen\\x1b[0m', flush=True); time.sleep(30)"
    supervisor = run_supervisor(f"web: {python_line(tmp_path, 'web', code)}\nworker_long_name: exec sleep 30\n", printer_output=output)
    supervisor.start_all()

    assert wait_until(lambda: "green" in output.getvalue())
    supervisor.print_line("manager", "a manager line")
    lines = output.getvalue().splitlines()
    assert any(line.endswith(" web              | green") for line in lines)
    assert any(line.endswith(" manager          | a manager line") for line in lines)
    assert "\x1b" not in output.getvalue()


def test_exit_stops_rest_of_group(tmp_path, run_supervisor, caplog):
    caplog.set_level(logging.INFO, logger="devenv.processes")
    # `sleep 40` plays the server process that a killed uvicorn reloader leaves behind.
    supervisor = run_supervisor("family: sleep 40 & exec sleep 30\n")
    supervisor.start_all()
    record = pidfiles.read_record(tmp_path / "pids" / "family.json")
    assert wait_until(lambda: len(group_members(record.pgid)) == 2)

    os.kill(record.pid, signal.SIGKILL)

    assert wait_until(lambda: supervisor.exited_codes() == {"family": -signal.SIGKILL})
    assert group_members(record.pgid) == []
    assert f"family (pid {record.pid}) was killed by SIGKILL; stopping what it left in its process group" in caplog.text
    assert f"stopped what family left in process group {record.pgid}" in caplog.text
    assert pidfiles.read_record(tmp_path / "pids" / "family.json").exit_code == -signal.SIGKILL


# A parent that runs its server in a multiprocessing "spawn" child, as uvicorn's
# reloader does. The first child exits at once, as a server process that fails
# to import the app does. The second one starts later, as after a file change.
RELOADER_CODE = """\
import multiprocessing
import time

if __name__ == "__main__":
    context = multiprocessing.get_context("spawn")
    context.Process(target=time.sleep, args=(0.1,)).start()
    time.sleep({restart_after_s})
    context.Process(target=time.sleep, args=(30,)).start()
    time.sleep(30)
"""


def test_find_server_processes_sees_spawn_child(tmp_path, run_supervisor):
    code = RELOADER_CODE.format(restart_after_s=0)
    supervisor = run_supervisor(f"web: {python_line(tmp_path, 'web', code)}\n")
    supervisor.start_all()
    reloader = pidfiles.read_record(tmp_path / "pids" / "web.json").pid

    assert wait_until(lambda: processes.find_server_processes([reloader])[reloader])
    assert processes.find_lost_server_processes({"web": reloader}) == set()


def test_lost_server_process_logged_once(tmp_path, run_supervisor, caplog):
    caplog.set_level(logging.INFO, logger="devenv.processes")
    code = RELOADER_CODE.format(restart_after_s=processes.SERVER_PROCESS_GRACE_S + 1.5)
    supervisor = run_supervisor(f"web: {python_line(tmp_path, 'web', code)}\n", reloaded=frozenset({"web"}))
    supervisor.start_all()
    reloader = pidfiles.read_record(tmp_path / "pids" / "web.json").pid

    def check_until(text: str) -> bool:
        def checked() -> bool:
            supervisor.check_server_processes()
            return text in caplog.text
        return wait_until(checked)

    assert check_until("has no server process")
    assert processes.find_lost_server_processes({"web": reloader}) == {"web"}
    assert check_until("has a server process again")
    assert caplog.text.count("has no server process") == 1
    assert f"web (pid {reloader}) has no server process" in caplog.text
    assert f"web (pid {reloader}) has a server process again (pid " in caplog.text
    assert processes.find_lost_server_processes({"web": reloader}) == set()
