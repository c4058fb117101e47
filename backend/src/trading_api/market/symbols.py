"""Catalog of simulated symbols and supported bar resolutions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

# Bar resolutions in TradingView notation (minutes, or "1D" for a day) mapped to seconds.
RESOLUTIONS: dict[str, int] = {
    "1": 60,
    "5": 300,
    "15": 900,
    "60": 3_600,
    "240": 14_400,
    "1D": 86_400,
}
Resolution = Literal["1", "5", "15", "60", "240", "1D"]
SymbolType = Literal["stock", "crypto"]


@dataclass(frozen=True)
class SymbolSpec:
    """A tradable instrument and the parameters of its simulated price path."""

    symbol: str
    description: str
    exchange: str
    type: SymbolType
    currency: str
    base_price: float
    # Scale of the price swings relative to a typical large-cap stock (1.0).
    volatility: float
    # Number of price decimals.
    decimals: int
    spread_bps: float
    volume_per_s: float


SYMBOLS: dict[str, SymbolSpec] = {
    spec.symbol: spec
    for spec in (
        SymbolSpec("AAPL", "Apple Inc.", "NASDAQ", "stock", "USD", 190.0, 1.0, 2, 1.0, 900.0),
        SymbolSpec("MSFT", "Microsoft Corporation", "NASDAQ", "stock", "USD", 410.0, 0.9, 2, 1.0, 400.0),
        SymbolSpec("GOOGL", "Alphabet Inc. Class A", "NASDAQ", "stock", "USD", 160.0, 1.1, 2, 1.2, 450.0),
        SymbolSpec("AMZN", "Amazon.com Inc.", "NASDAQ", "stock", "USD", 180.0, 1.2, 2, 1.2, 700.0),
        SymbolSpec("TSLA", "Tesla Inc.", "NASDAQ", "stock", "USD", 240.0, 2.5, 2, 2.0, 1_500.0),
        SymbolSpec("IBM", "International Business Machines", "NYSE", "stock", "USD", 170.0, 0.7, 2, 1.5, 80.0),
        SymbolSpec("JPM", "JPMorgan Chase & Co.", "NYSE", "stock", "USD", 200.0, 0.8, 2, 1.2, 150.0),
        SymbolSpec("KO", "The Coca-Cola Company", "NYSE", "stock", "USD", 62.0, 0.5, 2, 1.6, 250.0),
        SymbolSpec("BTCUSD", "Bitcoin / US Dollar", "CRYPTO", "crypto", "USD", 65_000.0, 3.0, 2, 0.5, 2.0),
        SymbolSpec("ETHUSD", "Ether / US Dollar", "CRYPTO", "crypto", "USD", 3_200.0, 3.5, 2, 0.8, 20.0),
    )
}

EXCHANGES: dict[str, str] = {
    "NASDAQ": "Nasdaq Stock Market",
    "NYSE": "New York Stock Exchange",
    "CRYPTO": "Simulated crypto exchange",
}


def validate_symbol(value: str) -> str:
    """Return the catalog spelling of a symbol, matched case-insensitively.

    Raises PydanticCustomError `unknown_symbol`, so request validation reports the field.
    """
    symbol = value.strip().upper()
    if symbol not in SYMBOLS:
        raise PydanticCustomError(
            "unknown_symbol",
            "unknown symbol '{symbol}'; known symbols: {known}",
            {"symbol": value, "known": ", ".join(SYMBOLS)},
        )
    return symbol


KnownSymbol = Annotated[str, AfterValidator(validate_symbol)]


def validate_exchange(value: str) -> str:
    """Return the catalog spelling of an exchange code, matched case-insensitively."""
    exchange = value.strip().upper()
    if exchange not in EXCHANGES:
        raise PydanticCustomError(
            "unknown_exchange",
            "unknown exchange '{exchange}'; known exchanges: {known}",
            {"exchange": value, "known": ", ".join(EXCHANGES)},
        )
    return exchange


KnownExchange = Annotated[str, AfterValidator(validate_exchange)]
