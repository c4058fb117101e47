"""Request and response models of the datafeed module."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from trading_api.market import Bar, KnownSymbol, Quote, Resolution, SymbolType

# Maximum number of symbols in one quotes request or subscription.
MAX_QUOTE_SYMBOLS = 50


class Exchange(BaseModel):
    """An exchange whose symbols the datafeed serves."""

    value: str = Field(description="Exchange code used in symbol names and filters.")
    name: str
    description: str


class DatafeedConfig(BaseModel):
    """Features and limits of the datafeed."""

    supported_resolutions: list[Resolution]
    exchanges: list[Exchange]
    symbol_types: list[SymbolType]
    supports_search: bool
    supports_time: bool
    max_bars: int = Field(description="Maximum number of bars in one bars request.")


class SymbolSearchResult(BaseModel):
    """A symbol that matches a search."""

    symbol: str
    full_name: str = Field(description="EXCHANGE:SYMBOL.")
    description: str
    exchange: str
    type: SymbolType


class SymbolInfo(SymbolSearchResult):
    """Everything a chart needs to display a symbol."""

    currency: str
    session: str = Field(description="Trading hours; the simulated market trades around the clock.")
    timezone: str
    pricescale: int = Field(description="10 ** number of price decimals.")
    minmov: int = Field(description="Minimum price move in units of 1 / pricescale.")
    has_intraday: bool
    supported_resolutions: list[Resolution]


class BarsResponse(BaseModel):
    """Historical bars of a symbol, oldest first."""

    symbol: str
    resolution: Resolution
    bars: list[Bar]
    no_data: bool = Field(description="True when the requested range contains no bar.")


class QuotesResponse(BaseModel):
    """Quotes of the requested symbols, in request order."""

    quotes: list[Quote]


class BarsStreamParams(BaseModel):
    """Parameters of a `bars` subscription."""

    model_config = ConfigDict(extra="forbid")

    symbol: KnownSymbol
    resolution: Resolution


class QuotesStreamParams(BaseModel):
    """Parameters of a `quotes` subscription."""

    model_config = ConfigDict(extra="forbid")

    symbols: list[KnownSymbol] = Field(min_length=1, max_length=MAX_QUOTE_SYMBOLS)

    @field_validator("symbols")
    @classmethod
    def _sort_and_deduplicate(cls, symbols: list[str]) -> list[str]:
        # Sorting makes every ordering of the same symbols share one topic.
        return sorted(set(symbols))


class QuotesUpdate(BaseModel):
    """Quotes of every symbol of a `quotes` subscription."""

    quotes: list[Quote]
