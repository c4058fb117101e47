"""In-memory broker: orders, positions, executions, account and the fill simulator."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel
from pydantic_core import PydanticCustomError

from trading_api.market import Clock, MarketSimulator, Quote
from trading_api.modules.broker.models import (
    Account,
    Execution,
    ModifyOrderRequest,
    Order,
    OrderPreview,
    OrderRequest,
    OrderStatus,
    Position,
    check_price_field,
)
from trading_api.settings import Settings

logger = logging.getLogger(__name__)

ACCOUNT_ID = "SIM-1"
ACCOUNT_CURRENCY = "USD"
INITIAL_BALANCE = 100_000.0
# Quantities are rounded to this many decimals so that repeated fills of fractional
# quantities net out to exactly zero.
QUANTITY_DECIMALS = 8
MONEY_DECIMALS = 2

EventKind = Literal["execution", "order", "position", "equity"]
Listener = Callable[[BaseModel], None]


class OrderNotFoundError(LookupError):
    """No order has the given id."""

    def __init__(self, order_id: str) -> None:
        super().__init__(f"order_id '{order_id}' not found")
        self.order_id = order_id


class OrderNotWorkingError(Exception):
    """The order is filled or cancelled, so it can't change any more."""

    def __init__(self, order: Order) -> None:
        super().__init__(f"order '{order.id}' is {order.status}; only working orders can be modified or cancelled")
        self.order = order


class PositionNotFoundError(LookupError):
    """There is no open position in the symbol."""

    def __init__(self, symbol: str) -> None:
        super().__init__(f"no open position in symbol '{symbol}'")
        self.symbol = symbol


class OrderFieldError(ValueError):
    """A field of a request is not valid for the order it applies to."""

    def __init__(self, field: str, message: str, value: object) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.value = value


@dataclass
class _PositionState:
    quantity: float = 0.0
    average_price: float = 0.0
    realized_pnl: float = 0.0


def _fill_price(order: Order, quote: Quote) -> float | None:
    """Return the price at which the order fills against the quote, or None if it does not fill yet."""
    price = quote.ask if order.side == "buy" else quote.bid
    if order.type == "market":
        return price
    if order.type == "limit" and order.limit_price is not None:
        reached = price <= order.limit_price if order.side == "buy" else price >= order.limit_price
        return price if reached else None
    if order.type == "stop" and order.stop_price is not None:
        triggered = price >= order.stop_price if order.side == "buy" else price <= order.stop_price
        return price if triggered else None
    return None


