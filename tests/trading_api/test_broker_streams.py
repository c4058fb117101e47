"""Tests of the broker WebSocket streams: orders, positions, executions and equity."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from trading_helpers import FIXED_NOW, SEED, receive_type, send, subscribe, wait_for

from trading_api.market import MarketSimulator

pytestmark = pytest.mark.timeout(60)

WS = "/api/v1/broker/ws"
ORDERS = "/api/v1/broker/orders"
QUOTE = MarketSimulator(SEED).quote("AAPL", FIXED_NOW)


def subscribe_all(ws) -> dict[str, str]:
    return {
        "orders": subscribe(ws, "orders"),
        "executions": subscribe(ws, "executions", {"symbol": "AAPL"}),
        "positions": subscribe(ws, "positions"),
        "equity": subscribe(ws, "equity"),
    }


def test_topics_of_broker_routes(fixed_client: TestClient) -> None:
    with fixed_client.websocket_connect(WS) as ws:
        topics = subscribe_all(ws)

    assert topics == {
        "orders": "orders:{}",
        "executions": 'executions:{"symbol":"AAPL"}',
        "positions": "positions:{}",
        "equity": "equity:{}",
    }


def test_fill_pushes_execution_order_position_equity_in_order(fixed_client: TestClient) -> None:
    with fixed_client.websocket_connect(WS) as ws:
        topics = subscribe_all(ws)
        order = fixed_client.post(
            ORDERS, json={"symbol": "AAPL", "side": "buy", "type": "market", "quantity": 3}
        ).json()

        placed = ws.receive_json()
        fill_messages = [ws.receive_json() for _ in range(4)]

    assert placed == {"type": "orders.update", "payload": {"topic": topics["orders"], "payload": order}}
    assert [message["type"] for message in fill_messages] == [
        "executions.update",
        "orders.update",
        "positions.update",
        "equity.update",
    ]
    execution, filled, position, equity = (message["payload"]["payload"] for message in fill_messages)
    assert execution == {
        "id": "exe-1",
        "order_id": order["id"],
        "symbol": "AAPL",
        "side": "buy",
        "quantity": 3.0,
        "price": QUOTE.ask,
        "time": FIXED_NOW,
    }
    assert filled == {**order, "status": "filled", "filled_quantity": 3.0, "average_fill_price": QUOTE.ask}
    assert position == {
        "symbol": "AAPL",
        "quantity": 3.0,
        "average_price": QUOTE.ask,
        "last_price": QUOTE.last,
        "unrealized_pnl": round(3 * (QUOTE.last - QUOTE.ask), 2),
        "realized_pnl": 0.0,
    }
    unrealized = round(3 * (QUOTE.last - QUOTE.ask), 2)
    assert equity == {
        "id": "SIM-1",
        "currency": "USD",
        "balance": 100_000.0,
        "equity": round(100_000 + unrealized, 2),
        "realized_pnl": 0.0,
        "unrealized_pnl": unrealized,
    }


def test_order_changes_are_pushed(fixed_client: TestClient) -> None:
    with fixed_client.websocket_connect(WS) as ws:
        subscribe(ws, "orders")
        order = fixed_client.post(
            ORDERS, json={"symbol": "KO", "side": "sell", "type": "limit", "quantity": 1, "limit_price": 999}
        ).json()
        fixed_client.patch(f"{ORDERS}/{order['id']}", json={"quantity": 2})
        fixed_client.delete(f"{ORDERS}/{order['id']}")

        updates = [receive_type(ws, "orders.update")["payload"]["payload"] for _ in range(3)]

    assert [(update["status"], update["quantity"]) for update in updates] == [
        ("working", 1.0),
        ("working", 2.0),
        ("cancelled", 2.0),
    ]


def test_executions_only_for_subscribed_symbol(fixed_client: TestClient) -> None:
    with fixed_client.websocket_connect(WS) as ws:
        subscribe(ws, "executions", {"symbol": "MSFT"})
        subscribe(ws, "orders")
        fixed_client.post(ORDERS, json={"symbol": "AAPL", "side": "buy", "type": "market", "quantity": 1})
        fixed_client.post(ORDERS, json={"symbol": "MSFT", "side": "buy", "type": "market", "quantity": 1})

        execution = receive_type(ws, "executions.update")["payload"]["payload"]

    assert execution["symbol"] == "MSFT"
    assert execution["order_id"] == "ord-2"


def test_equity_updates_while_position_open(fixed_client: TestClient) -> None:
    with fixed_client.websocket_connect(WS) as ws:
        subscribe(ws, "executions", {"symbol": "AAPL"})
        fixed_client.post(ORDERS, json={"symbol": "AAPL", "side": "buy", "type": "market", "quantity": 1})
        receive_type(ws, "executions.update")
        subscribe(ws, "equity")

        # No more fills happen, so these come from the mark-to-market ticks.
        updates = [receive_type(ws, "equity.update")["payload"]["payload"] for _ in range(3)]

    assert all(update["unrealized_pnl"] == round(QUOTE.last - QUOTE.ask, 2) for update in updates)


def test_unsubscribe_stops_broker_producer(fixed_client: TestClient) -> None:
    with fixed_client.websocket_connect(WS) as ws:
        subscribe(ws, "positions")
        send(ws, "positions.unsubscribe")
        response = receive_type(ws, "positions.unsubscribe.response")

        assert response["payload"] == {"status": "ok", "message": "unsubscribed", "topic": "positions:{}"}
        assert fixed_client.get("/api/v1/broker/health").json()["websocket"]["topics"] == 0


def test_disconnect_stops_broker_producers(fixed_client: TestClient) -> None:
    with fixed_client.websocket_connect(WS) as ws:
        subscribe_all(ws)
        assert fixed_client.get("/api/v1/broker/health").json()["websocket"]["topics"] == 4

    def stats() -> dict:
        return fixed_client.get("/api/v1/broker/health").json()["websocket"]

    assert wait_for(lambda: stats() == {"clients": 0, "topics": 0, "dropped_messages": 0})


@pytest.mark.parametrize(
    ("message_type", "payload", "reason"),
    [
        ("executions.subscribe", {}, "invalid parameters: symbol: Field required"),
        ("orders.subscribe", {"symbol": "AAPL"}, "invalid parameters: symbol: Extra inputs are not permitted"),
        ("equity.subscribe", {"account": "SIM-1"}, "invalid parameters: account: Extra inputs are not permitted"),
    ],
)
def test_broker_invalid_parameters(fixed_client: TestClient, message_type: str, payload: dict, reason: str) -> None:
    with fixed_client.websocket_connect(WS) as ws:
        send(ws, message_type, payload)
        response = ws.receive_json()

    assert response == {
        "type": f"{message_type}.response",
        "payload": {"status": "error", "message": reason, "topic": None},
    }


def test_broker_unknown_type_lists_routes(fixed_client: TestClient) -> None:
    with fixed_client.websocket_connect(WS) as ws:
        send(ws, "bars.subscribe", {"symbol": "AAPL", "resolution": "1"})
        error = ws.receive_json()

    assert error == {
        "type": "error",
        "payload": {
            "message": "unknown message type 'bars.subscribe'; expected one of: orders.subscribe, orders.unsubscribe, "
            "positions.subscribe, positions.unsubscribe, executions.subscribe, executions.unsubscribe, "
            "equity.subscribe, equity.unsubscribe"
        },
    }
