"""WebSocket stream routes of the datafeed module: bars and quotes."""

from __future__ import annotations

import asyncio
import math

from trading_api.market import RESOLUTIONS, Bar
from trading_api.modules.datafeed.models import BarsStreamParams, QuotesStreamParams, QuotesUpdate
from trading_api.modules.datafeed.service import DatafeedService
from trading_api.ws import Emit, StreamRoute


async def produce_bars(service: DatafeedService, params: BarsStreamParams, emit: Emit) -> None:
    """Emit the forming bar at every tick, preceded by the finished bar at a resolution boundary."""
    market = service.market
    resolution_s = RESOLUTIONS[params.resolution]
    current_start: int | None = None
    while True:
        now = market.now()
        start = math.floor(now / resolution_s) * resolution_s
        if current_start is not None and start != current_start:
            # Send the final state of the bar that just closed before the new one begins.
            emit(market.bar(params.symbol, resolution_s, current_start, now))
        current_start = start
        emit(market.bar(params.symbol, resolution_s, start, now))
        await asyncio.sleep(service.update_interval_s)


async def produce_quotes(service: DatafeedService, params: QuotesStreamParams, emit: Emit) -> None:
    """Emit the quotes of all subscribed symbols at every tick."""
    market = service.market
    while True:
        now = market.now()
        emit(QuotesUpdate(quotes=[market.quote(symbol, now) for symbol in params.symbols]))
        await asyncio.sleep(service.update_interval_s)


STREAMS = (
    StreamRoute(
        name="bars",
        summary="The forming bar of a symbol at every tick, and a new bar at each resolution boundary.",
        params_model=BarsStreamParams,
        update_model=Bar,
        produce=produce_bars,
    ),
    StreamRoute(
        name="quotes",
        summary="Last price, bid, ask, spread, daily change and volume of a list of symbols at every tick.",
        params_model=QuotesStreamParams,
        update_model=QuotesUpdate,
        produce=produce_quotes,
    ),
)
