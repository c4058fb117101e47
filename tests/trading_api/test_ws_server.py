"""Tests of the WebSocket streams over real sockets, against uvicorn on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from starlette.datastructures import Address
from trading_helpers import make_settings, wait_for
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from trading_api.app import create_app
from trading_api.market import SYMBOLS
from trading_api.ws.endpoint import describe_peer

pytestmark = pytest.mark.timeout(60)

HOST = "127.0.0.1"
WS_PATH = "/api/v1/datafeed/ws"
# A 1 ms tick with quotes of every symbol (about 2 kB per message) fills the socket
# buffers of a client that stopped reading within a few seconds.
UPDATE_INTERVAL_S = 0.001
QUEUE_SIZE = 16
SLOW_CLIENT_RCVBUF = 4096
MEASURE_WINDOW_S = 1.0
SUBSCRIBE = json.dumps({"type": "quotes.subscribe", "payload": {"symbols": list(SYMBOLS)}})


@contextmanager
def serve(app: FastAPI) -> Iterator[int]:
    """Run `app` in uvicorn on a free port of HOST and return the port.

    uvicorn trusts proxy headers from HOST, as on the servers behind the gateway.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((HOST, 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", proxy_headers=True, forwarded_allow_ips=HOST)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, timeout_s=10)
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


@pytest.fixture
def server_port() -> Iterator[int]:
    """Run the datafeed module in uvicorn on a free port and return the port."""
    app = create_app(
        make_settings(("datafeed",), update_interval_s=UPDATE_INTERVAL_S, ws_queue_size=QUEUE_SIZE), spec_dir=None
    )
    with serve(app) as port:
        yield port


@pytest.fixture
def core_server_port() -> Iterator[int]:
    """Run a core-only server, whose combined endpoint at /api/v1/ws serves no streams, and return the port."""
    with serve(create_app(make_settings(()), spec_dir=None)) as port:
        yield port


def masked_text_frame(text: str) -> bytes:
    """Encode a masked WebSocket text frame, as a client must send it (RFC 6455, section 5.2)."""
    payload = text.encode()
    mask = os.urandom(4)
    if len(payload) < 126:
        header = bytes([0x81, 0x80 | len(payload)])
    else:
        header = bytes([0x81, 0x80 | 126]) + len(payload).to_bytes(2, "big")
    return header + mask + bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))


def open_stalled_client(port: int) -> socket.socket:
    """Connect a raw WebSocket client with a small receive buffer, subscribe, and never read."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SLOW_CLIENT_RCVBUF)
    raw.connect((HOST, port))
    key = base64.b64encode(os.urandom(16)).decode()
    raw.sendall(
        (
            f"GET {WS_PATH} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    handshake = b""
    while b"\r\n\r\n" not in handshake:
        handshake += raw.recv(1)
    assert handshake.startswith(b"HTTP/1.1 101"), handshake
    raw.sendall(masked_text_frame(SUBSCRIBE))
    return raw


class UpdateCounter(threading.Thread):
    """Reads a WebSocket client continuously and records when each update arrived."""

    def __init__(self, websocket: ClientConnection) -> None:
        super().__init__(daemon=True)
        self.websocket = websocket
        self.arrivals: list[float] = []

    def run(self) -> None:
        try:
            for text in self.websocket:
                if json.loads(text)["type"] == "quotes.update":
                    self.arrivals.append(time.monotonic())
        except ConnectionClosed:
            pass

    def count_between(self, start: float, end: float) -> int:
        return sum(1 for arrival in self.arrivals if start <= arrival < end)


def get_stream_stats(port: int) -> dict:
    return httpx.get(f"http://{HOST}:{port}/api/v1/datafeed/health", timeout=5).json()["websocket"]


def test_stalled_client_does_not_delay_fast_client(server_port: int) -> None:
    with connect(f"ws://{HOST}:{server_port}{WS_PATH}") as websocket:
        websocket.send(SUBSCRIBE)
        fast = UpdateCounter(websocket)
        fast.start()
        stalled = open_stalled_client(server_port)
        try:
            # Drops start once the stalled client's socket buffers and server queue are full.
            wait_for(lambda: get_stream_stats(server_port)["dropped_messages"] > 0, timeout_s=30, interval_s=0.05)
            window_start = time.monotonic()
            time.sleep(MEASURE_WINDOW_S)
            received = fast.count_between(window_start, window_start + MEASURE_WINDOW_S)
            stats = get_stream_stats(server_port)
        finally:
            stalled.close()

    assert stats["clients"] == 2
    assert stats["topics"] == 1
    # The stalled client keeps dropping, so its sends stay blocked during the window.
    assert stats["dropped_messages"] > QUEUE_SIZE
    # About 1000 ticks per second are expected. A producer blocked by the stalled client would
    # deliver none. 100 leaves room for a loaded test machine.
    assert received >= 100


def test_client_disconnect_over_real_socket_cleans_up(server_port: int) -> None:
    # max_queue=None keeps the client reading while it closes. With flow control, it would
    # stop reading after 16 unread updates and miss the server's close frame behind them.
    with connect(f"ws://{HOST}:{server_port}{WS_PATH}", max_queue=None) as websocket:
        websocket.send(SUBSCRIBE)
        assert json.loads(websocket.recv(timeout=5))["type"] == "quotes.subscribe.response"
        assert get_stream_stats(server_port) == {"clients": 1, "topics": 1, "dropped_messages": 0}

    assert wait_for(lambda: get_stream_stats(server_port)["clients"] == 0)
    assert get_stream_stats(server_port)["topics"] == 0


def connection_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "trading_api.ws.hub"]


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        (Address("203.0.113.7", 50000), "203.0.113.7:50000"),
        (Address("203.0.113.7", 0), "203.0.113.7"),
        (None, ""),
    ],
)
def test_describe_peer(address: Address | None, expected: str) -> None:
    assert describe_peer(address) == expected


def test_forwarded_client_logged_without_port(core_server_port: int, caplog: pytest.LogCaptureFixture) -> None:
    url = f"ws://{HOST}:{core_server_port}/api/v1/ws"

    with (
        caplog.at_level(logging.INFO, logger="trading_api.ws.hub"),
        connect(url, additional_headers={"X-Forwarded-For": "203.0.113.7"}),
    ):
        wait_for(lambda: connection_logs(caplog))

    assert connection_logs(caplog)[0] == (
        "client all-1 connected (peer 203.0.113.7), but this server runs no module streams "
        "and replies to every subscribe with an error"
    )


def test_direct_client_logged_with_port(server_port: int, caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.INFO, logger="trading_api.ws.hub"),
        connect(f"ws://{HOST}:{server_port}{WS_PATH}") as websocket,
    ):
        local_port = websocket.local_address[1]
        wait_for(lambda: connection_logs(caplog))

    assert connection_logs(caplog)[0] == f"client datafeed-1 connected to datafeed streams (peer {HOST}:{local_port})"
