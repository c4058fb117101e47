"""Tests of the app factory and the core routes: module selection, health, docs and startup checks."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from trading_helpers import make_settings

from trading_api import __version__
from trading_api.app import create_app
from trading_api.settings import SettingsError
from trading_api.specs import SpecError, build_openapi, openapi_path, write_if_changed
from trading_api.specs.export import render_json

ALL_MODULE_PATHS = ("/api/v1/broker/orders", "/api/v1/datafeed/bars")
OLD_MTIME_NS = 1_000_000_000 * 10**9


def test_create_app_unknown_module_lists_known(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENABLED_MODULES", "broker,options")

    with pytest.raises(SettingsError) as excinfo:
        create_app(spec_dir=None)

    assert "unknown module(s) 'options'" in str(excinfo.value)
    assert "known modules: broker, datafeed" in str(excinfo.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", []), ("datafeed", ["datafeed"]), ("all", ["broker", "datafeed"])],
)
def test_create_app_reads_enabled_modules(monkeypatch: pytest.MonkeyPatch, value: str, expected: list[str]) -> None:
    monkeypatch.setenv("ENABLED_MODULES", value)

    with TestClient(create_app(spec_dir=None)) as client:
        health = client.get("/api/v1/health").json()

    assert health["modules"] == expected


def test_get_health_reports_instance(client: TestClient) -> None:
    response = client.get("/api/v1/health")

    assert response.status_code == 200
    # TestClient's ASGI scope has server ("testserver", 80), which stands for the
    # instance's listening port.
    assert response.json() == {"status": "ok", "modules": ["broker", "datafeed"], "port": 80, "pid": os.getpid()}


def test_get_versions(client: TestClient) -> None:
    response = client.get("/api/v1/versions")

    assert response.status_code == 200
    assert response.json() == {
        "current": "v1",
        "app_version": __version__,
        "versions": [{"version": "v1", "base_url": "/api/v1", "status": "stable"}],
    }


def test_get_root(client: TestClient) -> None:
    response = client.get("/")

    assert response.status_code == 200
    assert response.json() == {
        "name": "trading_api",
        "version": __version__,
        "docs": "/docs",
        "openapi": "/openapi.json",
        "health": "/api/v1/health",
    }


@pytest.mark.parametrize("module", ["broker", "datafeed"])
def test_get_module_health(client: TestClient, module: str) -> None:
    response = client.get(f"/api/v1/{module}/health")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "modules": ["broker", "datafeed"],
        "port": 80,
        "pid": os.getpid(),
        "module": module,
        "websocket": {"clients": 0, "topics": 0, "dropped_messages": 0},
    }


def test_core_only_server_has_no_module_routes(make_client: Callable[..., TestClient]) -> None:
    client = make_client(modules=())

    assert client.get("/api/v1/broker/health").status_code == 404
    assert client.get("/api/v1/datafeed/config").status_code == 404
    assert client.get("/api/v1/health").json()["modules"] == []


def test_openapi_merges_all_modules_on_core_only_server(make_client: Callable[..., TestClient]) -> None:
    client = make_client(modules=())

    paths = client.get("/openapi.json").json()["paths"]

    for path in ALL_MODULE_PATHS:
        assert path in paths
    assert "/api/v1/health" in paths


def test_docs_page_points_to_openapi(client: TestClient) -> None:
    response = client.get("/docs")

    assert response.status_code == 200
    assert "/openapi.json" in response.text


@pytest.mark.parametrize(("module", "other"), [("broker", "datafeed"), ("datafeed", "broker")])
def test_module_openapi_has_only_its_routes(client: TestClient, module: str, other: str) -> None:
    response = client.get(f"/api/v1/{module}/openapi.json")

    assert response.status_code == 200
    paths = list(response.json()["paths"])
    assert f"/api/v1/{module}/health" in paths
    assert all(path.startswith(f"/api/v1/{module}/") for path in paths)
    assert not any(path.startswith(f"/api/v1/{other}/") for path in paths)


@pytest.mark.parametrize("module", ["broker", "datafeed"])
def test_module_docs_page_points_to_module_openapi(client: TestClient, module: str) -> None:
    response = client.get(f"/api/v1/{module}/docs")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert f"/api/v1/{module}/openapi.json" in response.text


def test_operation_ids_combine_tag_and_handler(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    assert paths["/api/v1/broker/orders"]["post"]["operationId"] == "broker-place_order"
    assert paths["/api/v1/health"]["get"]["operationId"] == "core-get_health"


def test_startup_fails_on_route_without_response_model() -> None:
    app = create_app(make_settings(), spec_dir=None)

    @app.get("/untyped")
    async def get_untyped():  # no return annotation and no response_model
        return {"value": 1}

    with pytest.raises(SpecError) as excinfo, TestClient(app):
        pass

    assert "routes without a response model: GET /untyped (get_untyped)" in str(excinfo.value)


def test_startup_writes_specs(tmp_path: Path) -> None:
    app = create_app(make_settings(), spec_dir=tmp_path)

    with TestClient(app):
        pass

    assert (tmp_path / "openapi.json").is_file()
    assert (tmp_path / "modules" / "broker" / "specs" / "asyncapi.json").is_file()
    assert (tmp_path / "modules" / "datafeed" / "specs" / "asyncapi.json").is_file()


def test_startup_fails_when_spec_unwritable(tmp_path: Path) -> None:
    # A file where the modules directory should be makes every AsyncAPI path unwritable.
    (tmp_path / "modules").write_text("not a directory")
    app = create_app(make_settings(), spec_dir=tmp_path)

    with pytest.raises(SpecError) as excinfo, TestClient(app):
        pass

    assert str(tmp_path / "modules" / "broker" / "specs" / "asyncapi.json") in str(excinfo.value)


# The merged spec on disk, which /openapi.json serves when the app has a spec_dir.


@pytest.fixture
def core_client(tmp_path: Path) -> Iterator[TestClient]:
    """Return a started TestClient of a core-only app whose spec_dir is tmp_path."""
    with TestClient(create_app(make_settings(modules=()), spec_dir=tmp_path)) as client:
        yield client


def write_document(path: Path, document: dict[str, Any]) -> None:
    """Replace the spec file the way the servers do: a new file renamed over the old one."""
    assert write_if_changed(path, render_json(document)) is True


def openapi_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno == logging.WARNING and "serving the OpenAPI document built in memory" in record.getMessage()
    ]


def test_openapi_serves_spec_file_after_rewrite(core_client: TestClient, tmp_path: Path) -> None:
    spec_file = openapi_path(tmp_path)
    assert core_client.get("/openapi.json").json() == json.loads(spec_file.read_text())

    # The datafeed server rewrites the file after a reload that added a field. The core
    # server does not reload, so the file is its only source of the change.
    changed = json.loads(spec_file.read_text())
    changed["components"]["schemas"]["DatafeedConfig"]["properties"]["reload_probe"] = {"type": "string"}
    write_document(spec_file, changed)
    first = core_client.get("/openapi.json")

    changed["info"]["title"] = "Trading API, second rewrite"
    write_document(spec_file, changed)
    second = core_client.get("/openapi.json")

    assert first.status_code == 200
    assert "reload_probe" in first.json()["components"]["schemas"]["DatafeedConfig"]["properties"]
    assert first.json()["info"]["title"] == "Trading API"
    assert second.json() == changed
    assert core_client.app.openapi() == changed
    assert core_client.app.openapi_schema == changed


def test_openapi_rereads_in_place_edit_of_same_size(core_client: TestClient, tmp_path: Path) -> None:
    spec_file = openapi_path(tmp_path)
    document = json.loads(spec_file.read_text())
    document["info"]["title"] = "AAAA"
    spec_file.write_text(render_json(document))
    os.utime(spec_file, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    assert core_client.get("/openapi.json").json()["info"]["title"] == "AAAA"
    inode = spec_file.stat().st_ino

    document["info"]["title"] = "BBBB"
    spec_file.write_text(render_json(document))
    os.utime(spec_file, ns=(OLD_MTIME_NS + 1, OLD_MTIME_NS + 1))

    assert spec_file.stat().st_ino == inode
    assert core_client.get("/openapi.json").json()["info"]["title"] == "BBBB"


def test_openapi_parses_unchanged_file_once(core_client: TestClient) -> None:
    first = core_client.app.openapi()
    second = core_client.app.openapi()

    assert first is second


def test_docs_page_with_spec_dir(core_client: TestClient) -> None:
    response = core_client.get("/docs")

    assert response.status_code == 200
    assert "/openapi.json" in response.text


def test_openapi_builds_in_memory_when_file_missing(
    core_client: TestClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec_file = openapi_path(tmp_path)
    spec_file.unlink()

    with caplog.at_level(logging.WARNING, logger="trading_api"):
        responses = [core_client.get("/openapi.json") for _ in range(3)]

    for response in responses:
        assert response.status_code == 200
        assert response.json() == build_openapi()
    assert openapi_warnings(caplog) == [f"{spec_file} not found; serving the OpenAPI document built in memory instead"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"{not json", "is not valid JSON"),
        (b"\xff\xfe\x00", "is not valid JSON"),
        (b"[1, 2]\n", "is not a JSON object"),
        (b"", "is not valid JSON"),
    ],
)
def test_openapi_builds_in_memory_when_file_invalid(
    core_client: TestClient, tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes, problem: str
) -> None:
    spec_file = openapi_path(tmp_path)
    spec_file.write_bytes(content)

    with caplog.at_level(logging.WARNING, logger="trading_api"):
        responses = [core_client.get("/openapi.json") for _ in range(3)]

    for response in responses:
        assert response.status_code == 200
        assert response.json() == build_openapi()
    warnings = openapi_warnings(caplog)
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"{spec_file} {problem}")


def test_openapi_builds_in_memory_when_file_unreadable(
    core_client: TestClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A directory in place of the file fails to open even for root, unlike a file mode of 000.
    spec_file = openapi_path(tmp_path)
    spec_file.unlink()
    spec_file.mkdir()

    with caplog.at_level(logging.WARNING, logger="trading_api"):
        response = core_client.get("/openapi.json")

    assert response.status_code == 200
    assert response.json() == build_openapi()
    warnings = openapi_warnings(caplog)
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"{spec_file} cannot be read (")


def test_openapi_serves_file_again_once_fixed(core_client: TestClient, tmp_path: Path) -> None:
    spec_file = openapi_path(tmp_path)
    document = json.loads(spec_file.read_text())
    spec_file.write_text("{broken")
    assert core_client.get("/openapi.json").json() == build_openapi()

    document["info"]["title"] = "Fixed Trading API"
    write_document(spec_file, document)

    assert core_client.get("/openapi.json").json() == document
