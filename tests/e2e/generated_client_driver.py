"""Drive broker and datafeed with the generated REST clients and print what came back as JSON.

Run as `python generated_client_driver.py GATEWAY_URL` with the tree that holds
the generated `trading_api.clients.rest` package first on PYTHONPATH.
test_watch.py runs it against a test stack and checks the output.
"""

from __future__ import annotations

import json
import sys

from trading_api.clients.rest import Client
from trading_api.clients.rest.api.broker import (
    broker_cancel_order,
    broker_get_account,
    broker_get_order,
    broker_list_orders,
    broker_place_order,
)
from trading_api.clients.rest.api.datafeed import (
    datafeed_get_config,
    datafeed_get_quotes,
    datafeed_resolve_symbol,
)
from trading_api.clients.rest.models import OrderRequest, OrderRequestSide, OrderRequestType
from trading_api.clients.rest.types import Response

ORDER_QUANTITY = 3
UNKNOWN_ORDER_ID = "ord-999"
UNKNOWN_SYMBOL = "NOPE"
# A buy limit this far below every simulated price stays working until it is cancelled.
UNREACHED_LIMIT_PRICE = 0.01


def describe_error(response: Response) -> dict:
    """Return the status, parsed type and detail of an error response."""
    return {
        "status": int(response.status_code),
        "type": type(response.parsed).__name__,
        "detail": getattr(response.parsed, "detail", None),
    }


def main(gateway_url: str) -> None:
    # trust_env=False: proxy variables must not redirect requests meant for 127.0.0.1.
    with Client(base_url=gateway_url, raise_on_unexpected_status=True, httpx_args={"trust_env": False}) as client:
        config = datafeed_get_config.sync(client=client)
        symbol = datafeed_resolve_symbol.sync("AAPL", client=client)
        quotes = datafeed_get_quotes.sync(client=client, symbols=["AAPL", "MSFT"])
        order_request = OrderRequest(
            symbol="MSFT", side=OrderRequestSide.BUY, type_=OrderRequestType.MARKET, quantity=ORDER_QUANTITY
        )
        placed = broker_place_order.sync(client=client, body=order_request)
        fetched = broker_get_order.sync(placed.id, client=client)
        orders = broker_list_orders.sync(client=client)
        account = broker_get_account.sync(client=client)

        missing_order = broker_get_order.sync_detailed(UNKNOWN_ORDER_ID, client=client)
        unknown_symbol = datafeed_resolve_symbol.sync_detailed(UNKNOWN_SYMBOL, client=client)
        limit_request = OrderRequest(
            symbol="MSFT",
            side=OrderRequestSide.BUY,
            type_=OrderRequestType.LIMIT,
            quantity=1,
            limit_price=UNREACHED_LIMIT_PRICE,
        )
        limit_order = broker_place_order.sync(client=client, body=limit_request)
        broker_cancel_order.sync(limit_order.id, client=client)
        cancelled_again = broker_cancel_order.sync_detailed(limit_order.id, client=client)

    results = {
        "client_module": Client.__module__,
        "types": {
            "config": type(config).__name__,
            "symbol": type(symbol).__name__,
            "quotes": type(quotes).__name__,
            "placed": type(placed).__name__,
            "fetched": type(fetched).__name__,
            "orders": [type(order).__name__ for order in orders],
            "account": type(account).__name__,
        },
        "config_max_bars": config.max_bars,
        "symbol_full_name": symbol.full_name,
        "quote_symbols": [quote.symbol for quote in quotes.quotes],
        "placed": {"id": placed.id, "symbol": placed.symbol, "side": placed.side.value, "quantity": placed.quantity},
        "fetched_id": fetched.id,
        "order_ids": [order.id for order in orders],
        "account_currency": account.currency,
        "errors": {
            "missing_order": describe_error(missing_order),
            "unknown_symbol": describe_error(unknown_symbol),
            "cancelled_again": describe_error(cancelled_again),
        },
        "limit_order_id": limit_order.id,
    }
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1])
