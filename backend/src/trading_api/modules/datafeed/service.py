"""Market data queries of the datafeed module."""

from __future__ import annotations

import math

from trading_api.market import RESOLUTIONS, Bar, Clock, MarketSimulator
from trading_api.settings import Settings

# Maximum number of bars in one bars request.
MAX_BARS = 5_000


class DatafeedService:
    """Serves bars and quotes from the market simulator."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.market = MarketSimulator(settings.seed, clock)
        self.update_interval_s = settings.update_interval_s

    async def start(self) -> None:
        """Do nothing, because the datafeed has no background work."""

    async def stop(self) -> None:
        """Do nothing, because the datafeed has no background work."""

    def bar_range(
        self, resolution: str, from_time: int | None, to_time: int | None, count_back: int | None
    ) -> tuple[int, int]:
        """Return the first and last bar start for a bars request.

        Bars start in [from_time, to_time) and never after now. With count_back, the range
        contains the last count_back bars before to_time instead.
        """
        resolution_s = RESOLUTIONS[resolution]
        now_start = math.floor(self.market.now() / resolution_s) * resolution_s
        last_start = now_start if to_time is None else math.floor((to_time - 1) / resolution_s) * resolution_s
        last_start = min(last_start, now_start)

        if count_back is not None:
            return last_start - (count_back - 1) * resolution_s, last_start
        return math.ceil((from_time or 0) / resolution_s) * resolution_s, last_start

    def get_bars(self, symbol: str, resolution: str, first_start: int, last_start: int) -> list[Bar]:
        """Return the bars of a symbol from first_start to last_start, inclusive."""
        return self.market.bars(symbol, RESOLUTIONS[resolution], first_start, last_start)
