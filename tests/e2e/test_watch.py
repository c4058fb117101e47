"""End-to-end tests of watch mode and code generation on the real stack.

Each test copies backend/src into tmp_path, makes tmp_path the config's root
and puts the copy first on PYTHONPATH. uvicorn then imports and watches the
copy, the pre_start hook (`python -m trading_api.codegen`) writes specs and
clients into it, and the tests edit its source files, never the checkout's.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from e2e_stack import DEFAULT_SERVERS, HOST, REPO_ROOT, Stack, wait_until, write_until
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

pytestmark = pytest.mark.slow

SOURCE_DIR = REPO_ROOT / "backend" / "src"
CODEGEN_HOOK = f"{shlex.quote(sys.executable)} -m trading_api.codegen"
CLIENT_DRIVER = Path(__file__).with_name("generated_client_driver.py")
# uvicorn's reloader logs this line each time it restarts its worker.
RELOAD_MESSAGE = "Reloading..."
QUIET_AFTER_START_S = 10.0
QUIET_AFTER_WRITE_S = 3.0
# An estimate with a wide margin: a reload here takes one to three seconds.
RELOAD_TIMEOUT_S = 20.0
REQUEST_TIMEOUT_S = 2.0
WEBSOCKET_TIMEOUT_S = 5.0
QUOTES_SUBSCRIBE = {"type": "quotes.subscribe", "payload": {"symbols": ["AAPL"]}}
QUOTES_TOPIC = 'quotes:{"symbols":["AAPL"]}'


# Building a stack that runs a copy of the backend.


def ignore_generated(directory: str, names: list[str]) -> set[str]:
    """Leave out caches and everything the code generation writes, so the copy starts without them."""
    ignored = {name for name in names if name in ("__pycache__", "clients", "openapi.json") or name.endswith(".pyc")}
    if Path(directory).parent.name == "modules" and "specs" in names:
        ignored.add("specs")
    return ignored


def make_watch_stack(make_stack, root: Path, reload: bool = True, watch: dict | None = None) -> Stack:
    """Copy backend/src under `root` and return a stack whose root is `root`, with code generation as its hook."""
    shutil.copytree(SOURCE_DIR, root / "backend" / "src", ignore=ignore_generated)
    servers = {name: {**settings, "reload": reload} for name, settings in DEFAULT_SERVERS.items()}
    overrides: dict = {"root": str(root), "hooks": {"pre_start": [CODEGEN_HOOK]}}
    if watch is not None:
        overrides["watch"] = watch
    python_path = os.pathsep.join(filter(None, [str(root / "backend" / "src"), os.environ.get("PYTHONPATH")]))
    return make_stack(servers=servers, overrides=overrides, env={"PYTHONPATH": python_path})


def package_dir(root: Path) -> Path:
    """Return the trading_api package of the copy under `root`."""
    return root / "backend" / "src" / "trading_api"


def start_stack(stack: Stack) -> subprocess.CompletedProcess:
    result = stack.start()
    assert result.returncode == 0, f"devenv start failed:\n{result.stdout}\n{result.stderr}"
    return result


# Reading the stack's state.


def reload_lines(stack: Stack) -> dict[str, list[str]]:
    """Return each instance's log lines that announce a reload, leaving out instances without any."""
    found = {}
    for name in stack.instance_ports:
        path = stack.logs_dir / f"{name}.log"
        text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
        lines = [line for line in text.splitlines() if RELOAD_MESSAGE in line]
        if lines:
            found[name] = lines
    return found


def instance_log(stack: Stack, name: str) -> str:
    return (stack.logs_dir / f"{name}.log").read_text(encoding="utf-8", errors="replace")


def get(url: str) -> requests.Response:
    session = requests.Session()
    session.trust_env = False
    return session.get(url, timeout=REQUEST_TIMEOUT_S)


def worker_pid(stack: Stack, name: str) -> int | None:
    """Return the pid that the instance's health route reports, or None when it does not respond with 200."""
    try:
        response = get(stack.instance_url(name, "/api/v1/health"))
    except requests.RequestException:
        return None
    return response.json()["pid"] if response.status_code == 200 else None


def wait_for_new_worker(stack: Stack, name: str, old_pid: int) -> int:
    """Wait until a worker other than `old_pid` serves the instance's health route; return the new pid."""
    assert wait_until(lambda: worker_pid(stack, name) not in (None, old_pid), RELOAD_TIMEOUT_S), (
        f"{name} got no new healthy worker within {RELOAD_TIMEOUT_S} s; its log:\n{instance_log(stack, name)}"
    )
    return worker_pid(stack, name)


def process_status(report: dict, name: str) -> dict:
    return next(entry for entry in report["processes"] if entry["name"] == name)


