"""Routes every server has (health, versions, root) and helpers shared by the modules."""

from trading_api.core.router import create_router

__all__ = ["create_router"]
