"""App factory: core routes plus the modules named in ENABLED_MODULES."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI

from trading_api import API_PREFIX, __version__
from trading_api.core import create_router as create_core_router
from trading_api.core.routing import generate_operation_id
from trading_api.market import Clock
from trading_api.modules import MODULE_NAMES, MODULES, ModuleRuntime
from trading_api.settings import Settings
from trading_api.specs import PACKAGE_DIR, build_openapi, check_response_models, collect_all_routes, export_specs
from trading_api.specs.openapi import OPENAPI_DESCRIPTION, OPENAPI_TITLE
from trading_api.ws import StreamHub, add_stream_endpoint, bind_service

logger = logging.getLogger(__name__)

LOG_FORMAT = "%(levelname)s:     [%(name)s] %(message)s"
# Name of the hub behind API_PREFIX/ws. It prefixes the ids of that endpoint's clients in logs.
COMBINED_HUB_NAME = "all"


def configure_logging() -> None:
    """Send trading_api's INFO logs to stderr unless logging is already configured.

    uvicorn configures only its own loggers, so without this the lifecycle lines of the
    streams and the broker would be lost.
    """
    package_logger = logging.getLogger("trading_api")
    package_logger.setLevel(logging.INFO)
    if package_logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    package_logger.addHandler(handler)


def create_app(
    settings: Settings | None = None,
    *,
    spec_dir: Path | None = PACKAGE_DIR,
    clock: Clock = time.time,
) -> FastAPI:
    """Create the app with the core routes and the enabled modules.

    settings: defaults to Settings.from_env(), which reads ENABLED_MODULES and the
    TRADING_API_* variables and raises SettingsError on an unknown module.
    spec_dir: where the lifespan writes the spec files; None skips writing.
    clock: source of Unix time for prices and orders.
    """
    configure_logging()
    if settings is None:
        settings = Settings.from_env(known_modules=MODULE_NAMES)

    runtimes: dict[str, ModuleRuntime] = {}
    for name in settings.enabled_modules:
        module = MODULES[name]
        service = module.create_service(settings, clock)
        hub = StreamHub(name, module.streams, service, settings.ws_queue_size)
        runtimes[name] = ModuleRuntime(module=module, service=service, hub=hub)
    # This hub serves the routes of every enabled module at API_PREFIX/ws, for a gateway that
    # routes WebSocket clients by a query parameter instead of by module path.
    combined_hub = StreamHub(
        COMBINED_HUB_NAME,
        [bind_service(route, runtime.service) for runtime in runtimes.values() for route in runtime.module.streams],
        service=None,
        queue_size=settings.ws_queue_size,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Every route of every module is checked, so a missing response model fails on
        # any server, not only on the one that runs the module.
        check_response_models([*app.routes, *collect_all_routes()])
        if spec_dir is not None:
            export_specs(spec_dir)

        started: list[ModuleRuntime] = []
        try:
            for runtime in runtimes.values():
                await runtime.service.start()
                started.append(runtime)
            logger.info("started modules: %s", ", ".join(runtimes) or "none (core routes only)")
            yield
        finally:
            await combined_hub.close()
            for runtime in reversed(started):
                await runtime.hub.close()
                await runtime.service.stop()

    app = FastAPI(
        title=OPENAPI_TITLE,
        version=__version__,
        description=OPENAPI_DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=generate_operation_id,
    )
    app.state.settings = settings
    app.state.modules = runtimes
    app.include_router(create_core_router())
    for runtime in runtimes.values():
        app.include_router(runtime.module.create_router())
    combined_router = APIRouter(prefix=API_PREFIX)
    add_stream_endpoint(combined_router, lambda websocket: combined_hub)
    app.include_router(combined_router)

    def openapi() -> dict[str, Any]:
        # /openapi.json and /docs describe every module, whatever this server enables,
        # so the gateway's docs (served by the core server) show the whole API.
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi()
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
