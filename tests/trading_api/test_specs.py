"""Tests of the spec export: content, validation, unchanged files and concurrent writers."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fastapi import APIRouter
from openapi_spec_validator import validate as validate_openapi
from trading_helpers import wait_for

from trading_api.modules import MODULES
from trading_api.specs import (
    SpecError,
    asyncapi_path,
    build_asyncapi,
    build_openapi,
    check_response_models,
    export_specs,
    openapi_path,
    write_if_changed,
)
from trading_api.specs.__main__ import INTERRUPTED_EXIT_STATUS
from trading_api.specs.export import render_json

pytestmark = pytest.mark.timeout(120)

OLD_MTIME_NS = 1_000_000_000 * 10**9
CONCURRENT_PROCESSES = 4
CONCURRENT_THREADS = 8


def spec_paths(output_dir: Path) -> list[Path]:
    return [openapi_path(output_dir), *(asyncapi_path(output_dir, name) for name in MODULES)]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trading_api.specs", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_export_specs_writes_every_file(tmp_path: Path) -> None:
    results = export_specs(tmp_path)

    assert results == {path: True for path in spec_paths(tmp_path)}
    assert json.loads(openapi_path(tmp_path).read_text()) == build_openapi()
    for name, module in MODULES.items():
        assert json.loads(asyncapi_path(tmp_path, name).read_text()) == build_asyncapi(module)


def test_openapi_passes_spec_validator(tmp_path: Path) -> None:
    export_specs(tmp_path)

    document = json.loads(openapi_path(tmp_path).read_text())

    validate_openapi(document)
    assert document["openapi"].startswith("3.1")


def test_openapi_contains_every_module(tmp_path: Path) -> None:
    document = build_openapi()

    tags = {tag for path in document["paths"].values() for operation in path.values() for tag in operation["tags"]}
    assert tags == {"core", "broker", "datafeed"}


@pytest.mark.parametrize("module", list(MODULES))
def test_asyncapi_passes_official_schema(tmp_path: Path, asyncapi_schema: dict[str, Any], module: str) -> None:
    export_specs(tmp_path)
    document = json.loads(asyncapi_path(tmp_path, module).read_text())
    validator = jsonschema.Draft7Validator(asyncapi_schema)

    errors = [f"{list(error.absolute_path)}: {error.message}" for error in validator.iter_errors(document)]

    assert errors == []


def test_official_schema_rejects_broken_asyncapi(asyncapi_schema: dict[str, Any]) -> None:
    # Guards the test above against a validator that accepts anything.
    document = build_asyncapi(MODULES["datafeed"])
    document["operations"]["subscribeBars"]["action"] = "publish"

    assert not jsonschema.Draft7Validator(asyncapi_schema).is_valid(document)


@pytest.mark.parametrize("module", list(MODULES))
def test_asyncapi_has_operations_per_route_and_direction(module: str) -> None:
    document = build_asyncapi(MODULES[module])
    routes = [route.name for route in MODULES[module].streams]

    channel = document["channels"]["stream"]
    assert channel["address"] == f"/api/v1/{module}/ws"
    for route in routes:
        title = route[:1].upper() + route[1:]
        assert document["operations"][f"subscribe{title}"]["action"] == "receive"
        assert document["operations"][f"unsubscribe{title}"]["action"] == "receive"
        assert document["operations"][f"send{title}Update"]["action"] == "send"
        update = channel["messages"][f"{route}Update"]
        assert update["name"] == f"{route}.update"
        assert update["payload"]["properties"]["type"]["const"] == f"{route}.update"
    assert document["operations"]["sendError"]["action"] == "send"


@pytest.mark.parametrize("module", list(MODULES))
def test_asyncapi_references_resolve(module: str) -> None:
    document = build_asyncapi(MODULES[module])
    text = json.dumps(document)
    references = {part.split('"')[0] for part in text.split('"$ref": "')[1:]}

    for reference in references:
        node: Any = document
        for key in reference.removeprefix("#/").split("/"):
            node = node[key]
        assert isinstance(node, dict), reference


def test_asyncapi_payloads_come_from_models() -> None:
    document = build_asyncapi(MODULES["datafeed"])
    schemas = document["components"]["schemas"]

    assert schemas["BarsStreamParams"]["required"] == ["symbol", "resolution"]
    assert set(schemas["Bar"]["properties"]) == {"time", "open", "high", "low", "close", "volume"}
    assert schemas["SubscriptionResponse"]["properties"]["status"]["enum"] == ["ok", "error"]


def test_unchanged_spec_is_not_rewritten(tmp_path: Path) -> None:
    export_specs(tmp_path)
    for path in spec_paths(tmp_path):
        os.utime(path, ns=(OLD_MTIME_NS, OLD_MTIME_NS))

    results = export_specs(tmp_path)

    assert results == {path: False for path in spec_paths(tmp_path)}
    for path in spec_paths(tmp_path):
        assert path.stat().st_mtime_ns == OLD_MTIME_NS


def test_changed_spec_is_rewritten(tmp_path: Path) -> None:
    export_specs(tmp_path)
    openapi_path(tmp_path).write_text("{}")

    results = export_specs(tmp_path)

    assert results[openapi_path(tmp_path)] is True
    assert json.loads(openapi_path(tmp_path).read_text()) == build_openapi()


def test_concurrent_processes_leave_valid_files(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "trading_api.specs", "--output-dir", str(tmp_path)]
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(CONCURRENT_PROCESSES)
    ]
    outputs = [process.communicate(timeout=60) for process in processes]

    assert [process.returncode for process in processes] == [0] * CONCURRENT_PROCESSES, outputs
    assert json.loads(openapi_path(tmp_path).read_text()) == build_openapi()
    for name, module in MODULES.items():
        assert json.loads(asyncapi_path(tmp_path, name).read_text()) == build_asyncapi(module)
    assert [path.name for path in tmp_path.rglob("*.tmp")] == []


def test_concurrent_threads_never_tear_file(tmp_path: Path) -> None:
    target = tmp_path / "spec.json"
    # Two large, different contents: a torn write would mix them or truncate one.
    contents = [render_json({"writer": index, "data": [index] * 200_000}) for index in range(2)]
    errors: list[BaseException] = []

    def write_repeatedly(index: int) -> None:
        try:
            for _ in range(10):
                write_if_changed(target, contents[index % 2])
        except BaseException as exc:  # collected so that the main thread reports it
            errors.append(exc)

    threads = [threading.Thread(target=write_repeatedly, args=(index,)) for index in range(CONCURRENT_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert target.read_text() in contents
    assert [path.name for path in tmp_path.iterdir()] == ["spec.json"]


def test_write_failure_names_path(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory")
    target = blocker / "specs" / "asyncapi.json"

    with pytest.raises(SpecError) as excinfo:
        write_if_changed(target, "{}")

    assert str(excinfo.value).startswith(f"cannot write spec file {target}: ")


def test_check_response_models_lists_offenders() -> None:
    router = APIRouter()

    @router.get("/typed", response_model=dict)
    async def get_typed():
        return {}

    @router.get("/first")
    async def get_first():
        return {}

    @router.post("/second")
    async def create_second():
        return {}

    @router.get("/hidden", include_in_schema=False)
    async def get_hidden():
        return {}

    with pytest.raises(SpecError) as excinfo:
        check_response_models(router.routes)

    assert str(excinfo.value) == (
        "routes without a response model: GET /first (get_first); POST /second (create_second); "
        "declare response_model= on the route or annotate the handler's return type"
    )


def test_cli_writes_then_reports_unchanged(tmp_path: Path) -> None:
    first = run_cli("--output-dir", str(tmp_path))
    second = run_cli("--output-dir", str(tmp_path))

    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [f"wrote {path}" for path in spec_paths(tmp_path)]
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines() == [f"unchanged {path}" for path in spec_paths(tmp_path)]


def test_cli_failure_exits_nonzero_with_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory")

    result = run_cli("--output-dir", str(blocker))

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: spec export failed: cannot write spec file {blocker / 'openapi.json'}: ")
    assert len(result.stderr.strip().splitlines()) == 1


def open_fifo_writer(path: Path) -> int | None:
    """Open the write end of a FIFO without blocking; return its descriptor, or None while no reader has it open."""
    try:
        return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return None


def test_cli_interrupt_prints_one_line(tmp_path: Path) -> None:
    # The export first reads openapi.json to compare it, and a FIFO there blocks that read
    # until a writer opens it and writes or closes. So the run is past its imports and waiting.
    os.mkfifo(openapi_path(tmp_path))
    process = subprocess.Popen(
        [sys.executable, "-m", "trading_api.specs", "--output-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    writer = None
    try:
        writer = wait_for(lambda: open_fifo_writer(openapi_path(tmp_path)), timeout_s=60)
        os.killpg(process.pid, signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if writer is not None:
            os.close(writer)
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == INTERRUPTED_EXIT_STATUS
    assert stdout == ""
    assert stderr == "spec export interrupted; each spec file is either unchanged or complete\n"
    assert [path.name for path in tmp_path.rglob("*.tmp")] == []


# Specs of a server on which a module failed to import: only the modules that imported.


def test_build_openapi_of_module_subset() -> None:
    document = build_openapi(modules={"datafeed": MODULES["datafeed"]})

    assert "/api/v1/datafeed/bars" in document["paths"]
    assert "/api/v1/health" in document["paths"]
    assert not any(path.startswith("/api/v1/broker/") for path in document["paths"])
    assert [tag["name"] for tag in document["tags"]] == ["core", "datafeed"]


def test_incomplete_export_keeps_complete_openapi(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    export_specs(tmp_path)
    complete = openapi_path(tmp_path).read_bytes()
    os.utime(openapi_path(tmp_path), ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    asyncapi_path(tmp_path, "datafeed").write_text("{}")

    with caplog.at_level(logging.WARNING, logger="trading_api"):
        results = export_specs(tmp_path, {"datafeed": MODULES["datafeed"]})

    assert results == {asyncapi_path(tmp_path, "datafeed"): True}
    assert openapi_path(tmp_path).read_bytes() == complete
    assert openapi_path(tmp_path).stat().st_mtime_ns == OLD_MTIME_NS
    assert json.loads(asyncapi_path(tmp_path, "datafeed").read_text()) == build_asyncapi(MODULES["datafeed"])
    assert [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING] == [
        f"not writing {openapi_path(tmp_path)}: the merged spec lacks module(s) broker, which failed to import"
    ]


def test_incomplete_export_creates_no_openapi(tmp_path: Path) -> None:
    results = export_specs(tmp_path, {"datafeed": MODULES["datafeed"]})

    assert list(results) == [asyncapi_path(tmp_path, "datafeed")]
    assert not openapi_path(tmp_path).exists()
    assert not asyncapi_path(tmp_path, "broker").exists()


def test_complete_export_of_explicit_modules_writes_openapi(tmp_path: Path) -> None:
    results = export_specs(tmp_path, dict(MODULES))

    assert results == {path: True for path in spec_paths(tmp_path)}
    assert json.loads(openapi_path(tmp_path).read_text()) == build_openapi()
