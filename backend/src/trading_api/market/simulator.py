"""Deterministic price, volume, bar and quote generator."""

from __future__ import annotations

import math
import random
import time
import zlib
from collections.abc import Callable
from pydantic import BaseModel, Field

from trading_api.market.symbols import SYMBOLS, SymbolSpec

Clock = Callable[[], float]

# Waves that make up the log-price path: (period in seconds, amplitude of the log price
# at volatility 1.0). The periods span a minute to a month, so every bar resolution shows
# movement.
PRICE_WAVES: tuple[tuple[float, float], ...] = (
    (60.0, 0.0006),
    (900.0, 0.0015),
    (4 * 3_600.0, 0.005),
    (3 * 86_400.0, 0.02),
    (30 * 86_400.0, 0.06),
)
# Amplitude of the per-second noise added to the log price at volatility 1.0.
NOISE_AMPLITUDE = 0.0003
# Periods (seconds) and relative weights of the volume rate swings. The weights add up to
# less than 1, so the volume rate stays positive and cumulative volume never decreases.
VOLUME_WAVES: tuple[tuple[float, float], ...] = ((3_600.0, 0.5), (86_400.0, 0.3))
# Price samples per bar used for its high and low, in addition to open and close.
BAR_SAMPLES = 12
SECONDS_PER_DAY = 86_400

_MASK_64 = (1 << 64) - 1


class Bar(BaseModel):
    """An OHLCV bar."""

    time: int = Field(description="Start of the bar in Unix seconds.")
    open: float
    high: float
    low: float
    close: float
    volume: float


class Quote(BaseModel):
    """A snapshot of a symbol's market."""

    symbol: str
    time: float = Field(description="Time of the snapshot in Unix seconds.")
    last: float = Field(description="Last traded price.")
    bid: float
    ask: float
    spread: float = Field(description="ask - bid.")
    change: float = Field(description="last - previous_close.")
    change_percent: float = Field(description="change as a percentage of previous_close.")
    volume: float = Field(description="Volume traded since 00:00 UTC.")
    previous_close: float = Field(description="Price at 00:00 UTC.")


def _mix64(value: int) -> int:
    """Scramble a 64-bit integer (the SplitMix64 finalizer)."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK_64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK_64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK_64
    return value ^ (value >> 31)


class _SymbolPath:
    """Price and volume path of one symbol for one seed."""

    def __init__(self, spec: SymbolSpec, seed: int) -> None:
        self.spec = spec
        key = f"{seed}:{spec.symbol}"
        # random.Random seeded with a str is stable across processes and Python versions
        # (unlike hash()), which keeps the history identical for a given seed.
        rng = random.Random(key)
        self.noise_key = _mix64(zlib.crc32(key.encode()) ^ (seed & _MASK_64))
        self.waves = [
            (period * rng.uniform(0.8, 1.25), amplitude * spec.volatility, rng.uniform(0.0, 2 * math.pi))
            for period, amplitude in PRICE_WAVES
        ]
        self.volume_waves = [(period, weight, rng.uniform(0.0, 2 * math.pi)) for period, weight in VOLUME_WAVES]
        self.log_base = math.log(spec.base_price)

    def _noise_at(self, second: int) -> float:
        return _mix64(self.noise_key ^ (second & _MASK_64)) / _MASK_64 * 2.0 - 1.0

    def price(self, t: float) -> float:
        log_price = self.log_base
        for period, amplitude, phase in self.waves:
            log_price += amplitude * math.sin(2 * math.pi * t / period + phase)

        # Value noise: linear interpolation between per-second random values, so the
        # price moves smoothly within a second and updates faster than 1 Hz still differ.
        second = math.floor(t)
        fraction = t - second
        noise = self._noise_at(second) * (1 - fraction) + self._noise_at(second + 1) * fraction
        log_price += NOISE_AMPLITUDE * self.spec.volatility * noise
        return math.exp(log_price)

    def cumulative_volume(self, t: float) -> float:
        """Return the volume traded from time 0 to t, so the volume of [a, b) is V(b) - V(a)."""
        total = t
        for period, weight, phase in self.volume_waves:
            total += weight * period / (2 * math.pi) * math.sin(2 * math.pi * t / period + phase)
        return self.spec.volume_per_s * total


class MarketSimulator:
    """Generator of prices, bars and quotes. The same seed gives the same history."""

    def __init__(self, seed: int, clock: Clock = time.time) -> None:
        self.seed = seed
        self.clock = clock
        self._paths = {symbol: _SymbolPath(spec, seed) for symbol, spec in SYMBOLS.items()}

    def now(self) -> float:
        """Return the simulator clock's current Unix time in seconds."""
        return self.clock()

    def price(self, symbol: str, t: float) -> float:
        """Return the unrounded price of a symbol at Unix time t."""
        return self._paths[symbol].price(t)

    def bar(self, symbol: str, resolution_s: int, start: int, now: float | None = None) -> Bar:
        """Build the bar that starts at `start`. A bar still forming at `now` ends at `now`."""
        path = self._paths[symbol]
        decimals = path.spec.decimals
        now = self.now() if now is None else now
        end = min(start + resolution_s, now)

        open_price = path.price(start)
        close_price = path.price(end)
        high = max(open_price, close_price)
        low = min(open_price, close_price)
        # Samples lie on a fixed grid from the bar start, so a forming bar's high and low
        # only widen as time passes and end equal to the finished bar's.
        step = resolution_s / BAR_SAMPLES
        for index in range(1, BAR_SAMPLES):
            sample_time = start + index * step
            if sample_time >= end:
                break
            sample = path.price(sample_time)
            high = max(high, sample)
            low = min(low, sample)

        volume = path.cumulative_volume(end) - path.cumulative_volume(start)
        return Bar(
            time=start,
            open=round(open_price, decimals),
            high=round(high, decimals),
            low=round(low, decimals),
            close=round(close_price, decimals),
            volume=round(volume, 2),
        )

    def bars(
        self, symbol: str, resolution_s: int, first_start: int, last_start: int, now: float | None = None
    ) -> list[Bar]:
        """Build the bars whose start lies in [first_start, last_start], skipping bars after `now`."""
        now = self.now() if now is None else now
        last_start = min(last_start, math.floor(now / resolution_s) * resolution_s)
        return [
            self.bar(symbol, resolution_s, start, now) for start in range(first_start, last_start + 1, resolution_s)
        ]

    def quote(self, symbol: str, now: float | None = None) -> Quote:
        """Build the quote of a symbol at `now`, with change and volume counted from 00:00 UTC."""
        path = self._paths[symbol]
        spec = path.spec
        decimals = spec.decimals
        tick = 10.0**-decimals
        now = self.now() if now is None else now
        day_start = math.floor(now / SECONDS_PER_DAY) * SECONDS_PER_DAY

        last = round(path.price(now), decimals)
        previous_close = round(path.price(day_start), decimals)
        spread = max(tick, round(last * spec.spread_bps / 10_000, decimals))
        bid = round(last - spread / 2, decimals)
        ask = round(bid + spread, decimals)
        change = round(last - previous_close, decimals)
        return Quote(
            symbol=symbol,
            time=now,
            last=last,
            bid=bid,
            ask=ask,
            spread=round(ask - bid, decimals),
            change=change,
            change_percent=round(change / previous_close * 100, 4),
            volume=round(path.cumulative_volume(now) - path.cumulative_volume(day_start), 2),
            previous_close=previous_close,
        )
