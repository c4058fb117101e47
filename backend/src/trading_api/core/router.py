"""Core routes: health, versions and the API root."""

from __future__ import annotations

from fastapi import APIRouter, Request

from trading_api import API_PREFIX, API_VERSION, __version__
from trading_api.core.models import ApiVersion, HealthResponse, RootResponse, VersionsResponse
from trading_api.core.routing import generate_operation_id, instance_health

API_NAME = "trading_api"
DOCS_URL = "/docs"
OPENAPI_URL = "/openapi.json"


def create_router() -> APIRouter:
    """Create the router of the routes that every server has, whatever its modules."""
    router = APIRouter(tags=["core"], generate_unique_id_function=generate_operation_id)

    @router.get(f"{API_PREFIX}/health", response_model=HealthResponse)
    async def get_health(request: Request) -> HealthResponse:
        """Return this instance's status, modules, port and pid."""
        return HealthResponse(**instance_health(request))

    @router.get(f"{API_PREFIX}/versions", response_model=VersionsResponse)
    async def get_versions() -> VersionsResponse:
        """Return the API versions this server offers."""
        return VersionsResponse(
            current=API_VERSION,
            app_version=__version__,
            versions=[ApiVersion(version=API_VERSION, base_url=API_PREFIX, status="stable")],
        )

    @router.get("/", response_model=RootResponse)
    async def get_root() -> RootResponse:
        """Return the API name, version and links to its docs."""
        return RootResponse(
            name=API_NAME,
            version=__version__,
            docs=DOCS_URL,
            openapi=OPENAPI_URL,
            health=f"{API_PREFIX}/health",
        )

    return router