# Editing the copy.


def append_comment(path: Path) -> None:
    """Change a source file without changing what it does."""
    with path.open("a", encoding="utf-8") as handle:
        handle.write(f"\n# touched by a watch test at {time.time()}\n")


def add_field_to_model(path: Path, model: str, field_line: str) -> None:
    """Insert `field_line` as the last line of the body of class `model` in `path`."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith(f"class {model}("))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].strip()), len(lines))
    lines.insert(end, f"    {field_line}\n")
    path.write_text("".join(lines), encoding="utf-8")


# WebSockets.


def receive_message(connection: ClientConnection, message_type: str) -> dict:
    """Return the next message of `message_type`, skipping others, within WEBSOCKET_TIMEOUT_S."""
    deadline = time.monotonic() + WEBSOCKET_TIMEOUT_S
    while True:
        message = json.loads(connection.recv(timeout=max(deadline - time.monotonic(), 0.01)))
        if message["type"] == message_type:
            return message


def subscribe_to_quotes(connection: ClientConnection) -> None:
    connection.send(json.dumps(QUOTES_SUBSCRIBE))
    reply = receive_message(connection, "quotes.subscribe.response")
    assert reply["payload"]["status"] == "ok", reply
    update = receive_message(connection, "quotes.update")
    assert update["payload"]["topic"] == QUOTES_TOPIC


def wait_for_close(connection: ClientConnection, timeout_s: float) -> bool:
    """Read and drop messages until the server closes the connection; return whether it did in time."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            connection.recv(timeout=max(deadline - time.monotonic(), 0.01))
        except ConnectionClosed:
            return True
        except TimeoutError:
            return False
    return False


# Tests.


def test_generated_files_trigger_no_reload(make_stack, tmp_path):
    # Watching the whole root puts the state_dir (logs, PID files) and scripts/ inside
    # a watched directory, so only their exclusion keeps writes there from reloading.
    (tmp_path / "notes").mkdir()
    stack = make_watch_stack(make_stack, tmp_path, watch={"dirs": ["."], "exclude": ["notes"]})
    result = start_stack(stack)
    started = time.monotonic()
    package = package_dir(tmp_path)
    clients = package / "clients" / "rest"
    assert "generated the clients" in result.stdout
    assert (clients / "__init__.py").is_file()

    written = {
        package / "openapi.json": "{}\n",
        package / "modules" / "broker" / "specs" / "asyncapi.json": "{}\n",
        package / "modules" / "datafeed" / "specs" / "asyncapi.json": "{}\n",
        clients / "client.py": "# rewritten\n",
        clients / "api" / "broker" / "probe.py": "VALUE = 1\n",
        clients / "nested" / "deeper" / "__init__.py": "VALUE = 1\n",
        stack.logs_dir / "probe.log": "a log line\n",
        stack.logs_dir / "probe.py": "VALUE = 1\n",
        stack.pids_dir / "probe.py": "VALUE = 1\n",
        tmp_path / "scripts" / "probe.py": "VALUE = 1\n",
        package / "__pycache__" / "probe.cpython-311.pyc": "not bytecode\n",
        tmp_path / "notes" / "deep" / "probe.py": "VALUE = 1\n",
    }
    for path, text in written.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    # A PID file is rewritten with its own content, so devenv stop still reads it.
    pid_file = stack.pids_dir / "broker-0.json"
    pid_file.write_bytes(pid_file.read_bytes())
    written_at = time.monotonic()

    time.sleep(max(started + QUIET_AFTER_START_S, written_at + QUIET_AFTER_WRITE_S) - time.monotonic())
    assert reload_lines(stack) == {}

    # The watcher is live: a change to shared code reloads every server.
    append_comment(package / "settings.py")
    assert wait_until(lambda: len(reload_lines(stack)) == len(stack.instance_ports), RELOAD_TIMEOUT_S), reload_lines(
        stack
    )


def test_model_change_reaches_gateway_and_spec(make_stack, tmp_path):
    stack = make_watch_stack(make_stack, tmp_path)
    start_stack(stack)
    package = package_dir(tmp_path)
    fingerprint = (package / "clients" / "rest" / ".fingerprint").read_text()
    old_pid = worker_pid(stack, "datafeed-0")

    add_field_to_model(package / "modules" / "datafeed" / "models.py", "DatafeedConfig", 'reload_probe: str = "new"')
    wait_for_new_worker(stack, "datafeed-0", old_pid)

    response = get(stack.gateway_url("/api/v1/datafeed/config"))
    assert response.status_code == 200
    assert response.json()["reload_probe"] == "new"
    spec = json.loads((package / "openapi.json").read_text())
    assert "reload_probe" in spec["components"]["schemas"]["DatafeedConfig"]["properties"]
    # Reloads regenerate the specs but never the clients.
    assert (package / "clients" / "rest" / ".fingerprint").read_text() == fingerprint
    assert "reload_probe" not in (package / "clients" / "rest" / "models" / "datafeed_config.py").read_text()
    # Servers that do not run datafeed do not watch its folder.
    assert set(reload_lines(stack)) == {"datafeed-0"}


