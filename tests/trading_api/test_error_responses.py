"""Tests that every error status a route returns is declared in the OpenAPI document.

A status missing from the document makes the generated clients return None for it
instead of the parsed error body.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import status as status_codes
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from trading_api.core.models import ErrorResponse
from trading_api.specs import collect_all_routes

pytestmark = pytest.mark.timeout(60)

ERROR_RESPONSE_REF = "#/components/schemas/ErrorResponse"
VALIDATION_ERROR_REF = "#/components/schemas/HTTPValidationError"
# FastAPI returns 400 for a JSON body that is not valid UTF-8.
INVALID_UTF8_BODY = {"content": b'{"symbol": "\xff"}', "headers": {"content-type": "application/json"}}
CANCELLED_ORDER_ID = "ord-1"
UNKNOWN_ORDER_ID = "ord-999"
LIMIT_ORDER = {"symbol": "AAPL", "side": "buy", "type": "limit", "quantity": 1, "limit_price": 1.0}


@dataclass(frozen=True)
class ErrorCase:
    """A request that fails with `expected_status` on the route with path template `route`."""

    method: str
    route: str
    url: str
    expected_status: int
    request: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.method} {self.url} -> {self.expected_status}"


BROKER = "/api/v1/broker"
DATAFEED = "/api/v1/datafeed"
ORDER = f"{BROKER}/orders/{{order_id}}"
# Every app starts with CANCELLED_ORDER_ID placed and cancelled, see app_client.
ERROR_CASES = [
    ErrorCase("POST", f"{BROKER}/orders", f"{BROKER}/orders", 400, INVALID_UTF8_BODY),
    ErrorCase("POST", f"{BROKER}/orders", f"{BROKER}/orders", 422, {"json": {**LIMIT_ORDER, "quantity": -1}}),
    ErrorCase("POST", f"{BROKER}/orders/preview", f"{BROKER}/orders/preview", 400, INVALID_UTF8_BODY),
    ErrorCase("POST", f"{BROKER}/orders/preview", f"{BROKER}/orders/preview", 422, {"json": {"symbol": "NOPE"}}),
    ErrorCase("GET", f"{BROKER}/orders", f"{BROKER}/orders?status=open", 422),
    ErrorCase("GET", ORDER, f"{BROKER}/orders/{UNKNOWN_ORDER_ID}", 404),
    ErrorCase("PATCH", ORDER, f"{BROKER}/orders/{CANCELLED_ORDER_ID}", 400, INVALID_UTF8_BODY),
    ErrorCase("PATCH", ORDER, f"{BROKER}/orders/{UNKNOWN_ORDER_ID}", 404, {"json": {"quantity": 2}}),
    ErrorCase("PATCH", ORDER, f"{BROKER}/orders/{CANCELLED_ORDER_ID}", 409, {"json": {"quantity": 2}}),
    ErrorCase("PATCH", ORDER, f"{BROKER}/orders/{CANCELLED_ORDER_ID}", 422, {"json": {}}),
    ErrorCase("DELETE", ORDER, f"{BROKER}/orders/{UNKNOWN_ORDER_ID}", 404),
    ErrorCase("DELETE", ORDER, f"{BROKER}/orders/{CANCELLED_ORDER_ID}", 409),
    ErrorCase("POST", f"{BROKER}/positions/{{symbol}}/close", f"{BROKER}/positions/AAPL/close", 404),
    ErrorCase("POST", f"{BROKER}/positions/{{symbol}}/close", f"{BROKER}/positions/NOPE/close", 422),
    ErrorCase("GET", f"{BROKER}/executions", f"{BROKER}/executions", 422),
    ErrorCase("GET", f"{DATAFEED}/symbols/search", f"{DATAFEED}/symbols/search?limit=0", 422),
    ErrorCase("GET", f"{DATAFEED}/symbols/{{symbol}}", f"{DATAFEED}/symbols/NOPE", 404),
    ErrorCase("GET", f"{DATAFEED}/symbols/{{symbol}}", f"{DATAFEED}/symbols/NYSE:BTCUSD", 404),
    ErrorCase("GET", f"{DATAFEED}/bars", f"{DATAFEED}/bars?symbol=AAPL&resolution=1", 422),
    ErrorCase("GET", f"{DATAFEED}/quotes", f"{DATAFEED}/quotes?symbols=NOPE", 422),
]


@pytest.fixture
def app_client(fixed_client: TestClient) -> TestClient:
    """Return a client of an app with every module, a frozen clock and one cancelled order."""
    placed = fixed_client.post(f"{BROKER}/orders", json=LIMIT_ORDER)
    assert placed.status_code == 201, placed.text
    assert placed.json()["id"] == CANCELLED_ORDER_ID
    cancelled = fixed_client.delete(f"{BROKER}/orders/{CANCELLED_ORDER_ID}")
    assert cancelled.status_code == 200, cancelled.text
    return fixed_client


def declared_responses(document: dict[str, Any], method: str, route: str) -> dict[str, Any]:
    """Return the responses that the OpenAPI document declares for an operation."""
    return document["paths"][route][method.lower()]["responses"]


def response_schema_ref(response: dict[str, Any]) -> str | None:
    return response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")


def documented_operations() -> list[tuple[str, APIRoute]]:
    """Return each (method, route) pair of the merged OpenAPI document: the core routes and every module's."""
    return [
        (method, route)
        for route in collect_all_routes()
        if isinstance(route, APIRoute) and route.include_in_schema
        for method in sorted(route.methods)
    ]


