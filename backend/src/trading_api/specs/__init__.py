"""OpenAPI and AsyncAPI documents of the API, and their export to files.

Run `python -m trading_api.specs` to write them without starting a server.
"""

from trading_api.specs.asyncapi import build_asyncapi
from trading_api.specs.export import PACKAGE_DIR, asyncapi_path, export_specs, openapi_path, write_if_changed
from trading_api.specs.openapi import SpecError, build_openapi, check_response_models, collect_all_routes
from trading_api.specs.reader import OpenAPIFileReader

__all__ = [
    "PACKAGE_DIR",
    "OpenAPIFileReader",
    "SpecError",
    "asyncapi_path",
    "build_asyncapi",
    "build_openapi",
    "check_response_models",
    "collect_all_routes",
    "export_specs",
    "openapi_path",
    "write_if_changed",
]
