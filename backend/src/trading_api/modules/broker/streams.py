"""WebSocket stream routes of the broker module: orders, positions, executions and equity."""

from __future__ import annotations

from pydantic import BaseModel

from trading_api.modules.broker.models import (
    Account,
    Execution,
    ExecutionsStreamParams,
    NoStreamParams,
    Order,
    Position,
)
from trading_api.modules.broker.service import BrokerService
from trading_api.ws import Emit, StreamRoute, wait_until_cancelled


async def produce_orders(service: BrokerService, params: NoStreamParams, emit: Emit) -> None:
    """Emit every order change until cancelled."""
    with service.listen("order", emit):
        await wait_until_cancelled()


async def produce_positions(service: BrokerService, params: NoStreamParams, emit: Emit) -> None:
    """Emit every position change until cancelled."""
    with service.listen("position", emit):
        await wait_until_cancelled()


async def produce_executions(service: BrokerService, params: ExecutionsStreamParams, emit: Emit) -> None:
    """Emit every execution in the subscribed symbol until cancelled."""

    def emit_if_symbol_matches(execution: BaseModel) -> None:
        if isinstance(execution, Execution) and execution.symbol == params.symbol:
            emit(execution)

    with service.listen("execution", emit_if_symbol_matches):
        await wait_until_cancelled()


async def produce_equity(service: BrokerService, params: NoStreamParams, emit: Emit) -> None:
    """Emit the account after every fill, and at every tick while a position is open, until cancelled."""
    with service.listen("equity", emit):
        await wait_until_cancelled()


STREAMS = (
    StreamRoute(
        name="orders",
        summary="Every order change: placed, modified, filled or cancelled.",
        params_model=NoStreamParams,
        update_model=Order,
        produce=produce_orders,
    ),
    StreamRoute(
        name="positions",
        summary="The position of a symbol after each of its fills.",
        params_model=NoStreamParams,
        update_model=Position,
        produce=produce_positions,
    ),
    StreamRoute(
        name="executions",
        summary="Every fill in one symbol.",
        params_model=ExecutionsStreamParams,
        update_model=Execution,
        produce=produce_executions,
    ),
    StreamRoute(
        name="equity",
        summary="Balance, equity and P&L after each fill, and at every tick while a position is open.",
        params_model=NoStreamParams,
        update_model=Account,
        produce=produce_equity,
    ),
)