def raised_statuses(endpoint: Callable[..., Any]) -> set[int]:
    """Return the status codes of the `HTTPException(...)` calls written in a handler's own body.

    Statuses raised in helpers that the handler calls are not found here, so the runtime
    cases in ERROR_CASES cover those.
    """
    tree = ast.parse(textwrap.dedent(inspect.getsource(endpoint)))
    statuses = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "HTTPException"):
            continue
        keywords = {keyword.arg: keyword.value for keyword in node.keywords}
        value = keywords.get("status_code", node.args[0] if node.args else None)
        if isinstance(value, ast.Constant) and isinstance(value.value, int):
            statuses.add(value.value)
        elif isinstance(value, ast.Attribute) and hasattr(status_codes, value.attr):
            statuses.add(getattr(status_codes, value.attr))
        else:
            raise AssertionError(
                f"{endpoint.__name__}: HTTPException at line {node.lineno} has a status this test can't read; "
                "write an int or a fastapi.status constant"
            )
    return statuses


@pytest.mark.parametrize("case", ERROR_CASES, ids=lambda case: case.id)
def test_error_status_is_declared(app_client: TestClient, case: ErrorCase) -> None:
    document = app_client.get("/openapi.json").json()
    declared = declared_responses(document, case.method, case.route)

    response = app_client.request(case.method, case.url, **case.request)

    assert response.status_code == case.expected_status, response.text
    assert str(response.status_code) in declared, f"{case.method} {case.route} declares only {sorted(declared)}"
    if case.expected_status == 422:
        assert response_schema_ref(declared["422"]) == VALIDATION_ERROR_REF
    else:
        assert response_schema_ref(declared[str(case.expected_status)]) == ERROR_RESPONSE_REF
        assert ErrorResponse.model_validate(response.json()).detail


def test_declared_error_statuses_are_exercised(app_client: TestClient) -> None:
    """Every status declared with an ErrorResponse body has a case in ERROR_CASES, so none is left untested."""
    document = app_client.get("/openapi.json").json()
    exercised = {(case.method, case.route, case.expected_status) for case in ERROR_CASES}

    declared = set()
    for route, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if response_schema_ref(response) == ERROR_RESPONSE_REF:
                    declared.add((method.upper(), route, int(status)))

    assert declared - exercised == set()
    assert {status for _, _, status in declared} == {400, 404, 409}


def test_raised_statuses_are_declared(app_client: TestClient) -> None:
    """Every status a handler raises, and 400 for a route with a JSON body, is declared on the route."""
    document = app_client.get("/openapi.json").json()
    found: set[int] = set()

    for method, route in documented_operations():
        declared = {int(status) for status in declared_responses(document, method, route.path)}
        raised = raised_statuses(route.endpoint)
        found |= raised
        if route.body_field is not None:
            raised.add(400)

        assert raised - declared == set(), f"{method} {route.path} returns undeclared statuses"

    # Guards against a scan that finds no HTTPException at all.
    assert found == {404, 409}
