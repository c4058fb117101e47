"""Request and response models of the broker module."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from trading_api.market import KnownSymbol

OrderSide = Literal["buy", "sell"]
OrderType = Literal["market", "limit", "stop"]
OrderStatus = Literal["working", "filled", "cancelled"]

# Price field required by each order type. An order must not set the other price field.
PRICE_FIELDS: dict[str, str | None] = {"market": None, "limit": "limit_price", "stop": "stop_price"}


def check_price_field(field: str, value: float | None, order_type: str) -> None:
    """Raise PydanticCustomError when a price field is missing for, or not allowed on, an order type."""
    required = PRICE_FIELDS[order_type] == field
    if required and value is None:
        raise PydanticCustomError(
            "missing", "{field} is required for a {order_type} order", {"field": field, "order_type": order_type}
        )
    if not required and value is not None:
        raise PydanticCustomError(
            "extra_forbidden",
            "{field} is not allowed for a {order_type} order",
            {"field": field, "order_type": order_type},
        )


class OrderRequest(BaseModel):
    """A new order."""

    model_config = ConfigDict(extra="forbid")

    symbol: KnownSymbol
    side: OrderSide
    type: OrderType
    quantity: float = Field(gt=0, description="Number of units; fractions are allowed.")
    limit_price: float | None = Field(
        default=None, gt=0, validate_default=True, description="Required for limit orders, not allowed otherwise."
    )
    stop_price: float | None = Field(
        default=None, gt=0, validate_default=True, description="Required for stop orders, not allowed otherwise."
    )

    @field_validator("limit_price", "stop_price")
    @classmethod
    def _check_price_matches_type(cls, value: float | None, info: ValidationInfo) -> float | None:
        order_type = info.data.get("type")
        # A missing or invalid type is reported on its own field.
        if order_type is not None:
            check_price_field(info.field_name, value, order_type)
        return value


class ModifyOrderRequest(BaseModel):
    """New values for a working order. Omitted fields keep their value."""

    model_config = ConfigDict(extra="forbid")

    quantity: float | None = Field(default=None, gt=0)
    limit_price: float | None = Field(default=None, gt=0)
    stop_price: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _require_a_change(self) -> ModifyOrderRequest:
        if self.quantity is None and self.limit_price is None and self.stop_price is None:
            raise PydanticCustomError("missing", "give at least one of quantity, limit_price or stop_price")
        return self


class Order(BaseModel):
    """An order and its fill state."""

    id: str
    symbol: str
    side: OrderSide
    type: OrderType
    quantity: float
    limit_price: float | None
    stop_price: float | None
    status: OrderStatus
    filled_quantity: float
    average_fill_price: float | None
    created_at: float = Field(description="Unix seconds.")
    updated_at: float = Field(description="Unix seconds.")


class OrderPreview(BaseModel):
    """Estimated effect of an order if it were placed now."""

    symbol: str
    side: OrderSide
    type: OrderType
    quantity: float
    estimated_price: float = Field(description="Fill price at current prices, or the order's limit or stop price.")
    estimated_value: float = Field(description="estimated_price * quantity.")
    position_quantity_before: float
    position_quantity_after: float
    warnings: list[str]


class Position(BaseModel):
    """Net position in a symbol, with a negative quantity for a short position."""

    symbol: str
    quantity: float
    average_price: float
    last_price: float
    unrealized_pnl: float
    realized_pnl: float


class Execution(BaseModel):
    """A fill of an order."""

    id: str
    order_id: str
    symbol: str
    side: OrderSide
    quantity: float
    price: float
    time: float = Field(description="Unix seconds.")


class Account(BaseModel):
    """Balance, equity and profit and loss of the simulated account."""

    id: str
    currency: str
    balance: float = Field(description="Initial balance plus realized P&L.")
    equity: float = Field(description="balance + unrealized_pnl.")
    realized_pnl: float
    unrealized_pnl: float


class NoStreamParams(BaseModel):
    """Parameters of a stream that takes none, so the payload is an empty object."""

    model_config = ConfigDict(extra="forbid")


class ExecutionsStreamParams(BaseModel):
    """Parameters of an `executions` subscription."""

    model_config = ConfigDict(extra="forbid")

    symbol: KnownSymbol
