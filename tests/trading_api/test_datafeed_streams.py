"""Tests of the datafeed WebSocket streams (bars, quotes) and of the protocol's error replies."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from trading_helpers import FIXED_NOW, SEED, FastClock, receive_type, send, subscribe, wait_for

from trading_api.market import SYMBOLS, MarketSimulator

pytestmark = pytest.mark.timeout(60)

WS = "/api/v1/datafeed/ws"
HEALTH = "/api/v1/datafeed/health"
BARS_TOPIC = 'bars:{"resolution":"1","symbol":"AAPL"}'
MINUTE_START = int(FIXED_NOW // 60 * 60)
MESSAGE_TYPES = "bars.subscribe, bars.unsubscribe, quotes.subscribe, quotes.unsubscribe"


def stream_stats(client: TestClient) -> dict:
    return client.get(HEALTH).json()["websocket"]


def test_bars_subscribe_and_updates(fixed_client: TestClient) -> None:
    with fixed_client.websocket_connect(WS) as ws:
        send(ws, "bars.subscribe", {"symbol": "aapl", "resolution": "1"})

        response = ws.receive_json()
        update = ws.receive_json()

    assert response == {
        "type": "bars.subscribe.response",
        "payload": {"status": "ok", "message": "subscribed", "topic": BARS_TOPIC},
    }
    expected_bar = MarketSimulator(SEED).bar("AAPL", 60, MINUTE_START, now=FIXED_NOW).model_dump()
    assert update == {"type": "bars.update", "payload": {"topic": BARS_TOPIC, "payload": expected_bar}}


def test_bars_new_bar_at_resolution_boundary(make_client: Callable[..., TestClient]) -> None:
    # The producer's first tick reads MINUTE_START + 50. At 300x speed, the minute boundary
    # comes about 0.03 s later. Only the datafeed runs, so nothing else reads the clock first.
    client = make_client(modules=("datafeed",), clock=FastClock(start=MINUTE_START + 50, speed=300))
    bars = []
    with client.websocket_connect(WS) as ws:
        subscribe(ws, "bars", {"symbol": "AAPL", "resolution": "1"})
        while len({bar["time"] for bar in bars}) < 2:
            bars.append(receive_type(ws, "bars.update")["payload"]["payload"])

    first_new = next(index for index, bar in enumerate(bars) if bar["time"] != MINUTE_START)
    final = MarketSimulator(SEED).bar("AAPL", 60, MINUTE_START, now=MINUTE_START + 60).model_dump()
    assert bars[first_new]["time"] == MINUTE_START + 60
    # The finished bar is sent in its final state before the first update of the new bar.
    assert bars[first_new - 1] == final
    assert bars[first_new]["open"] == final["close"]


def test_bars_forming_bar_updates(client: TestClient) -> None:
    with client.websocket_connect(WS) as ws:
        subscribe(ws, "bars", {"symbol": "BTCUSD", "resolution": "1D"})
        updates = [receive_type(ws, "bars.update")["payload"]["payload"] for _ in range(5)]

    assert len({update["time"] for update in updates}) == 1
    # The real clock moves between ticks, so the forming bar's volume grows.
    volumes = [update["volume"] for update in updates]
    assert volumes == sorted(volumes)
    assert volumes[0] < volumes[-1]


def test_quotes_subscribe_and_updates(fixed_client: TestClient) -> None:
    with fixed_client.websocket_connect(WS) as ws:
        topic = subscribe(ws, "quotes", {"symbols": ["msft", "AAPL", "AAPL"]})
        update = receive_type(ws, "quotes.update")

    market = MarketSimulator(SEED)
    assert topic == 'quotes:{"symbols":["AAPL","MSFT"]}'
    assert update["payload"] == {
        "topic": topic,
        "payload": {
            "quotes": [market.quote("AAPL", FIXED_NOW).model_dump(), market.quote("MSFT", FIXED_NOW).model_dump()]
        },
    }


def test_quote_update_fields(client: TestClient) -> None:
    with client.websocket_connect(WS) as ws:
        subscribe(ws, "quotes", {"symbols": ["TSLA"]})
        quote = receive_type(ws, "quotes.update")["payload"]["payload"]["quotes"][0]

    assert set(quote) == {
        "symbol",
        "time",
        "last",
        "bid",
        "ask",
        "spread",
        "change",
        "change_percent",
        "volume",
        "previous_close",
    }
    assert quote["bid"] < quote["ask"]


def test_unsubscribe_stops_updates_and_producer(fixed_client: TestClient) -> None:
    with fixed_client.websocket_connect(WS) as ws:
        subscribe(ws, "bars", {"symbol": "AAPL", "resolution": "1"})
        receive_type(ws, "bars.update")
        assert stream_stats(fixed_client)["topics"] == 1

        send(ws, "bars.unsubscribe", {"resolution": "1", "symbol": "AAPL"})
        response = receive_type(ws, "bars.unsubscribe.response")
        # Updates queued before the response may precede it, but none may follow it.
        send(ws, "ping")
        next_message = ws.receive_json()

        assert response["payload"] == {"status": "ok", "message": "unsubscribed", "topic": BARS_TOPIC}
        assert next_message["type"] == "error"
        assert stream_stats(fixed_client) == {"clients": 1, "topics": 0, "dropped_messages": 0}


def test_unsubscribe_without_subscription(fixed_client: TestClient) -> None:
    with fixed_client.websocket_connect(WS) as ws:
        send(ws, "bars.unsubscribe", {"symbol": "AAPL", "resolution": "1"})
        response = ws.receive_json()

    assert response == {
        "type": "bars.unsubscribe.response",
        "payload": {"status": "error", "message": "not subscribed to this topic", "topic": BARS_TOPIC},
    }


def test_subscribe_twice_is_acknowledged_once(fixed_client: TestClient) -> None:
    with fixed_client.websocket_connect(WS) as ws:
        subscribe(ws, "bars", {"symbol": "AAPL", "resolution": "1"})
        send(ws, "bars.subscribe", {"symbol": "AAPL", "resolution": "1"})
        response = receive_type(ws, "bars.subscribe.response")

        assert response["payload"] == {"status": "ok", "message": "already subscribed", "topic": BARS_TOPIC}
        assert stream_stats(fixed_client)["topics"] == 1


def test_disconnect_removes_client_and_stops_producers(fixed_client: TestClient) -> None:
    with fixed_client.websocket_connect(WS) as ws:
        subscribe(ws, "bars", {"symbol": "AAPL", "resolution": "1"})
        subscribe(ws, "quotes", {"symbols": ["AAPL"]})
        assert stream_stats(fixed_client) == {"clients": 1, "topics": 2, "dropped_messages": 0}

    assert wait_for(lambda: stream_stats(fixed_client) == {"clients": 0, "topics": 0, "dropped_messages": 0})


def test_two_clients_share_one_producer(fixed_client: TestClient) -> None:
    with fixed_client.websocket_connect(WS) as first, fixed_client.websocket_connect(WS) as second:
        first_topic = subscribe(first, "bars", {"symbol": "AAPL", "resolution": "1"})
        second_topic = subscribe(second, "bars", {"resolution": "1", "symbol": "aapl"})
        first_update = receive_type(first, "bars.update")
        second_update = receive_type(second, "bars.update")

        assert first_topic == second_topic == BARS_TOPIC
        assert stream_stats(fixed_client) == {"clients": 2, "topics": 1, "dropped_messages": 0}
        assert first_update == second_update

        send(first, "bars.unsubscribe", {"symbol": "AAPL", "resolution": "1"})
        receive_type(first, "bars.unsubscribe.response")
        # The producer keeps running for the remaining subscriber.
        assert stream_stats(fixed_client)["topics"] == 1
        receive_type(second, "bars.update")

        send(second, "bars.unsubscribe", {"symbol": "AAPL", "resolution": "1"})
        receive_type(second, "bars.unsubscribe.response")
        assert stream_stats(fixed_client)["topics"] == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "invalid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        ("[1, 2]", 'invalid message: expected a JSON object with a string "type" and an object "payload"'),
        ('{"payload": {}}', 'invalid message: expected a JSON object with a string "type" and an object "payload"'),
        (
            '{"type": "trades.subscribe", "payload": {}}',
            f"unknown message type 'trades.subscribe'; expected one of: {MESSAGE_TYPES}",
        ),
        (
            '{"type": "bars.update", "payload": {}}',
            f"unknown message type 'bars.update'; expected one of: {MESSAGE_TYPES}",
        ),
    ],
)
def test_bad_message_gets_error_and_connection_stays_open(fixed_client: TestClient, text: str, message: str) -> None:
    with fixed_client.websocket_connect(WS) as ws:
        ws.send_text(text)
        error = ws.receive_json()

        assert error == {"type": "error", "payload": {"message": message}}
        assert subscribe(ws, "bars", {"symbol": "AAPL", "resolution": "1"}) == BARS_TOPIC


def test_binary_frame_with_json_is_accepted(fixed_client: TestClient) -> None:
    with fixed_client.websocket_connect(WS) as ws:
        ws.send_bytes(json.dumps({"type": "quotes.subscribe", "payload": {"symbols": ["KO"]}}).encode())
        response = ws.receive_json()

    assert response["payload"]["status"] == "ok"


def test_binary_frame_not_utf8_gets_error(fixed_client: TestClient) -> None:
    with fixed_client.websocket_connect(WS) as ws:
        ws.send_bytes(b"\xff\xfe")
        error = ws.receive_json()

    assert error == {
        "type": "error",
        "payload": {"message": "invalid message: binary frames must contain UTF-8 encoded JSON"},
    }


@pytest.mark.parametrize(
    ("message_type", "payload", "reason"),
    [
        ("bars.subscribe", {"resolution": "1"}, "invalid parameters: symbol: Field required"),
        (
            "bars.subscribe",
            {"symbol": "NOPE", "resolution": "1"},
            f"invalid parameters: symbol: unknown symbol 'NOPE'; known symbols: {', '.join(SYMBOLS)}",
        ),
        (
            "bars.subscribe",
            {"symbol": "AAPL", "resolution": "3"},
            "invalid parameters: resolution: Input should be '1', '5', '15', '60', '240' or '1D'",
        ),
        (
            "bars.subscribe",
            {"symbol": "AAPL", "resolution": "1", "from": 1},
            "invalid parameters: from: Extra inputs are not permitted",
        ),
        ("bars.unsubscribe", [], "invalid payload: expected a JSON object of route parameters"),
        (
            "quotes.subscribe",
            {"symbols": []},
            "invalid parameters: symbols: List should have at least 1 item after validation, not 0",
        ),
        (
            "quotes.subscribe",
            {"symbols": ["AAPL", 5]},
            "invalid parameters: symbols.1: Input should be a valid string",
        ),
    ],
)
def test_invalid_parameters_get_error_response(
    fixed_client: TestClient, message_type: str, payload: object, reason: str
) -> None:
    with fixed_client.websocket_connect(WS) as ws:
        send(ws, message_type, payload)
        response = ws.receive_json()

        assert response == {
            "type": f"{message_type}.response",
            "payload": {"status": "error", "message": reason, "topic": None},
        }
        assert stream_stats(fixed_client)["topics"] == 0
        assert subscribe(ws, "quotes", {"symbols": ["AAPL"]}).startswith("quotes:")