def test_reload_with_connected_websocket(make_stack, tmp_path):
    stack = make_watch_stack(make_stack, tmp_path)
    start_stack(stack)
    url = f"ws://{HOST}:{stack.gateway_port}/api/v1/datafeed/ws"
    old_pid = worker_pid(stack, "datafeed-0")

    with connect(url, open_timeout=WEBSOCKET_TIMEOUT_S) as connection:
        subscribe_to_quotes(connection)
        append_comment(package_dir(tmp_path) / "modules" / "datafeed" / "service.py")
        # The client stays connected while the reload runs.
        wait_for_new_worker(stack, "datafeed-0", old_pid)
        assert wait_for_close(connection, WEBSOCKET_TIMEOUT_S), "the reloaded server left the old connection open"

    with connect(url, open_timeout=WEBSOCKET_TIMEOUT_S) as connection:
        subscribe_to_quotes(connection)


def test_syntax_error_then_fix_recovers(make_stack, tmp_path):
    stack = make_watch_stack(make_stack, tmp_path)
    start_stack(stack)
    source = package_dir(tmp_path) / "modules" / "broker" / "service.py"
    original = source.read_text(encoding="utf-8")
    reloader_pid = stack.pid_records()["broker-0"]["pid"]
    old_pid = worker_pid(stack, "broker-0")

    assert write_until(
        source, original + "\ndef broken(:\n", lambda: "SyntaxError" in instance_log(stack, "broker-0"), RELOAD_TIMEOUT_S
    ), instance_log(stack, "broker-0")
    exit_status, report = stack.status()
    broker = process_status(report, "broker-0")
    assert exit_status == 1
    assert report["state"] == "degraded"
    assert broker["alive"] is True
    assert broker["pid"] == reloader_pid
    assert broker["health"]["healthy"] is False

    source.write_text(original, encoding="utf-8")
    wait_for_new_worker(stack, "broker-0", old_pid)
    # The manager puts the instance back in the gateway within about a second of the new worker.
    assert wait_until(lambda: stack.status()[0] == 0, RELOAD_TIMEOUT_S), stack.status()[1]
    exit_status, report = stack.status()
    assert exit_status == 0, report
    assert process_status(report, "broker-0")["pid"] == reloader_pid
    assert get(stack.gateway_url("/api/v1/broker/health")).status_code == 200


def test_generated_clients_drive_broker_and_datafeed(make_stack, tmp_path):
    stack = make_watch_stack(make_stack, tmp_path, reload=False)
    start_stack(stack)

    driver = subprocess.run(
        [sys.executable, str(CLIENT_DRIVER), stack.gateway_url()],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert driver.returncode == 0, driver.stderr
    results = json.loads(driver.stdout)

    assert results["client_module"] == "trading_api.clients.rest.client"
    assert results["types"] == {
        "config": "DatafeedConfig",
        "symbol": "SymbolInfo",
        "quotes": "QuotesResponse",
        "placed": "Order",
        "fetched": "Order",
        "orders": ["Order"],
        "account": "Account",
    }
    assert results["config_max_bars"] > 0
    assert results["symbol_full_name"] == "NASDAQ:AAPL"
    assert results["quote_symbols"] == ["AAPL", "MSFT"]
    assert results["placed"]["symbol"] == "MSFT"
    assert results["placed"]["side"] == "buy"
    assert results["placed"]["quantity"] == 3
    assert results["fetched_id"] == results["placed"]["id"]
    assert results["order_ids"] == [results["placed"]["id"]]
    assert results["account_currency"] == "USD"
    # Error statuses arrive parsed into the error model, not as None.
    assert results["errors"]["missing_order"] == {
        "status": 404,
        "type": "ErrorResponse",
        "detail": "order_id 'ord-999' not found",
    }
    assert results["errors"]["unknown_symbol"]["status"] == 404
    assert results["errors"]["unknown_symbol"]["type"] == "ErrorResponse"
    assert results["errors"]["unknown_symbol"]["detail"].startswith("symbol 'NOPE' not found")
    assert results["errors"]["cancelled_again"] == {
        "status": 409,
        "type": "ErrorResponse",
        "detail": f"order '{results['limit_order_id']}' is cancelled; only working orders can be modified or cancelled",
    }
