"""Fixtures for the trading_api tests: started apps with fast ticks."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

# NOTE: pytest puts tests/ on sys.path for tests/conftest.py, and then tests/trading_api
# would be imported as a namespace package named trading_api in place of the editable
# install. With backend/src on sys.path the real package wins. Setting
# `pythonpath = ["backend/src"]` in the pytest options would make this line unnecessary.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "backend" / "src"))

from asyncapi_schema_cache import load_asyncapi_schema
from trading_helpers import fixed_clock, make_settings

from trading_api.app import create_app
from trading_api.modules import MODULE_NAMES


@pytest.fixture
def make_client() -> Iterator[Callable[..., TestClient]]:
    """Return a factory of started TestClients, which are shut down at the end of the test."""
    clients: list[TestClient] = []

    def factory(
        modules: tuple[str, ...] = MODULE_NAMES, clock: Callable[[], float] = time.time, **overrides: Any
    ) -> TestClient:
        app = create_app(make_settings(modules, **overrides), spec_dir=None, clock=clock)
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield factory
    for client in reversed(clients):
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    """Return a started TestClient of an app with every module and the real clock."""
    return make_client()


@pytest.fixture
def fixed_client(make_client: Callable[..., TestClient]) -> TestClient:
    """Return a started TestClient of an app with every module and the clock frozen at FIXED_NOW."""
    return make_client(clock=fixed_clock)


@pytest.fixture(scope="session")
def asyncapi_schema() -> dict[str, Any]:
    """Return the official AsyncAPI 3.0.0 JSON schema, fetched with npm on first use.

    A failed fetch raises, so the validation tests fail instead of being skipped.
    """
    return load_asyncapi_schema()
