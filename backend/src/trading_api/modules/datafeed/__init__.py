"""Datafeed module: simulated market data over REST and WebSocket."""

from trading_api.modules.base import Module
from trading_api.modules.datafeed.router import DESCRIPTION, NAME, TITLE, create_router
from trading_api.modules.datafeed.service import DatafeedService
from trading_api.modules.datafeed.streams import STREAMS

MODULE = Module(
    name=NAME,
    title=TITLE,
    description=DESCRIPTION,
    streams=STREAMS,
    create_router=create_router,
    create_service=DatafeedService,
)

__all__ = ["MODULE"]
