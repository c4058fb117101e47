"""REST routes of the datafeed module."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic_core import PydanticCustomError

from trading_api.core.routing import error_responses, field_error
from trading_api.market import (
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
from trading_api.modules.base import create_module_router, get_runtime
from trading_api.modules.datafeed.models import (
    MAX_QUOTE_SYMBOLS,
    BarsResponse,
    DatafeedConfig,
    Exchange,
    QuotesResponse,
    SymbolInfo,
    SymbolSearchResult,
)
from trading_api.modules.datafeed.service import MAX_BARS, DatafeedService

NAME = "datafeed"
TITLE = "Datafeed"
DESCRIPTION = "Simulated market data: symbols, historical bars and quotes, with bars and quotes streams."
SYMBOL_TYPES: list[SymbolType] = ["stock", "crypto"]
SYMBOL_NOT_FOUND = {404: "No symbol matches the given SYMBOL or EXCHANGE:SYMBOL."}


def get_datafeed_service(request: Request) -> DatafeedService:
    """Return the datafeed service of this app."""
    return get_runtime(request, NAME).service


def _search_result(spec: SymbolSpec) -> SymbolSearchResult:
    return SymbolSearchResult(
        symbol=spec.symbol,
        full_name=f"{spec.exchange}:{spec.symbol}",
        description=spec.description,
        exchange=spec.exchange,
        type=spec.type,
    )


def _find_symbol(name: str) -> SymbolSpec | None:
    """Return the spec of `SYMBOL` or `EXCHANGE:SYMBOL`, matched case-insensitively."""
    exchange, _, symbol = name.strip().upper().rpartition(":")
    spec = SYMBOLS.get(symbol)
    if spec is None or (exchange and exchange != spec.exchange):
        return None
    return spec


DatafeedServiceDep = Annotated[DatafeedService, Depends(get_datafeed_service)]


def create_router() -> APIRouter:
    """Create the datafeed router: config, symbols, bars, quotes, health, docs and streams."""
    router = create_module_router(NAME, TITLE, DESCRIPTION)

    @router.get("/config", response_model=DatafeedConfig)
    async def get_config() -> DatafeedConfig:
        """Return the supported resolutions, exchanges and symbol types."""
        return DatafeedConfig(
            supported_resolutions=list(RESOLUTIONS),
            exchanges=[Exchange(value=code, name=code, description=name) for code, name in EXCHANGES.items()],
            symbol_types=SYMBOL_TYPES,
            supports_search=True,
            supports_time=True,
            max_bars=MAX_BARS,
        )

    # Registered before /symbols/{symbol} so that "search" is not taken for a symbol.
    @router.get("/symbols/search", response_model=list[SymbolSearchResult])
    async def search_symbols(
        query: Annotated[str, Query(max_length=100, description="Text found in the symbol or its description.")] = "",
        exchange: Annotated[KnownExchange | None, Query(description="Only symbols of this exchange.")] = None,
        type: Annotated[SymbolType | None, Query(description="Only symbols of this type.")] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 30,
    ) -> list[SymbolSearchResult]:
        """Return the symbols whose name or description contains the query, case-insensitively."""
        text = query.strip().lower()
        results = []
        for spec in SYMBOLS.values():
            if text and text not in spec.symbol.lower() and text not in spec.description.lower():
                continue
            if exchange is not None and spec.exchange != exchange:
                continue
            if type is not None and spec.type != type:
                continue
            results.append(_search_result(spec))
        return results[:limit]

    @router.get("/symbols/{symbol}", response_model=SymbolInfo, responses=error_responses(SYMBOL_NOT_FOUND))
    async def resolve_symbol(symbol: str) -> SymbolInfo:
        """Return the chart settings of a symbol given as SYMBOL or EXCHANGE:SYMBOL."""
        spec = _find_symbol(symbol)
        if spec is None:
            raise HTTPException(
                status_code=404,
                detail=f"symbol '{symbol}' not found; find symbols with GET {router.prefix}/symbols/search",
            )
        return SymbolInfo(
            **_search_result(spec).model_dump(),
            currency=spec.currency,
            session="24x7",
            timezone="Etc/UTC",
            pricescale=10**spec.decimals,
            minmov=1,
            has_intraday=True,
            supported_resolutions=list(RESOLUTIONS),
        )

    @router.get("/bars", response_model=BarsResponse)
    async def get_bars(
        service: DatafeedServiceDep,
        symbol: Annotated[KnownSymbol, Query()],
        resolution: Annotated[Resolution, Query()],
        from_time: Annotated[
            int | None, Query(alias="from", ge=0, description="First bar start, Unix seconds.")
        ] = None,
        to_time: Annotated[
            int | None, Query(alias="to", ge=0, description="Bars start before this, Unix seconds; default now.")
        ] = None,
        count_back: Annotated[
            int | None, Query(ge=1, le=MAX_BARS, description="Number of bars before `to`; replaces `from`.")
        ] = None,
    ) -> BarsResponse:
        """Return the bars of a symbol, given either from/to or count_back."""
        if from_time is None and count_back is None:
            raise field_error("query", "from", "either from or count_back is required", None, "missing")
        if from_time is not None and count_back is not None:
            raise field_error("query", "count_back", "give either from or count_back, not both", count_back)
        if from_time is not None and to_time is not None and from_time >= to_time:
            raise field_error("query", "from", f"from ({from_time}) must be earlier than to ({to_time})", from_time)

        first_start, last_start = service.bar_range(resolution, from_time, to_time, count_back)
        bar_count = (last_start - first_start) // RESOLUTIONS[resolution] + 1
        if bar_count > MAX_BARS:
            raise field_error(
                "query",
                "from",
                f"the range holds {bar_count} bars at resolution {resolution}, more than the maximum of {MAX_BARS}; "
                f"move from closer to to, or use count_back",
                from_time,
            )

        bars = service.get_bars(symbol, resolution, first_start, last_start)
        return BarsResponse(symbol=symbol, resolution=resolution, bars=bars, no_data=not bars)

    @router.get("/quotes", response_model=QuotesResponse)
    async def get_quotes(
        service: DatafeedServiceDep,
        symbols: Annotated[list[str], Query(min_length=1, description="Symbols, repeated or comma-separated.")],
    ) -> QuotesResponse:
        """Return the current quotes of the given symbols."""
        names = [name for value in symbols for name in value.split(",") if name.strip()]
        if not names:
            raise field_error("query", "symbols", "at least one symbol is required", symbols, "missing")
        if len(names) > MAX_QUOTE_SYMBOLS:
            raise field_error(
                "query",
                "symbols",
                f"{len(names)} symbols given, at most {MAX_QUOTE_SYMBOLS} allowed",
                symbols,
                "too_long",
            )

        canonical = []
        for name in names:
            try:
                canonical.append(validate_symbol(name))
            except PydanticCustomError as exc:
                raise field_error("query", "symbols", exc.message(), name, exc.type) from None

        now = service.market.now()
        return QuotesResponse(quotes=[service.market.quote(symbol, now) for symbol in canonical])

    return router