class BrokerService:
    """Simulated broker account whose working orders fill against simulated prices.

    Every state change is published to listeners synchronously, in the order it happens.
    A fill publishes its execution, then the order, then the position, then the account.
    """

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.market = MarketSimulator(settings.seed, clock)
        self.update_interval_s = settings.update_interval_s
        self._orders: dict[str, Order] = {}
        self._positions: dict[str, _PositionState] = {}
        self._executions: list[Execution] = []
        self._listeners: dict[EventKind, list[Listener]] = {"execution": [], "order": [], "position": [], "equity": []}
        self._order_ids = itertools.count(1)
        self._execution_ids = itertools.count(1)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the fill simulator task."""
        self._task = asyncio.get_running_loop().create_task(self._run_fill_simulator(), name="broker fill simulator")
        logger.info("started broker fill simulator (tick %.3f s)", self.update_interval_s)

    async def stop(self) -> None:
        """Stop the fill simulator task."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        logger.info("stopped broker fill simulator")

    @contextlib.contextmanager
    def listen(self, kind: EventKind, listener: Listener) -> Iterator[None]:
        """Call `listener` with every event of `kind` while the context is open."""
        self._listeners[kind].append(listener)
        try:
            yield
        finally:
            self._listeners[kind].remove(listener)

    def place_order(self, request: OrderRequest) -> Order:
        """Create a working order, which the fill simulator fills at a later tick."""
        now = self.market.now()
        order = Order(
            id=f"ord-{next(self._order_ids)}",
            symbol=request.symbol,
            side=request.side,
            type=request.type,
            quantity=round(request.quantity, QUANTITY_DECIMALS),
            limit_price=request.limit_price,
            stop_price=request.stop_price,
            status="working",
            filled_quantity=0.0,
            average_fill_price=None,
            created_at=now,
            updated_at=now,
        )
        self._orders[order.id] = order
        logger.info("placed order %s: %s %s %s %s", order.id, order.type, order.side, order.quantity, order.symbol)
        self._publish("order", order)
        return order

    def preview_order(self, request: OrderRequest) -> OrderPreview:
        """Return the estimated price, value and position effect of an order, without placing it."""
        quote = self.market.quote(request.symbol)
        market_price = quote.ask if request.side == "buy" else quote.bid
        estimated_price = request.limit_price or request.stop_price or market_price
        warnings = []
        if request.type == "limit" and request.limit_price is not None:
            crosses = request.limit_price >= quote.ask if request.side == "buy" else request.limit_price <= quote.bid
            if crosses:
                warnings.append(
                    f"limit price {request.limit_price} crosses the market ({market_price}); the order fills at once"
                )
        if request.type == "stop" and request.stop_price is not None:
            triggered = quote.ask >= request.stop_price if request.side == "buy" else quote.bid <= request.stop_price
            if triggered:
                warnings.append(
                    f"stop price {request.stop_price} is already reached ({market_price}); the order fills at once"
                )

        signed_quantity = request.quantity if request.side == "buy" else -request.quantity
        before = self._positions.get(request.symbol, _PositionState()).quantity
        return OrderPreview(
            symbol=request.symbol,
            side=request.side,
            type=request.type,
            quantity=request.quantity,
            estimated_price=estimated_price,
            estimated_value=round(estimated_price * request.quantity, MONEY_DECIMALS),
            position_quantity_before=before,
            position_quantity_after=round(before + signed_quantity, QUANTITY_DECIMALS),
            warnings=warnings,
        )

    def get_order(self, order_id: str) -> Order:
        """Return an order by id, raising OrderNotFoundError."""
        order = self._orders.get(order_id)
        if order is None:
            raise OrderNotFoundError(order_id)
        return order

    def list_orders(self, status: OrderStatus | None = None) -> list[Order]:
        """Return all orders, oldest first, optionally only those with `status`."""
        return [order for order in self._orders.values() if status is None or order.status == status]

    def modify_order(self, order_id: str, request: ModifyOrderRequest) -> Order:
        """Change the quantity or price of a working order."""
        order = self._working_order(order_id)
        changes = request.model_dump(exclude_none=True)
        for field in ("limit_price", "stop_price"):
            if field in changes:
                try:
                    check_price_field(field, changes[field], order.type)
                except PydanticCustomError as exc:
                    raise OrderFieldError(field, exc.message(), changes[field]) from None

        if "quantity" in changes:
            changes["quantity"] = round(changes["quantity"], QUANTITY_DECIMALS)
        order = order.model_copy(update={**changes, "updated_at": self.market.now()})
        self._orders[order.id] = order
        logger.info("modified order %s: %s", order.id, changes)
        self._publish("order", order)
        return order

    def cancel_order(self, order_id: str) -> Order:
        """Cancel a working order."""
        order = self._working_order(order_id)
        order = order.model_copy(update={"status": "cancelled", "updated_at": self.market.now()})
        self._orders[order.id] = order
        logger.info("cancelled order %s", order.id)
        self._publish("order", order)
        return order

    def list_positions(self) -> list[Position]:
        """Return the open positions, valued at current prices."""
        now = self.market.now()
        return [self._position(symbol, now) for symbol, state in self._positions.items() if state.quantity != 0]

    def close_position(self, symbol: str) -> Order:
        """Place a market order that flattens the position in `symbol`."""
        state = self._positions.get(symbol)
        if state is None or state.quantity == 0:
            raise PositionNotFoundError(symbol)
        side = "sell" if state.quantity > 0 else "buy"
        return self.place_order(OrderRequest(symbol=symbol, side=side, type="market", quantity=abs(state.quantity)))

    def list_executions(self, symbol: str) -> list[Execution]:
        """Return the executions in `symbol`, oldest first."""
        return [execution for execution in self._executions if execution.symbol == symbol]

    def get_account(self) -> Account:
        """Return the account valued at current prices."""
        now = self.market.now()
        realized = sum(state.realized_pnl for state in self._positions.values())
        unrealized = sum(self._position(symbol, now).unrealized_pnl for symbol in self._positions)
        balance = INITIAL_BALANCE + realized
        return Account(
            id=ACCOUNT_ID,
            currency=ACCOUNT_CURRENCY,
            balance=round(balance, MONEY_DECIMALS),
            equity=round(balance + unrealized, MONEY_DECIMALS),
            realized_pnl=round(realized, MONEY_DECIMALS),
            unrealized_pnl=round(unrealized, MONEY_DECIMALS),
        )

    def process_fills(self) -> int:
        """Fill every working order whose price is reached and return the number of fills.

        Without a fill, an account update is still published while a position is open,
        because equity moves with prices.
        """
        now = self.market.now()
        fills = 0
        for order in self.list_orders("working"):
            price = _fill_price(order, self.market.quote(order.symbol, now))
            if price is not None:
                self._fill(order, price, now)
                fills += 1

        if fills == 0 and any(state.quantity != 0 for state in self._positions.values()):
            self._publish("equity", self.get_account())
        return fills

    def _working_order(self, order_id: str) -> Order:
        order = self.get_order(order_id)
        if order.status != "working":
            raise OrderNotWorkingError(order)
        return order

    def _fill(self, order: Order, price: float, now: float) -> None:
        execution = Execution(
            id=f"exe-{next(self._execution_ids)}",
            order_id=order.id,
            symbol=order.symbol,
            side=order.side,
            quantity=order.quantity,
            price=price,
            time=now,
        )
        self._executions.append(execution)
        filled = order.model_copy(
            update={
                "status": "filled",
                "filled_quantity": order.quantity,
                "average_fill_price": price,
                "updated_at": now,
            }
        )
        self._orders[order.id] = filled
        self._apply_to_position(execution)
        logger.info("filled order %s: %s %s %s at %s", order.id, order.side, order.quantity, order.symbol, price)

        self._publish("execution", execution)
        self._publish("order", filled)
        self._publish("position", self._position(order.symbol, now))
        self._publish("equity", self.get_account())

    def _apply_to_position(self, execution: Execution) -> None:
        state = self._positions.setdefault(execution.symbol, _PositionState())
        delta = execution.quantity if execution.side == "buy" else -execution.quantity
        new_quantity = round(state.quantity + delta, QUANTITY_DECIMALS)

        if state.quantity == 0 or (state.quantity > 0) == (delta > 0):
            # Opening or adding: the average price is the quantity-weighted mean.
            total = abs(state.quantity) + abs(delta)
            state.average_price = (abs(state.quantity) * state.average_price + abs(delta) * execution.price) / total
        else:
            # Reducing, closing or reversing: the closed part realizes P&L at the average price.
            closed = min(abs(state.quantity), abs(delta))
            direction = 1 if state.quantity > 0 else -1
            state.realized_pnl += closed * (execution.price - state.average_price) * direction
            if new_quantity == 0:
                state.average_price = 0.0
            elif (new_quantity > 0) != (state.quantity > 0):
                state.average_price = execution.price
        state.quantity = new_quantity

    def _position(self, symbol: str, now: float) -> Position:
        state = self._positions[symbol]
        last = self.market.quote(symbol, now).last
        unrealized = state.quantity * (last - state.average_price) if state.quantity else 0.0
        return Position(
            symbol=symbol,
            quantity=state.quantity,
            average_price=round(state.average_price, 6),
            last_price=last,
            unrealized_pnl=round(unrealized, MONEY_DECIMALS),
            realized_pnl=round(state.realized_pnl, MONEY_DECIMALS),
        )

    def _publish(self, kind: EventKind, event: BaseModel) -> None:
        for listener in list(self._listeners[kind]):
            listener(event)

    async def _run_fill_simulator(self) -> None:
        while True:
            try:
                self.process_fills()
            except Exception:
                # One bad tick must not stop fills for the rest of the server's life.
                logger.exception("broker fill simulator tick failed; continuing with the next tick")
            await asyncio.sleep(self.update_interval_s)
