"""Simulated market shared by the broker and datafeed modules.

Prices are a deterministic function of the seed, the symbol and the time, so every
server started with the same seed shows the same prices at the same moment.
"""

from trading_api.market.simulator import Bar, Clock, MarketSimulator, Quote
from trading_api.market.symbols import (
    EXCHANGES,
    RESOLUTIONS,
    SYMBOLS,
    KnownExchange,
    KnownSymbol,
    Resolution,
    SymbolSpec,
    SymbolType,
    validate_symbol,
)

__all__ = [
    "EXCHANGES",
    "RESOLUTIONS",
    "SYMBOLS",
    "Bar",
    "Clock",
    "KnownExchange",
    "KnownSymbol",
    "MarketSimulator",
    "Quote",
    "Resolution",
    "SymbolSpec",
    "SymbolType",
    "validate_symbol",
]
