"""The main job end to end: `devenv start --foreground`, as `make dev-multi` runs it.

Real nginx and real uvicorn processes on free ports: REST requests through the
gateway reach the server that runs their module, a datafeed quotes stream works
through nginx, and Ctrl+C (SIGINT to the foreground group) leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from e2e_stack import HOST, REPO_ROOT
from websockets.sync.client import connect

from devenv import ports as devenv_ports

pytestmark = pytest.mark.slow

READY_LINE = "press Ctrl+C to stop"
READY_TIMEOUT_S = 60
EXIT_TIMEOUT_S = 20
WS_TIMEOUT_S = 10


def read_lines(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


@contextmanager
def queue_output(process: subprocess.Popen) -> Iterator[queue.Queue]:
    """Queue the lines `process` prints while the block runs; kill its process group if it still runs after it."""
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=read_lines, args=(process.stdout, lines), daemon=True).start()
    try:
        yield lines
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_for_line(lines: queue.Queue, text: str, timeout_s: float) -> list[str]:
    """Collect output lines until one contains `text`; fail with everything read so far."""
    seen: list[str] = []
    while True:
        try:
            line = lines.get(timeout=timeout_s)
        except queue.Empty:
            pytest.fail(f"no line containing {text!r} within {timeout_s} s; output so far:\n{''.join(seen)}")
        if line is None:
            pytest.fail(f"devenv exited before printing {text!r}; output:\n{''.join(seen)}")
        seen.append(line)
        if text in line:
            return seen


def test_foreground_stack_routes_streams_and_stops(make_stack) -> None:
    stack = make_stack()
    process = stack.devenv_background("start", "--foreground", str(stack.config_path))
    with queue_output(process) as lines:
        output = "".join(wait_for_line(lines, READY_LINE, READY_TIMEOUT_S))
        # nginx writes nothing at startup (its error log is at level warn), so only uvicorn lines are expected.
        for name in stack.instance_ports:
            prefix = re.compile(rf"^\d\d:\d\d:\d\d {re.escape(name)} +\| ", re.MULTILINE)
            assert prefix.search(output), f"no output line prefixed with {name}:\n{output}"
        assert "\x1b[" not in output, "colour codes in output that is not a terminal"

        api = stack.api_base_url
        expected = {
            f"{api}/health": ("core-0", []),
            f"{api}/broker/health": ("broker-0", ["broker"]),
            f"{api}/datafeed/health": ("datafeed-0", ["datafeed"]),
        }
        for path, (instance, modules) in expected.items():
            response = httpx.get(stack.gateway_url(path), timeout=5)
            assert response.status_code == 200, f"{path}: {response.text}"
            body = response.json()
            assert body["port"] == stack.instance_ports[instance], f"{path} answered by port {body['port']}"
            assert body["modules"] == modules

        url = f"ws://{HOST}:{stack.gateway_port}{api}/datafeed/ws"
        with connect(url, open_timeout=WS_TIMEOUT_S) as websocket:
            websocket.send(json.dumps({"type": "quotes.subscribe", "payload": {"symbols": ["AAPL"]}}))
            response = json.loads(websocket.recv(timeout=WS_TIMEOUT_S))
            assert response["type"] == "quotes.subscribe.response"
            assert response["payload"]["status"] == "ok"
            assert response["payload"]["topic"] == 'quotes:{"symbols":["AAPL"]}'
            update = json.loads(websocket.recv(timeout=WS_TIMEOUT_S))
            assert update["type"] == "quotes.update"
            assert update["payload"]["topic"] == response["payload"]["topic"]
            assert update["payload"]["payload"]["quotes"][0]["symbol"] == "AAPL"

        # The gateway's docs are served by core and describe every module.
        spec_paths = httpx.get(stack.gateway_url("/openapi.json"), timeout=5).json()["paths"]
        assert f"{api}/broker/orders" in spec_paths
        assert f"{api}/datafeed/quotes" in spec_paths
        docs = httpx.get(stack.gateway_url("/docs"), timeout=5)
        assert docs.status_code == 200
        assert "swagger-ui" in docs.text

        url = f"ws://{HOST}:{stack.gateway_port}{api}/broker/ws"
        with connect(url, open_timeout=WS_TIMEOUT_S) as websocket:
            websocket.send(json.dumps({"type": "orders.subscribe", "payload": {}}))
            response = json.loads(websocket.recv(timeout=WS_TIMEOUT_S))
            assert response["type"] == "orders.subscribe.response"
            assert response["payload"]["status"] == "ok"
            order = {"symbol": "AAPL", "side": "buy", "type": "market", "quantity": 1}
            placed = httpx.post(stack.gateway_url(f"{api}/broker/orders"), json=order, timeout=5)
            assert placed.status_code == 201, placed.text
            update = json.loads(websocket.recv(timeout=WS_TIMEOUT_S))
            assert update["type"] == "orders.update"
            assert update["payload"]["payload"]["id"] == placed.json()["id"]

        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=EXIT_TIMEOUT_S) == 0

    assert stack.live_processes() == []
    assert devenv_ports.wait_for_ports_free(HOST, stack.ports, 5.0) == []
    assert list(stack.pids_dir.glob("*.json")) == []


def test_fullstack_script_multi(make_stack) -> None:
    stack = make_stack()
    script = REPO_ROOT / "scripts" / "dev-fullstack.sh"
    process = stack.run_background(str(script), "--multi", str(stack.config_path))
    with queue_output(process) as lines:
        wait_for_line(lines, READY_LINE, READY_TIMEOUT_S)
        body = httpx.get(stack.gateway_url(f"{stack.api_base_url}/broker/health"), timeout=5).json()
        assert body["port"] == stack.instance_ports["broker-0"]
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=EXIT_TIMEOUT_S) == 0
    assert stack.live_processes() == []


def test_fullstack_script_rejects_unknown_argument() -> None:
    result = subprocess.run(
        [str(REPO_ROOT / "scripts" / "dev-fullstack.sh"), "--mutli"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert result.stderr == (
        "dev-fullstack.sh: unknown argument '--mutli'; usage: scripts/dev-fullstack.sh [--multi [CONFIG]]\n"
    )
