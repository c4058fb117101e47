"""Tests of the broker REST routes, with prices frozen at FIXED_NOW and fast fill ticks."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from trading_helpers import FIXED_NOW, SEED, wait_for

from trading_api.market import SYMBOLS, MarketSimulator

BASE = "/api/v1/broker"
QUOTE = MarketSimulator(SEED).quote("AAPL", FIXED_NOW)
KNOWN_SYMBOLS = ", ".join(SYMBOLS)


def order_body(**overrides: object) -> dict:
    body: dict = {"symbol": "AAPL", "side": "buy", "type": "market", "quantity": 10}
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


def place(client: TestClient, **overrides: object) -> dict:
    response = client.post(f"{BASE}/orders", json=order_body(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


def wait_for_status(client: TestClient, order_id: str, status: str) -> dict:
    def current() -> dict | None:
        order = client.get(f"{BASE}/orders/{order_id}").json()
        return order if order["status"] == status else None

    return wait_for(current)


def fill_market_order(client: TestClient, **overrides: object) -> dict:
    """Place a market order and wait for its fill, after which every working order has had a tick."""
    order = place(client, **overrides)
    return wait_for_status(client, order["id"], "filled")


def test_place_order_returns_working_order(fixed_client: TestClient) -> None:
    response = fixed_client.post(f"{BASE}/orders", json=order_body(symbol="aapl", type="limit", limit_price=1.5))

    assert response.status_code == 201
    assert response.json() == {
        "id": "ord-1",
        "symbol": "AAPL",
        "side": "buy",
        "type": "limit",
        "quantity": 10.0,
        "limit_price": 1.5,
        "stop_price": None,
        "status": "working",
        "filled_quantity": 0.0,
        "average_fill_price": None,
        "created_at": FIXED_NOW,
        "updated_at": FIXED_NOW,
    }


@pytest.mark.parametrize(("side", "price"), [("buy", QUOTE.ask), ("sell", QUOTE.bid)])
def test_market_order_fills_at_quote(fixed_client: TestClient, side: str, price: float) -> None:
    order = fill_market_order(fixed_client, side=side)

    assert order["filled_quantity"] == 10.0
    assert order["average_fill_price"] == price


@pytest.mark.parametrize(
    ("overrides", "fills"),
    [
        ({"type": "limit", "side": "buy", "limit_price": QUOTE.ask - 1}, False),
        ({"type": "limit", "side": "buy", "limit_price": QUOTE.ask}, True),
        ({"type": "limit", "side": "sell", "limit_price": QUOTE.bid + 1}, False),
        ({"type": "limit", "side": "sell", "limit_price": QUOTE.bid}, True),
        ({"type": "stop", "side": "buy", "stop_price": QUOTE.ask + 1}, False),
        ({"type": "stop", "side": "buy", "stop_price": QUOTE.ask}, True),
        ({"type": "stop", "side": "sell", "stop_price": QUOTE.bid - 1}, False),
        ({"type": "stop", "side": "sell", "stop_price": QUOTE.bid}, True),
    ],
)
def test_fill_simulator_fills_reached_prices(fixed_client: TestClient, overrides: dict, fills: bool) -> None:
    order = place(fixed_client, **overrides)
    fill_market_order(fixed_client, symbol="MSFT")

    current = fixed_client.get(f"{BASE}/orders/{order['id']}").json()

    assert current["status"] == ("filled" if fills else "working")
    if fills:
        assert current["average_fill_price"] == (QUOTE.ask if overrides["side"] == "buy" else QUOTE.bid)


def validation_error(field: str, error_type: str, msg: str, value: object, ctx: dict | None = None) -> dict:
    error = {"type": error_type, "loc": ["body", field], "msg": msg, "input": value}
    if ctx is not None:
        error["ctx"] = ctx
    return error


INVALID_ORDERS = [
    (
        {"quantity": -5},
        validation_error("quantity", "greater_than", "Input should be greater than 0", -5, {"gt": 0.0}),
    ),
    (
        {"quantity": 0},
        validation_error("quantity", "greater_than", "Input should be greater than 0", 0, {"gt": 0.0}),
    ),
    (
        {"type": "limit"},
        validation_error(
            "limit_price",
            "missing",
            "limit_price is required for a limit order",
            None,
            {"field": "limit_price", "order_type": "limit"},
        ),
    ),
    (
        {"type": "stop"},
        validation_error(
            "stop_price",
            "missing",
            "stop_price is required for a stop order",
            None,
            {"field": "stop_price", "order_type": "stop"},
        ),
    ),
    (
        {"type": "market", "limit_price": 10},
        validation_error(
            "limit_price",
            "extra_forbidden",
            "limit_price is not allowed for a market order",
            10,
            {"field": "limit_price", "order_type": "market"},
        ),
    ),
    (
        {"type": "limit", "limit_price": -1},
        validation_error("limit_price", "greater_than", "Input should be greater than 0", -1, {"gt": 0.0}),
    ),
    (
        {"symbol": "NOPE"},
        validation_error(
            "symbol",
            "unknown_symbol",
            f"unknown symbol 'NOPE'; known symbols: {KNOWN_SYMBOLS}",
            "NOPE",
            {"symbol": "NOPE", "known": KNOWN_SYMBOLS},
        ),
    ),
    (
        {"side": "hold"},
        validation_error(
            "side", "literal_error", "Input should be 'buy' or 'sell'", "hold", {"expected": "'buy' or 'sell'"}
        ),
    ),
    (
        {"type": "trailing"},
        validation_error(
            "type",
            "literal_error",
            "Input should be 'market', 'limit' or 'stop'",
            "trailing",
            {"expected": "'market', 'limit' or 'stop'"},
        ),
    ),
    (
        {"quantity": None},
        validation_error("quantity", "missing", "Field required", {"symbol": "AAPL", "side": "buy", "type": "market"}),
    ),
    (
        {"account": "x"},
        validation_error("account", "extra_forbidden", "Extra inputs are not permitted", "x"),
    ),
]


@pytest.mark.parametrize(("overrides", "detail"), INVALID_ORDERS)
def test_place_order_invalid(fixed_client: TestClient, overrides: dict, detail: dict) -> None:
    response = fixed_client.post(f"{BASE}/orders", json=order_body(**overrides))

    assert response.status_code == 422
    assert response.json() == {"detail": [detail]}
    assert fixed_client.get(f"{BASE}/orders").json() == []


@pytest.mark.parametrize(("overrides", "detail"), INVALID_ORDERS[:3])
def test_preview_order_invalid(fixed_client: TestClient, overrides: dict, detail: dict) -> None:
    response = fixed_client.post(f"{BASE}/orders/preview", json=order_body(**overrides))

    assert response.status_code == 422
    assert response.json() == {"detail": [detail]}


def test_preview_market_order(fixed_client: TestClient) -> None:
    response = fixed_client.post(f"{BASE}/orders/preview", json=order_body(quantity=4))

    assert response.status_code == 200
    assert response.json() == {
        "symbol": "AAPL",
        "side": "buy",
        "type": "market",
        "quantity": 4.0,
        "estimated_price": QUOTE.ask,
        "estimated_value": round(QUOTE.ask * 4, 2),
        "position_quantity_before": 0.0,
        "position_quantity_after": 4.0,
        "warnings": [],
    }
    assert fixed_client.get(f"{BASE}/orders").json() == []


def test_preview_crossing_limit_order_warns(fixed_client: TestClient) -> None:
    fill_market_order(fixed_client, quantity=3)
    limit_price = QUOTE.bid - 1

    response = fixed_client.post(
        f"{BASE}/orders/preview", json=order_body(side="sell", type="limit", limit_price=limit_price, quantity=5)
    )

    preview = response.json()
    assert preview["estimated_price"] == limit_price
    assert preview["position_quantity_before"] == 3.0
    assert preview["position_quantity_after"] == -2.0
    assert preview["warnings"] == [
        f"limit price {limit_price} crosses the market ({QUOTE.bid}); the order fills at once"
    ]


def test_preview_reached_stop_order_warns(fixed_client: TestClient) -> None:
    stop_price = QUOTE.ask - 1

    preview = fixed_client.post(f"{BASE}/orders/preview", json=order_body(type="stop", stop_price=stop_price)).json()

    assert preview["warnings"] == [f"stop price {stop_price} is already reached ({QUOTE.ask}); the order fills at once"]


def test_list_orders_filters_by_status(fixed_client: TestClient) -> None:
    working = place(fixed_client, type="limit", limit_price=1.0)
    filled = fill_market_order(fixed_client)

    all_orders = fixed_client.get(f"{BASE}/orders").json()
    working_orders = fixed_client.get(f"{BASE}/orders?status=working").json()
    filled_orders = fixed_client.get(f"{BASE}/orders?status=filled").json()

    assert [order["id"] for order in all_orders] == [working["id"], filled["id"]]
    assert [order["id"] for order in working_orders] == [working["id"]]
    assert [order["id"] for order in filled_orders] == [filled["id"]]


def test_list_orders_invalid_status(fixed_client: TestClient) -> None:
    response = fixed_client.get(f"{BASE}/orders?status=open")

    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {
                "type": "literal_error",
                "loc": ["query", "status"],
                "msg": "Input should be 'working', 'filled' or 'cancelled'",
                "input": "open",
                "ctx": {"expected": "'working', 'filled' or 'cancelled'"},
            }
        ]
    }


def test_get_order_not_found(fixed_client: TestClient) -> None:
    response = fixed_client.get(f"{BASE}/orders/ord-99")

    assert response.status_code == 404
    assert response.json() == {"detail": "order_id 'ord-99' not found"}


def test_modify_order(fixed_client: TestClient) -> None:
    order = place(fixed_client, type="limit", limit_price=1.0)

    response = fixed_client.patch(f"{BASE}/orders/{order['id']}", json={"quantity": 3, "limit_price": 2.5})

    assert response.status_code == 200
    assert response.json() == {**order, "quantity": 3.0, "limit_price": 2.5}


def test_modify_order_price_reaches_market_and_fills(fixed_client: TestClient) -> None:
    order = place(fixed_client, type="limit", limit_price=1.0)

    fixed_client.patch(f"{BASE}/orders/{order['id']}", json={"limit_price": QUOTE.ask})

    assert wait_for_status(fixed_client, order["id"], "filled")["average_fill_price"] == QUOTE.ask


@pytest.mark.parametrize(
    ("order_overrides", "body", "detail"),
    [
        (
            {"type": "limit", "limit_price": 1.0},
            {"stop_price": 5},
            validation_error("stop_price", "value_error", "stop_price is not allowed for a limit order", 5),
        ),
        (
            {"type": "stop", "stop_price": 9999.0},
            {"limit_price": 5},
            validation_error("limit_price", "value_error", "limit_price is not allowed for a stop order", 5),
        ),
        (
            {"type": "limit", "limit_price": 1.0},
            {"quantity": -1},
            validation_error("quantity", "greater_than", "Input should be greater than 0", -1, {"gt": 0.0}),
        ),
        (
            {"type": "limit", "limit_price": 1.0},
            {},
            {
                "type": "missing",
                "loc": ["body"],
                "msg": "give at least one of quantity, limit_price or stop_price",
                "input": {},
            },
        ),
    ],
)
def test_modify_order_invalid(fixed_client: TestClient, order_overrides: dict, body: dict, detail: dict) -> None:
    order = place(fixed_client, **order_overrides)

    response = fixed_client.patch(f"{BASE}/orders/{order['id']}", json=body)

    assert response.status_code == 422
    assert response.json() == {"detail": [detail]}


def test_modify_order_not_found(fixed_client: TestClient) -> None:
    response = fixed_client.patch(f"{BASE}/orders/ord-42", json={"quantity": 1})

    assert response.status_code == 404
    assert response.json() == {"detail": "order_id 'ord-42' not found"}


def test_modify_filled_order_conflicts(fixed_client: TestClient) -> None:
    order = fill_market_order(fixed_client)

    response = fixed_client.patch(f"{BASE}/orders/{order['id']}", json={"quantity": 1})

    assert response.status_code == 409
    assert response.json() == {
        "detail": f"order '{order['id']}' is filled; only working orders can be modified or cancelled"
    }


def test_cancel_order(fixed_client: TestClient) -> None:
    order = place(fixed_client, type="limit", limit_price=1.0)

    response = fixed_client.delete(f"{BASE}/orders/{order['id']}")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert fixed_client.get(f"{BASE}/orders?status=working").json() == []


def test_cancel_order_twice_conflicts(fixed_client: TestClient) -> None:
    order = place(fixed_client, type="limit", limit_price=1.0)
    fixed_client.delete(f"{BASE}/orders/{order['id']}")

    response = fixed_client.delete(f"{BASE}/orders/{order['id']}")

    assert response.status_code == 409
    assert response.json() == {
        "detail": f"order '{order['id']}' is cancelled; only working orders can be modified or cancelled"
    }


def test_cancel_order_not_found(fixed_client: TestClient) -> None:
    response = fixed_client.delete(f"{BASE}/orders/ord-7")

    assert response.status_code == 404
    assert response.json() == {"detail": "order_id 'ord-7' not found"}


def test_list_positions_after_fills(fixed_client: TestClient) -> None:
    fill_market_order(fixed_client, quantity=10)
    fill_market_order(fixed_client, quantity=5, side="sell")

    response = fixed_client.get(f"{BASE}/positions")

    assert response.status_code == 200
    realized = round(5 * (QUOTE.bid - QUOTE.ask), 2)
    assert response.json() == [
        {
            "symbol": "AAPL",
            "quantity": 5.0,
            "average_price": QUOTE.ask,
            "last_price": QUOTE.last,
            "unrealized_pnl": round(5 * (QUOTE.last - QUOTE.ask), 2),
            "realized_pnl": realized,
        }
    ]


def test_list_positions_empty(fixed_client: TestClient) -> None:
    response = fixed_client.get(f"{BASE}/positions")

    assert response.status_code == 200
    assert response.json() == []


def test_short_position_has_negative_quantity(fixed_client: TestClient) -> None:
    fill_market_order(fixed_client, side="sell", quantity=2)

    positions = fixed_client.get(f"{BASE}/positions").json()

    assert [(position["symbol"], position["quantity"]) for position in positions] == [("AAPL", -2.0)]
    assert positions[0]["average_price"] == QUOTE.bid


def test_close_position(fixed_client: TestClient) -> None:
    fill_market_order(fixed_client, quantity=4)

    response = fixed_client.post(f"{BASE}/positions/aapl/close")

    assert response.status_code == 201
    order = response.json()
    assert (order["symbol"], order["side"], order["type"], order["quantity"]) == ("AAPL", "sell", "market", 4.0)
    wait_for_status(fixed_client, order["id"], "filled")
    assert fixed_client.get(f"{BASE}/positions").json() == []


def test_close_position_without_position(fixed_client: TestClient) -> None:
    response = fixed_client.post(f"{BASE}/positions/KO/close")

    assert response.status_code == 404
    assert response.json() == {"detail": "no open position in symbol 'KO'"}


def test_close_position_unknown_symbol(fixed_client: TestClient) -> None:
    response = fixed_client.post(f"{BASE}/positions/NOPE/close")

    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {
                "type": "unknown_symbol",
                "loc": ["path", "symbol"],
                "msg": f"unknown symbol 'NOPE'; known symbols: {KNOWN_SYMBOLS}",
                "input": "NOPE",
                "ctx": {"symbol": "NOPE", "known": KNOWN_SYMBOLS},
            }
        ]
    }


def test_list_executions_per_symbol(fixed_client: TestClient) -> None:
    aapl = fill_market_order(fixed_client, quantity=2)
    fill_market_order(fixed_client, symbol="MSFT")

    response = fixed_client.get(f"{BASE}/executions?symbol=AAPL")

    assert response.status_code == 200
    assert response.json() == [
        {
            "id": "exe-1",
            "order_id": aapl["id"],
            "symbol": "AAPL",
            "side": "buy",
            "quantity": 2.0,
            "price": QUOTE.ask,
            "time": FIXED_NOW,
        }
    ]


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("", {"type": "missing", "loc": ["query", "symbol"], "msg": "Field required", "input": None}),
        (
            "?symbol=NOPE",
            {
                "type": "unknown_symbol",
                "loc": ["query", "symbol"],
                "msg": f"unknown symbol 'NOPE'; known symbols: {KNOWN_SYMBOLS}",
                "input": "NOPE",
                "ctx": {"symbol": "NOPE", "known": KNOWN_SYMBOLS},
            },
        ),
    ],
)
def test_list_executions_invalid(fixed_client: TestClient, query: str, detail: dict) -> None:
    response = fixed_client.get(f"{BASE}/executions{query}")

    assert response.status_code == 422
    assert response.json() == {"detail": [detail]}


def test_get_account_initial(fixed_client: TestClient) -> None:
    response = fixed_client.get(f"{BASE}/account")

    assert response.status_code == 200
    assert response.json() == {
        "id": "SIM-1",
        "currency": "USD",
        "balance": 100_000.0,
        "equity": 100_000.0,
        "realized_pnl": 0.0,
        "unrealized_pnl": 0.0,
    }


def test_get_account_after_round_trip(fixed_client: TestClient) -> None:
    fill_market_order(fixed_client, quantity=10)
    fill_market_order(fixed_client, quantity=10, side="sell")

    account = fixed_client.get(f"{BASE}/account").json()

    realized = round(10 * (QUOTE.bid - QUOTE.ask), 2)
    assert account["realized_pnl"] == realized
    assert account["unrealized_pnl"] == 0.0
    assert account["balance"] == round(100_000 + realized, 2)
    assert account["equity"] == account["balance"]


def test_get_account_with_open_position(fixed_client: TestClient) -> None:
    fill_market_order(fixed_client, quantity=10)

    account = fixed_client.get(f"{BASE}/account").json()

    unrealized = round(10 * (QUOTE.last - QUOTE.ask), 2)
    assert account["unrealized_pnl"] == unrealized
    assert account["equity"] == round(100_000 + unrealized, 2)
