"""App factory: core routes plus the modules named in ENABLED_MODULES."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI

from trading_api import API_PREFIX, __version__
from trading_api.core import create_router as create_core_router
from trading_api.core.routing import generate_operation_id
from trading_api.market import Clock
from trading_api.modules import MODULE_NAMES, Module, ModuleRuntime, load_available_modules, load_modules
from trading_api.settings import Settings
from trading_api.specs import (
    PACKAGE_DIR,
    OpenAPIFileReader,
    build_openapi,
    check_response_models,
    collect_all_routes,
    export_specs,
    openapi_path,
)
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


def load_spec_modules(enabled: dict[str, Module]) -> dict[str, Module]:
    """Return every module for the merged spec, leaving out and logging those that fail to import.

    `enabled` are the modules this server runs, already imported.
    """
    others, errors = load_available_modules(name for name in MODULE_NAMES if name not in enabled)
    for error in errors.values():
        logger.error(
            "%s; this server leaves the module out of its merged OpenAPI document and does not write "
            "openapi.json, which the module's own server writes again once the module imports",
            error,
        )
    modules = {**enabled, **others}
    return {name: modules[name] for name in MODULE_NAMES if name in modules}


def create_app(
    settings: Settings | None = None,
    *,
    spec_dir: Path | None = PACKAGE_DIR,
    clock: Clock = time.time,
) -> FastAPI:
    """Create the app with the core routes and the enabled modules.

    settings: defaults to Settings.from_env(), which reads ENABLED_MODULES and the
    TRADING_API_* variables and raises SettingsError on an unknown module.
    spec_dir: where the lifespan writes the spec files and where /openapi.json reads the
    merged spec from; None skips writing and builds the merged spec in memory.
    clock: source of Unix time for prices and orders.

    Raises ModuleImportError when an enabled module fails to import. Any other module that
    fails to import is logged and left out of the merged spec.
    """
    configure_logging()
    if settings is None:
        settings = Settings.from_env(known_modules=MODULE_NAMES)
    enabled_modules = load_modules(settings.enabled_modules)
    spec_modules = load_spec_modules(enabled_modules)

    runtimes: dict[str, ModuleRuntime] = {}
    for name, module in enabled_modules.items():
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
        # Every route of every module that imports is checked, so a missing response model
        # fails on any server, not only on the one that runs the module.
        check_response_models([*app.routes, *collect_all_routes(spec_modules)])
        if spec_dir is not None:
            export_specs(spec_dir, spec_modules)

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

    app.openapi = create_merged_openapi(app, spec_modules, spec_dir)  # type: ignore[method-assign]
    return app


def create_merged_openapi(
    app: FastAPI, spec_modules: dict[str, Module], spec_dir: Path | None
) -> Callable[[], dict[str, Any]]:
    """Create the app's openapi(), which returns the merged spec of all modules, enabled or not.

    The gateway's /docs and /openapi.json come from the core server, which does not reload
    when a module's code changes. So with a spec_dir it returns the openapi.json there, which
    the module's own server rewrites when it reloads, parsed again whenever the file changes.
    Without a spec_dir, or while that file is missing or invalid, it returns the merged spec
    of `spec_modules`, built once in memory. Like FastAPI's openapi(), it stores the
    document in app.openapi_schema.
    """
    reader = OpenAPIFileReader(openapi_path(spec_dir)) if spec_dir is not None else None
    built: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        document = reader.read() if reader is not None else None
        if document is None:
            if not built:
                built.update(build_openapi(modules=spec_modules))
            document = built
        app.openapi_schema = document
        return document

    return openapi
