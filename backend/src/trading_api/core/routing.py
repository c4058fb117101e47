"""Helpers for building routers and health responses, shared by core and the modules."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import HTTPConnection

from trading_api.core.models import ErrorResponse

# FastAPI 0.165 returns 400 with {"detail": "There was an error parsing the body"} when a JSON
# request body can't be decoded, e.g. because it is not valid UTF-8 (fastapi/routing.py).
# Every route with a request body declares it.
BODY_DECODE_ERROR = {400: "The request body can't be decoded, e.g. because it is not valid UTF-8."}


def generate_operation_id(route: APIRoute) -> str:
    """Return the OpenAPI operation id `{tag}-{handler name}`, e.g. `broker-place_order`."""
    if route.tags:
        return f"{route.tags[0]}-{route.name}"
    return route.name


def error_responses(*descriptions: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """Return the `responses` argument of a route that documents each error status with an ErrorResponse body.

    Each mapping maps a status code to the description of when the route returns it, so that
    the OpenAPI document, and the clients generated from it, know the status and its body.
    """
    return {
        status: {"model": ErrorResponse, "description": description}
        for mapping in descriptions
        for status, description in mapping.items()
    }


def instance_health(connection: HTTPConnection) -> dict[str, Any]:
    """Return the health fields common to core and module health of this instance.

    The port comes from the ASGI scope's `server` entry, so behind the gateway it is the
    instance's own listening port, not the gateway's.
    """
    server = connection.scope.get("server")
    return {
        "status": "ok",
        "modules": list(connection.app.state.settings.enabled_modules),
        "port": server[1] if server else None,
        "pid": os.getpid(),
    }


def field_error(
    location: str, field: str, message: str, value: Any, error_type: str = "value_error"
) -> RequestValidationError:
    """Build a 422 error for one request field, in the format FastAPI uses for validation errors.

    `location` is `query`, `path` or `body`.
    """
    return RequestValidationError([{"type": error_type, "loc": (location, field), "msg": message, "input": value}])
