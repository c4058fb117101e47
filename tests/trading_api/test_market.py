"""Tests of the market simulator: determinism, bars and quotes."""

from __future__ import annotations

import itertools

import pytest

from trading_api.market import SYMBOLS, MarketSimulator

DAY_S = 86_400
START = 1_700_006_400  # 2023-11-15 00:00 UTC, a day boundary
NOW = START + 3 * 3_600 + 30.5


def test_same_seed_gives_same_history() -> None:
    first = MarketSimulator(seed=1).bars("AAPL", 60, START, START + 3_600, now=NOW)
    second = MarketSimulator(seed=1).bars("AAPL", 60, START, START + 3_600, now=NOW)

    assert first == second
    assert len(first) == 61


def test_different_seed_gives_different_history() -> None:
    first = MarketSimulator(seed=1).bars("AAPL", 60, START, START + 3_600, now=NOW)
    second = MarketSimulator(seed=2).bars("AAPL", 60, START, START + 3_600, now=NOW)

    assert [bar.close for bar in first] != [bar.close for bar in second]


def test_history_does_not_depend_on_request_time() -> None:
    market = MarketSimulator(seed=1)

    early = market.bars("MSFT", 300, START, START + 1_800, now=NOW)
    late = market.bars("MSFT", 300, START, START + 1_800, now=NOW + 10 * DAY_S)

    assert early == late


@pytest.mark.parametrize("symbol", list(SYMBOLS))
def test_bars_are_consistent(symbol: str) -> None:
    bars = MarketSimulator(seed=3).bars(symbol, 900, START, START + DAY_S, now=NOW)

    for bar in bars:
        assert bar.low <= min(bar.open, bar.close)
        assert bar.high >= max(bar.open, bar.close)
        assert bar.volume > 0
    for previous, current in itertools.pairwise(bars):
        assert current.time - previous.time == 900
        # Prices are a function of time, so a bar opens where the previous one closed.
        assert current.open == previous.close


def test_bars_skip_the_future() -> None:
    bars = MarketSimulator(seed=1).bars("AAPL", 3_600, START, START + DAY_S, now=NOW)

    assert [bar.time for bar in bars] == [START, START + 3_600, START + 7_200, START + 10_800]


def test_forming_bar_ends_at_now() -> None:
    market = MarketSimulator(seed=1)
    start = START + 3 * 3_600

    forming = market.bar("AAPL", 60, start, now=NOW)

    assert forming.close == round(market.price("AAPL", NOW), 2)
    assert forming.volume < market.bar("AAPL", 60, start, now=start + 60).volume


def test_volume_adds_up_across_resolutions() -> None:
    market = MarketSimulator(seed=1)

    hour = market.bar("KO", 3_600, START, now=NOW)
    minutes = market.bars("KO", 60, START, START + 3_540, now=NOW)

    assert sum(bar.volume for bar in minutes) == pytest.approx(hour.volume, rel=1e-6)


@pytest.mark.parametrize("symbol", list(SYMBOLS))
def test_quote_fields_agree(symbol: str) -> None:
    quote = MarketSimulator(seed=5).quote(symbol, now=NOW)

    assert quote.bid < quote.ask
    assert quote.spread == pytest.approx(quote.ask - quote.bid)
    assert quote.bid <= quote.last <= quote.ask
    assert quote.change == pytest.approx(quote.last - quote.previous_close)
    assert quote.change_percent == pytest.approx(quote.change / quote.previous_close * 100, abs=1e-4)
    assert quote.volume > 0


def test_quote_previous_close_is_day_open() -> None:
    market = MarketSimulator(seed=5)

    quote = market.quote("IBM", now=NOW)

    assert quote.previous_close == market.bar("IBM", DAY_S, START, now=NOW).open


def test_price_moves_within_a_second() -> None:
    market = MarketSimulator(seed=5)

    assert market.price("AAPL", NOW) != market.price("AAPL", NOW + 0.2)
