"""ASGI entry point: `uvicorn trading_api.main:app`.

The modules come from ENABLED_MODULES (comma-separated names, `all`, or empty for the
core routes only); see trading_api.app.create_app.
"""

from trading_api.app import create_app

app = create_app()
