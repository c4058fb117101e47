"""REST routes of the broker module."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status

from trading_api.core.routing import BODY_DECODE_ERROR, error_responses, field_error
from trading_api.market import KnownSymbol
from trading_api.modules.base import create_module_router, get_runtime
from trading_api.modules.broker.models import (
    Account,
    Execution,
    ModifyOrderRequest,
    Order,
    OrderPreview,
    OrderRequest,
    OrderStatus,
    Position,
)
from trading_api.modules.broker.service import (
    BrokerService,
    OrderFieldError,
    OrderNotFoundError,
    OrderNotWorkingError,
    PositionNotFoundError,
)

NAME = "broker"
TITLE = "Broker"
DESCRIPTION = "Simulated broker account: orders, positions, executions and equity, with a fill simulator and streams."


def get_broker_service(request: Request) -> BrokerService:
    """Return the broker service of this app."""
    return get_runtime(request, NAME).service


BrokerServiceDep = Annotated[BrokerService, Depends(get_broker_service)]
OrderId = Annotated[str, Path(description="Order id returned when the order was placed, e.g. ord-1.")]

# Descriptions of the error statuses that the order routes document.
ORDER_NOT_FOUND = {404: "No order has this id."}
ORDER_NOT_WORKING = {409: "The order is filled or cancelled, so it can no longer change."}
POSITION_NOT_FOUND = {404: "There is no open position in this symbol."}


def create_router() -> APIRouter:
    """Create the broker router: orders, positions, executions, account, health, docs and streams."""
    router = create_module_router(NAME, TITLE, DESCRIPTION)

    @router.post(
        "/orders",
        response_model=Order,
        status_code=status.HTTP_201_CREATED,
        responses=error_responses(BODY_DECODE_ERROR),
    )
    async def place_order(service: BrokerServiceDep, order: OrderRequest) -> Order:
        """Place a market, limit or stop order, which stays working until the fill simulator fills it."""
        return service.place_order(order)

    @router.post("/orders/preview", response_model=OrderPreview, responses=error_responses(BODY_DECODE_ERROR))
    async def preview_order(service: BrokerServiceDep, order: OrderRequest) -> OrderPreview:
        """Return the estimated price, value and position effect of an order without placing it."""
        return service.preview_order(order)

    @router.get("/orders", response_model=list[Order])
    async def list_orders(
        service: BrokerServiceDep,
        status: Annotated[OrderStatus | None, Query(description="Only orders in this status.")] = None,
    ) -> list[Order]:
        """Return all orders, oldest first."""
        return service.list_orders(status)

    @router.get("/orders/{order_id}", response_model=Order, responses=error_responses(ORDER_NOT_FOUND))
    async def get_order(service: BrokerServiceDep, order_id: OrderId) -> Order:
        """Return one order."""
        try:
            return service.get_order(order_id)
        except OrderNotFoundError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None

    @router.patch(
        "/orders/{order_id}",
        response_model=Order,
        responses=error_responses(BODY_DECODE_ERROR, ORDER_NOT_FOUND, ORDER_NOT_WORKING),
    )
    async def modify_order(service: BrokerServiceDep, order_id: OrderId, changes: ModifyOrderRequest) -> Order:
        """Change the quantity, limit price or stop price of a working order."""
        try:
            return service.modify_order(order_id, changes)
        except OrderNotFoundError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None
        except OrderNotWorkingError as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None
        except OrderFieldError as exc:
            raise field_error("body", exc.field, exc.message, exc.value) from None

    @router.delete(
        "/orders/{order_id}", response_model=Order, responses=error_responses(ORDER_NOT_FOUND, ORDER_NOT_WORKING)
    )
    async def cancel_order(service: BrokerServiceDep, order_id: OrderId) -> Order:
        """Cancel a working order and return it."""
        try:
            return service.cancel_order(order_id)
        except OrderNotFoundError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None
        except OrderNotWorkingError as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None

    @router.get("/positions", response_model=list[Position])
    async def list_positions(service: BrokerServiceDep) -> list[Position]:
        """Return the open positions valued at current prices."""
        return service.list_positions()

    @router.post(
        "/positions/{symbol}/close",
        response_model=Order,
        status_code=status.HTTP_201_CREATED,
        responses=error_responses(POSITION_NOT_FOUND),
    )
    async def close_position(service: BrokerServiceDep, symbol: Annotated[KnownSymbol, Path()]) -> Order:
        """Place the market order that flattens the position in a symbol."""
        try:
            return service.close_position(symbol)
        except PositionNotFoundError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None

    @router.get("/executions", response_model=list[Execution])
    async def list_executions(service: BrokerServiceDep, symbol: Annotated[KnownSymbol, Query()]) -> list[Execution]:
        """Return the executions in a symbol, oldest first."""
        return service.list_executions(symbol)

    @router.get("/account", response_model=Account)
    async def get_account(service: BrokerServiceDep) -> Account:
        """Return the balance, equity and P&L of the account."""
        return service.get_account()

    return router
