"""Merged OpenAPI document of all modules and the response model check."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from trading_api import __version__
from trading_api.core import create_router as create_core_router
from trading_api.modules import Module, load_modules

OPENAPI_TITLE = "Trading API"
OPENAPI_DESCRIPTION = (
    "Simulated trading backend. Core routes run on every server; module routes live under "
    "/api/v1/{module} and each module has its own docs at /api/v1/{module}/docs."
)


class SpecError(Exception):
    """Error raised when a spec can't be built or written. The message names the route or path."""


def collect_all_routes(modules: Mapping[str, Module] | None = None) -> list[BaseRoute]:
    """Return the core routes and the routes of `modules`, enabled or not.

    `modules` defaults to every module, and then a module that fails to import raises
    ModuleImportError.
    """
    modules = load_modules() if modules is None else modules
    routes = list(create_core_router().routes)
    for module in modules.values():
        routes.extend(module.create_router().routes)
    return routes


def build_openapi(
    routes: Iterable[BaseRoute] | None = None, modules: Mapping[str, Module] | None = None
) -> dict[str, Any]:
    """Return the OpenAPI document of `routes` with a tag per module in `modules`.

    `modules` defaults to every module, and then a module that fails to import raises
    ModuleImportError. `routes` defaults to the core routes and those of `modules`.
    """
    modules = load_modules() if modules is None else modules
    routes = collect_all_routes(modules) if routes is None else list(routes)
    tags = [{"name": "core", "description": "Routes of every server: health, versions and root."}]
    tags += [{"name": module.name, "description": module.description} for module in modules.values()]
    return get_openapi(
        title=OPENAPI_TITLE,
        version=__version__,
        description=OPENAPI_DESCRIPTION,
        routes=routes,
        tags=tags,
    )


def check_response_models(routes: Iterable[BaseRoute]) -> None:
    """Raise SpecError listing every documented route that declares no response model."""
    offenders = []
    for route in routes:
        if isinstance(route, APIRoute) and route.include_in_schema and route.response_model is None:
            offenders.append(f"{','.join(sorted(route.methods))} {route.path} ({route.name})")
    if offenders:
        raise SpecError(
            f"routes without a response model: {'; '.join(offenders)}; "
            f"declare response_model= on the route or annotate the handler's return type"
        )
