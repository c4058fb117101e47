"""Response models of the core routes and of module health, and the error body of every route."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from trading_api.ws.hub import StreamStats


class HealthResponse(BaseModel):
    """Health of one server instance."""

    status: Literal["ok"]
    modules: list[str] = Field(description="Modules this instance runs; empty for a core-only server.")
    port: int | None = Field(description="Port this instance listens on; null when it listens on a Unix socket.")
    pid: int = Field(description="Process id of this instance.")


class ModuleHealthResponse(HealthResponse):
    """Health of one module on a server instance."""

    module: str
    websocket: StreamStats


class ApiVersion(BaseModel):
    """One API version and where its routes live."""

    version: str
    base_url: str
    status: Literal["stable", "deprecated"]


class VersionsResponse(BaseModel):
    """API versions this server offers."""

    current: str
    app_version: str
    versions: list[ApiVersion]


class RootResponse(BaseModel):
    """Name, version and links of the API."""

    name: str
    version: str
    docs: str
    openapi: str
    health: str


class ErrorResponse(BaseModel):
    """Body of an error response other than a 422 validation error."""

    detail: str = Field(description="Why the request failed.")
