"""Tests of the datafeed REST routes, with the clock frozen at FIXED_NOW."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from trading_helpers import FIXED_NOW, SEED

from trading_api.market import SYMBOLS, MarketSimulator

BASE = "/api/v1/datafeed"
KNOWN_SYMBOLS = ", ".join(SYMBOLS)
MINUTE_START = int(FIXED_NOW // 60 * 60)


def unknown_symbol_error(location: str, field: str, value: str) -> dict:
    return {
        "type": "unknown_symbol",
        "loc": [location, field],
        "msg": f"unknown symbol '{value}'; known symbols: {KNOWN_SYMBOLS}",
        "input": value,
        "ctx": {"symbol": value, "known": KNOWN_SYMBOLS},
    }


def expected_bar(start: int, resolution_s: int = 60, symbol: str = "AAPL") -> dict:
    return MarketSimulator(SEED).bar(symbol, resolution_s, start, now=FIXED_NOW).model_dump()


def test_get_config(fixed_client: TestClient) -> None:
    response = fixed_client.get(f"{BASE}/config")

    assert response.status_code == 200
    assert response.json() == {
        "supported_resolutions": ["1", "5", "15", "60", "240", "1D"],
        "exchanges": [
            {"value": "NASDAQ", "name": "NASDAQ", "description": "Nasdaq Stock Market"},
            {"value": "NYSE", "name": "NYSE", "description": "New York Stock Exchange"},
            {"value": "CRYPTO", "name": "CRYPTO", "description": "Simulated crypto exchange"},
        ],
        "symbol_types": ["stock", "crypto"],
        "supports_search": True,
        "supports_time": True,
        "max_bars": 5000,
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("query=apple", ["AAPL"]),
        ("query=usd", ["BTCUSD", "ETHUSD"]),
        ("exchange=nyse", ["IBM", "JPM", "KO"]),
        ("type=crypto", ["BTCUSD", "ETHUSD"]),
        ("query=a&exchange=NASDAQ&limit=2", ["AAPL", "MSFT"]),
        ("query=nothing-matches", []),
    ],
)
def test_search_symbols(fixed_client: TestClient, query: str, expected: list[str]) -> None:
    response = fixed_client.get(f"{BASE}/symbols/search?{query}")

    assert response.status_code == 200
    assert [result["symbol"] for result in response.json()] == expected


def test_search_symbols_result_fields(fixed_client: TestClient) -> None:
    response = fixed_client.get(f"{BASE}/symbols/search?query=KO")

    assert response.json() == [
        {
            "symbol": "KO",
            "full_name": "NYSE:KO",
            "description": "The Coca-Cola Company",
            "exchange": "NYSE",
            "type": "stock",
        }
    ]


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        (
            "exchange=LSE",
            {
                "type": "unknown_exchange",
                "loc": ["query", "exchange"],
                "msg": "unknown exchange 'LSE'; known exchanges: NASDAQ, NYSE, CRYPTO",
                "input": "LSE",
                "ctx": {"exchange": "LSE", "known": "NASDAQ, NYSE, CRYPTO"},
            },
        ),
        (
            "type=bond",
            {
                "type": "literal_error",
                "loc": ["query", "type"],
                "msg": "Input should be 'stock' or 'crypto'",
                "input": "bond",
                "ctx": {"expected": "'stock' or 'crypto'"},
            },
        ),
        (
            "limit=0",
            {
                "type": "greater_than_equal",
                "loc": ["query", "limit"],
                "msg": "Input should be greater than or equal to 1",
                "input": "0",
                "ctx": {"ge": 1},
            },
        ),
    ],
)
def test_search_symbols_invalid(fixed_client: TestClient, query: str, detail: dict) -> None:
    response = fixed_client.get(f"{BASE}/symbols/search?{query}")

    assert response.status_code == 422
    assert response.json() == {"detail": [detail]}


@pytest.mark.parametrize("name", ["AAPL", "aapl", "NASDAQ:AAPL"])
def test_resolve_symbol(fixed_client: TestClient, name: str) -> None:
    response = fixed_client.get(f"{BASE}/symbols/{name}")

    assert response.status_code == 200
    assert response.json() == {
        "symbol": "AAPL",
        "full_name": "NASDAQ:AAPL",
        "description": "Apple Inc.",
        "exchange": "NASDAQ",
        "type": "stock",
        "currency": "USD",
        "session": "24x7",
        "timezone": "Etc/UTC",
        "pricescale": 100,
        "minmov": 1,
        "has_intraday": True,
        "supported_resolutions": ["1", "5", "15", "60", "240", "1D"],
    }


@pytest.mark.parametrize("name", ["XYZ", "NYSE:AAPL"])
def test_resolve_symbol_not_found(fixed_client: TestClient, name: str) -> None:
    response = fixed_client.get(f"{BASE}/symbols/{name}")

    assert response.status_code == 404
    assert response.json() == {
        "detail": f"symbol '{name}' not found; find symbols with GET /api/v1/datafeed/symbols/search"
    }


def test_get_bars_count_back(fixed_client: TestClient) -> None:
    response = fixed_client.get(f"{BASE}/bars?symbol=aapl&resolution=1&count_back=3")

    assert response.status_code == 200
    assert response.json() == {
        "symbol": "AAPL",
        "resolution": "1",
        "bars": [expected_bar(MINUTE_START - 120), expected_bar(MINUTE_START - 60), expected_bar(MINUTE_START)],
        "no_data": False,
    }


def test_get_bars_count_back_before_to(fixed_client: TestClient) -> None:
    to_time = int(FIXED_NOW // 300 * 300) - 600

    response = fixed_client.get(f"{BASE}/bars?symbol=AAPL&resolution=5&count_back=2&to={to_time}")

    bars = response.json()["bars"]
    assert [bar["time"] for bar in bars] == [to_time - 600, to_time - 300]
    assert bars == [expected_bar(to_time - 600, 300), expected_bar(to_time - 300, 300)]


def test_get_bars_from_to(fixed_client: TestClient) -> None:
    from_time = MINUTE_START - 300
    to_time = MINUTE_START - 60

    response = fixed_client.get(f"{BASE}/bars?symbol=AAPL&resolution=1&from={from_time}&to={to_time}")

    assert response.status_code == 200
    times = [bar["time"] for bar in response.json()["bars"]]
    assert times == [MINUTE_START - 300, MINUTE_START - 240, MINUTE_START - 180, MINUTE_START - 120]


def test_get_bars_from_aligns_to_resolution(fixed_client: TestClient) -> None:
    response = fixed_client.get(f"{BASE}/bars?symbol=AAPL&resolution=1&from={MINUTE_START - 119}")

    assert [bar["time"] for bar in response.json()["bars"]] == [MINUTE_START - 60, MINUTE_START]


def test_get_bars_future_range_has_no_data(fixed_client: TestClient) -> None:
    response = fixed_client.get(f"{BASE}/bars?symbol=AAPL&resolution=1&from={MINUTE_START + 600}")

    assert response.status_code == 200
    assert response.json() == {"symbol": "AAPL", "resolution": "1", "bars": [], "no_data": True}


def test_get_bars_same_seed_same_history(make_client) -> None:
    first = make_client(clock=lambda: FIXED_NOW).get(f"{BASE}/bars?symbol=TSLA&resolution=60&count_back=50").json()
    second = make_client(clock=lambda: FIXED_NOW).get(f"{BASE}/bars?symbol=TSLA&resolution=60&count_back=50").json()
    other_seed = make_client(clock=lambda: FIXED_NOW, seed=SEED + 1)
    third = other_seed.get(f"{BASE}/bars?symbol=TSLA&resolution=60&count_back=50").json()

    assert first == second
    assert first["bars"] != third["bars"]


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        (
            "symbol=AAPL&resolution=1",
            {
                "type": "missing",
                "loc": ["query", "from"],
                "msg": "either from or count_back is required",
                "input": None,
            },
        ),
        (
            "symbol=AAPL&resolution=1&from=1&count_back=5",
            {
                "type": "value_error",
                "loc": ["query", "count_back"],
                "msg": "give either from or count_back, not both",
                "input": 5,
            },
        ),
        (
            f"symbol=AAPL&resolution=1&from={MINUTE_START}&to={MINUTE_START}",
            {
                "type": "value_error",
                "loc": ["query", "from"],
                "msg": f"from ({MINUTE_START}) must be earlier than to ({MINUTE_START})",
                "input": MINUTE_START,
            },
        ),
        (
            f"symbol=AAPL&resolution=1&from={MINUTE_START - 5000 * 60}",
            {
                "type": "value_error",
                "loc": ["query", "from"],
                "msg": "the range holds 5001 bars at resolution 1, more than the maximum of 5000; "
                "move from closer to to, or use count_back",
                "input": MINUTE_START - 5000 * 60,
            },
        ),
        (
            "symbol=AAPL&resolution=1&count_back=5001",
            {
                "type": "less_than_equal",
                "loc": ["query", "count_back"],
                "msg": "Input should be less than or equal to 5000",
                "input": "5001",
                "ctx": {"le": 5000},
            },
        ),
        (
            "symbol=AAPL&resolution=1&count_back=0",
            {
                "type": "greater_than_equal",
                "loc": ["query", "count_back"],
                "msg": "Input should be greater than or equal to 1",
                "input": "0",
                "ctx": {"ge": 1},
            },
        ),
        (
            "symbol=AAPL&resolution=2&count_back=1",
            {
                "type": "literal_error",
                "loc": ["query", "resolution"],
                "msg": "Input should be '1', '5', '15', '60', '240' or '1D'",
                "input": "2",
                "ctx": {"expected": "'1', '5', '15', '60', '240' or '1D'"},
            },
        ),
        ("symbol=XYZ&resolution=1&count_back=1", unknown_symbol_error("query", "symbol", "XYZ")),
        (
            "resolution=1&count_back=1",
            {"type": "missing", "loc": ["query", "symbol"], "msg": "Field required", "input": None},
        ),
    ],
)
def test_get_bars_invalid(fixed_client: TestClient, query: str, detail: dict) -> None:
    response = fixed_client.get(f"{BASE}/bars?{query}")

    assert response.status_code == 422
    assert response.json() == {"detail": [detail]}


@pytest.mark.parametrize("query", ["symbols=MSFT&symbols=aapl", "symbols=MSFT,aapl"])
def test_get_quotes(fixed_client: TestClient, query: str) -> None:
    market = MarketSimulator(SEED)

    response = fixed_client.get(f"{BASE}/quotes?{query}")

    assert response.status_code == 200
    assert response.json() == {
        "quotes": [market.quote("MSFT", FIXED_NOW).model_dump(), market.quote("AAPL", FIXED_NOW).model_dump()]
    }


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        (
            "symbols=AAPL,XYZ",
            {
                "type": "unknown_symbol",
                "loc": ["query", "symbols"],
                "msg": f"unknown symbol 'XYZ'; known symbols: {KNOWN_SYMBOLS}",
                "input": "XYZ",
            },
        ),
        (
            "symbols=,",
            {"type": "missing", "loc": ["query", "symbols"], "msg": "at least one symbol is required", "input": [","]},
        ),
        (
            "symbols=" + ",".join(["AAPL"] * 51),
            {
                "type": "too_long",
                "loc": ["query", "symbols"],
                "msg": "51 symbols given, at most 50 allowed",
                "input": [",".join(["AAPL"] * 51)],
            },
        ),
        ("", {"type": "missing", "loc": ["query", "symbols"], "msg": "Field required", "input": None}),
    ],
)
def test_get_quotes_invalid(fixed_client: TestClient, query: str, detail: dict) -> None:
    response = fixed_client.get(f"{BASE}/quotes?{query}")

    assert response.status_code == 422
    assert response.json() == {"detail": [detail]}
