"""Simulated trading API (broker, datafeed, core) served by FastAPI."""

__version__ = "0.1.0"

# URL prefix of every API route. Module routes live under API_PREFIX/{module}.
API_PREFIX = "/api/v1"
API_VERSION = "v1"
