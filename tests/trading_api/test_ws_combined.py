"""Tests of the combined stream endpoint at /api/v1/ws, which serves every enabled module's routes.

A gateway that routes WebSocket clients by a query parameter (`/api/v1/ws?type=bars`)
sends them all to this one path, so it must accept each route of the modules the
server runs and reject the others with the protocol's error reply.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from trading_helpers import receive_type, send, subscribe

pytestmark = pytest.mark.timeout(60)

COMBINED_WS = "/api/v1/ws"
BARS = {"symbol": "AAPL", "resolution": "1"}
BARS_TOPIC = 'bars:{"resolution":"1","symbol":"AAPL"}'


def test_combined_serves_every_module(fixed_client: TestClient) -> None:
    with fixed_client.websocket_connect(COMBINED_WS) as ws:
        bars_topic = subscribe(ws, "bars", BARS)
        orders_topic = subscribe(ws, "orders")
        bars_update = receive_type(ws, "bars.update")

    assert bars_topic == BARS_TOPIC
    assert orders_topic == "orders:{}"
    assert bars_update["payload"]["topic"] == BARS_TOPIC


def test_combined_broker_updates(fixed_client: TestClient) -> None:
    """A producer behind the combined endpoint reads the module's own service."""
    with fixed_client.websocket_connect(COMBINED_WS) as ws:
        subscribe(ws, "orders")
        order = fixed_client.post(
            "/api/v1/broker/orders", json={"symbol": "AAPL", "side": "buy", "type": "market", "quantity": 1}
        ).json()

        update = receive_type(ws, "orders.update")

    assert update["payload"]["payload"]["id"] == order["id"]


def test_combined_rejects_disabled_module(make_client: Callable[..., TestClient]) -> None:
    client = make_client(modules=("datafeed",))

    with client.websocket_connect(COMBINED_WS) as ws:
        send(ws, "orders.subscribe")
        error = ws.receive_json()
        bars_topic = subscribe(ws, "bars", BARS)

    assert error == {
        "type": "error",
        "payload": {
            "message": "unknown message type 'orders.subscribe'; expected one of: "
            "bars.subscribe, bars.unsubscribe, quotes.subscribe, quotes.unsubscribe"
        },
    }
    assert bars_topic == BARS_TOPIC


def test_combined_on_core_server(make_client: Callable[..., TestClient]) -> None:
    client = make_client(modules=())

    with client.websocket_connect(COMBINED_WS) as ws:
        send(ws, "bars.subscribe", BARS)
        error = ws.receive_json()

    assert error == {
        "type": "error",
        "payload": {
            "message": "unknown message type 'bars.subscribe'; this server runs no module with WebSocket routes; "
            "check which server the route is sent to"
        },
    }


def test_module_endpoint_unchanged(make_client: Callable[..., TestClient]) -> None:
    client = make_client(modules=("broker", "datafeed"))

    with client.websocket_connect("/api/v1/datafeed/ws") as ws:
        send(ws, "orders.subscribe")
        error = ws.receive_json()

    assert error["type"] == "error"
