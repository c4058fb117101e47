"""Broker module: a simulated account with orders, positions and a fill simulator."""

from trading_api.modules.base import Module
from trading_api.modules.broker.router import DESCRIPTION, NAME, TITLE, create_router
from trading_api.modules.broker.service import BrokerService
from trading_api.modules.broker.streams import STREAMS

MODULE = Module(
    name=NAME,
    title=TITLE,
    description=DESCRIPTION,
    streams=STREAMS,
    create_router=create_router,
    create_service=BrokerService,
)

__all__ = ["MODULE"]
