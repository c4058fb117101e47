"""Routing through the rendered nginx.conf on real nginx and uvicorn processes.

Stacks come from the `make_stack` fixture (free ports, config in tmp_path,
root at this checkout, leftover check at teardown). Balance and WebSocket tests
start them with `devenv start`; the others run the rendered Procfile with plain
`honcho -f PROCFILE start`, as a developer without devenv's lifecycle would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from e2e_stack import HOST, REPO_ROOT, Stack, wait_until
from websockets.sync.client import connect

from devenv import nginx, render
from devenv import ports as devenv_ports
from devenv.config import load_config

pytestmark = pytest.mark.slow

READY_TIMEOUT_S = 30.0
HONCHO_STOP_TIMEOUT_S = 15.0
PORT_RELEASE_TIMEOUT_S = 5.0
WS_REPLY_TIMEOUT_S = 10.0
REQUESTS_PER_CHECK = 10
HONCHO = Path(sys.executable).parent / "honcho"
BARS_SUBSCRIBE = {"type": "bars.subscribe", "payload": {"symbol": "AAPL", "resolution": "1"}}
ORDERS_SUBSCRIBE = {"type": "orders.subscribe", "payload": {}}


def start_stack(stack: Stack) -> None:
    result = stack.start()
    assert result.returncode == 0, result.stdout + result.stderr


def health_ports(stack: Stack, path: str = "/api/v1/health") -> list[int]:
    """Send REQUESTS_PER_CHECK requests through the gateway; return the port of the instance that served each."""
    ports = []
    for _ in range(REQUESTS_PER_CHECK):
        response = httpx.get(stack.gateway_url(path), timeout=5)
        assert response.status_code == 200, response.text
        ports.append(response.json()["port"])
    return ports


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def ws_request(url: str, *messages: dict) -> list[dict]:
    """Open a WebSocket, send each message and return the reply to each, skipping stream updates."""
    replies = []
    with connect(url, open_timeout=WS_REPLY_TIMEOUT_S) as websocket:
        for message in messages:
            websocket.send(json.dumps(message))
            reply = json.loads(websocket.recv(timeout=WS_REPLY_TIMEOUT_S))
            while reply["type"].endswith(".update"):
                reply = json.loads(websocket.recv(timeout=WS_REPLY_TIMEOUT_S))
            replies.append(reply)
    return replies


@contextmanager
def honcho_running(stack: Stack, *process_names: str) -> Iterator[subprocess.Popen]:
    """Render the stack's files, run `honcho -f PROCFILE start [NAMES]` and stop it with SIGTERM.

    honcho runs from the project root in its own session. Its output goes to
    honcho.log beside the config, so a full pipe cannot block it.
    """
    config = load_config(stack.config_path)
    binary = nginx.find_nginx(config)
    nginx.prepare_dirs(config)
    render.create_excluded_dirs(config)
    conf_text = render.render_nginx_conf(config)
    render.validate_nginx_conf(config, binary, conf_text)
    render.write_if_changed(config.nginx_conf_path, conf_text)
    # Not the project root's Procfile, which other tests rewrite for their own configs.
    procfile = stack.config_path.parent / "Procfile"
    render.write_if_changed(procfile, render.render_procfile(config, binary))

    with open(stack.config_path.parent / "honcho.log", "w") as log:
        process = subprocess.Popen(
            [str(HONCHO), "-f", str(procfile), "start", *process_names],
            cwd=REPO_ROOT,
            env=stack.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        stop_honcho(process)


def stop_honcho(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=HONCHO_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise


def honcho_log(stack: Stack) -> str:
    return (stack.config_path.parent / "honcho.log").read_text()


def test_round_robin_spreads_requests(make_stack):
    stack = make_stack(servers={"core": {"instances": 2, "balance": "round_robin"}})
    start_stack(stack)

    ports = health_ports(stack)

    assert set(ports) == set(stack.instance_ports.values())


def test_ip_hash_keeps_client_on_one_instance(make_stack):
    stack = make_stack(servers={"core": {"instances": 2, "balance": "ip_hash"}})
    start_stack(stack)
    for name in stack.instance_ports:
        assert answers(stack.instance_url(name, "/api/v1/health")), name

    ports = health_ports(stack)

    assert len(set(ports)) == 1


def test_query_param_websocket_reaches_server(make_stack):
    stack = make_stack(
        overrides={
            "websocket": {"routing_strategy": "query_param", "query_param_name": "type"},
            "websocket_routes": {"bars": "datafeed", "quotes": "datafeed", "orders": "broker"},
        }
    )
    start_stack(stack)
    base = f"ws://{HOST}:{stack.gateway_port}/api/v1/ws"

    bars_replies = ws_request(f"{base}?type=bars", BARS_SUBSCRIBE, ORDERS_SUBSCRIBE)
    orders_replies = ws_request(f"{base}?type=orders", ORDERS_SUBSCRIBE, BARS_SUBSCRIBE)

    # The datafeed server serves bars but not orders, and the broker server the reverse.
    assert bars_replies[0]["type"] == "bars.subscribe.response"
    assert bars_replies[0]["payload"]["status"] == "ok"
    assert bars_replies[1]["type"] == "error"
    assert orders_replies[0]["type"] == "orders.subscribe.response"
    assert orders_replies[0]["payload"]["status"] == "ok"
    assert orders_replies[1]["type"] == "error"


def test_path_websocket_through_gateway(make_stack):
    stack = make_stack(servers={"datafeed": {"modules": ["datafeed"]}, "core": {}})
    start_stack(stack)

    (reply,) = ws_request(f"ws://{HOST}:{stack.gateway_port}/api/v1/datafeed/ws", BARS_SUBSCRIBE)

    assert reply["type"] == "bars.subscribe.response"
    assert reply["payload"]["topic"] == 'bars:{"resolution":"1","symbol":"AAPL"}'


def test_stopped_server_answers_json(make_stack):
    stack = make_stack(servers={"broker": {"modules": ["broker"]}, "core": {}})

    with honcho_running(stack, "nginx", "core-0"):
        assert wait_until(lambda: answers(stack.gateway_url("/api/v1/health")), READY_TIMEOUT_S), honcho_log(stack)
        response = httpx.get(stack.gateway_url("/api/v1/broker/health"), timeout=5)

    assert response.status_code == 502
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "detail": (
            f"server broker is not running or not accepting connections on port {stack.instance_ports['broker-0']}; "
            "check devenv status"
        ),
        "server": "broker",
    }


def test_plain_honcho_serves_routes(make_stack):
    stack = make_stack()
    routes = {
        "/api/v1/health": [],
        "/api/v1/broker/health": ["broker"],
        "/api/v1/datafeed/health": ["datafeed"],
    }

    with honcho_running(stack) as honcho:
        ready = wait_until(lambda: all(answers(stack.gateway_url(path)) for path in routes), READY_TIMEOUT_S)
        assert ready, honcho_log(stack)
        bodies = {path: httpx.get(stack.gateway_url(path), timeout=5).json() for path in routes}
        (reply,) = ws_request(f"ws://{HOST}:{stack.gateway_port}/api/v1/datafeed/ws", BARS_SUBSCRIBE)
        os.killpg(honcho.pid, signal.SIGTERM)
        honcho.wait(timeout=HONCHO_STOP_TIMEOUT_S)

    for path, modules in routes.items():
        assert bodies[path]["modules"] == modules, path
    assert bodies["/api/v1/broker/health"]["port"] == stack.instance_ports["broker-0"]
    assert reply["payload"]["status"] == "ok"
    assert stack.live_processes() == []
    assert devenv_ports.wait_for_ports_free(HOST, stack.ports, PORT_RELEASE_TIMEOUT_S) == []
