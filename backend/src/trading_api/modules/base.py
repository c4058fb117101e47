"""Module declaration and the routes every module has (health, docs, WebSocket)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.requests import HTTPConnection

from trading_api import API_PREFIX, __version__
from trading_api.core.models import ModuleHealthResponse
from trading_api.core.routing import generate_operation_id, instance_health
from trading_api.market.simulator import Clock
from trading_api.settings import Settings
from trading_api.ws import StreamHub, StreamRoute, add_stream_endpoint


class ModuleService(Protocol):
    """State of a running module, started and stopped by the app's lifespan."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class Module:
    """A feature set that a server enables through ENABLED_MODULES."""

    name: str
    title: str
    description: str
    streams: tuple[StreamRoute, ...]
    # Creates the module's router with prefix API_PREFIX/{name}. It is also called to build
    # the merged OpenAPI document, so it must only declare routes and start nothing.
    create_router: Callable[[], APIRouter]
    create_service: Callable[[Settings, Clock], ModuleService]

    @property
    def prefix(self) -> str:
        """URL prefix of the module's routes."""
        return module_prefix(self.name)


@dataclass
class ModuleRuntime:
    """A module enabled on this server, with its service and stream hub."""

    module: Module
    service: Any
    hub: StreamHub


def module_prefix(name: str) -> str:
    """Return the URL prefix of a module's routes."""
    return f"{API_PREFIX}/{name}"


def get_runtime(connection: HTTPConnection, name: str) -> ModuleRuntime:
    """Return the runtime of an enabled module from the app state."""
    return connection.app.state.modules[name]


def create_module_router(name: str, title: str, description: str) -> APIRouter:
    """Create a module router with its prefix, tag, health, docs and WebSocket routes."""
    router = APIRouter(prefix=module_prefix(name), tags=[name], generate_unique_id_function=generate_operation_id)
    openapi_url = f"{module_prefix(name)}/openapi.json"
    openapi_cache: dict[str, Any] = {}

    @router.get("/health", response_model=ModuleHealthResponse)
    async def get_module_health(request: Request) -> ModuleHealthResponse:
        """Return this module's status on this instance, with its WebSocket counters."""
        runtime = get_runtime(request, name)
        return ModuleHealthResponse(**instance_health(request), module=name, websocket=runtime.hub.stats())

    @router.get("/openapi.json", include_in_schema=False)
    async def get_module_openapi() -> JSONResponse:
        """Return the OpenAPI document of this module's routes."""
        if not openapi_cache:
            openapi_cache.update(
                get_openapi(title=f"{title} API", version=__version__, description=description, routes=router.routes)
            )
        return JSONResponse(openapi_cache)

    @router.get("/docs", include_in_schema=False)
    async def get_module_docs() -> HTMLResponse:
        """Return the Swagger UI page of this module's routes."""
        return get_swagger_ui_html(openapi_url=openapi_url, title=f"{title} API - Swagger UI")

    add_stream_endpoint(router, lambda websocket: get_runtime(websocket, name).hub)
    return router
