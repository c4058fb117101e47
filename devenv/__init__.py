"""Run a modular ASGI backend as several uvicorn processes behind an nginx gateway."""

__version__ = "0.1.0"
