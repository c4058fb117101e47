"""Tests of phase-1 code generation: fingerprint skip, identical output, failed runs and the command line.

These run the real openapi-python-client, about a second per generation.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from fastapi.testclient import TestClient

from trading_api.codegen import (
    FINGERPRINT_FILE_NAME,
    GENERATOR_CONFIG,
    INTERRUPTED_EXIT_STATUS,
    STAGING_PREFIX,
    CodegenError,
    client_fingerprint,
    client_package_dir,
    export_openapi,
    generate_clients,
    main,
    stored_fingerprint,
)
from trading_api.specs import openapi_path

pytestmark = pytest.mark.timeout(120)

GENERATED_PACKAGE = "generated_rest"
STAGING_WAIT_S = 60


def snapshot(directory: Path) -> dict[str, bytes]:
    """Return every file under `directory` by relative path, with its bytes."""
    return {
        str(path.relative_to(directory)): path.read_bytes() for path in sorted(directory.rglob("*")) if path.is_file()
    }


def modification_times(directory: Path) -> dict[str, int]:
    return {str(path.relative_to(directory)): path.stat().st_mtime_ns for path in directory.rglob("*")}


def staging_folders(clients: Path) -> list[Path]:
    return sorted(clients.glob(f"{STAGING_PREFIX}*"))


def write_changed_spec(source: Path, destination: Path) -> Path:
    """Write a copy of the spec at `source` with another title to `destination`."""
    document = json.loads(source.read_text())
    document["info"]["title"] = "Changed Trading API"
    destination.write_text(json.dumps(document, indent=2))
    return destination


def write_generator_config(path: Path, post_hooks: list[str]) -> Path:
    path.write_text(json.dumps({"post_hooks": post_hooks}))
    return path


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory) -> Path:
    """The OpenAPI spec of the real API, exported into a temporary folder."""
    output_dir = tmp_path_factory.mktemp("spec")
    export_openapi(output_dir)
    return openapi_path(output_dir)


@pytest.fixture(scope="module")
def generated(spec_path, tmp_path_factory) -> Path:
    """A clients folder generated once from `spec_path`; tests that change it work on a copy."""
    clients = tmp_path_factory.mktemp("generated") / "clients"
    assert generate_clients(spec_path, clients) is True
    return clients


@pytest.fixture(scope="module")
def generated_rest(generated) -> Iterator[ModuleType]:
    """The generated REST client package, imported as `generated_rest` from the `generated` folder."""
    package_dir = client_package_dir(generated)
    spec = importlib.util.spec_from_file_location(
        GENERATED_PACKAGE, package_dir / "__init__.py", submodule_search_locations=[str(package_dir)]
    )
    assert spec is not None and spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    sys.modules[GENERATED_PACKAGE] = package
    spec.loader.exec_module(package)

    yield package

    for name in [name for name in sys.modules if name == GENERATED_PACKAGE or name.startswith(f"{GENERATED_PACKAGE}.")]:
        del sys.modules[name]


def generated_module(name: str) -> ModuleType:
    """Import a module of the generated package, e.g. `api.broker.broker_get_order`."""
    return importlib.import_module(f"{GENERATED_PACKAGE}.{name}")


@pytest.fixture
def rest_client(generated_rest, fixed_client: TestClient):
    """A generated Client that sends its requests through a TestClient of an app with every module.

    TestClient is an httpx.Client, and the generated Client accepts one in set_httpx_client.
    raise_on_unexpected_status makes an undeclared status raise instead of returning None.
    """
    client = generated_rest.Client(base_url=str(fixed_client.base_url), raise_on_unexpected_status=True)
    return client.set_httpx_client(fixed_client)


@pytest.fixture
def clients_copy(generated, tmp_path) -> Path:
    """A copy of the generated clients folder that the test may change."""
    return Path(shutil.copytree(generated, tmp_path / "clients"))


def test_generate_writes_package_and_fingerprint(generated, spec_path):
    package = client_package_dir(generated)

    assert (generated / "__init__.py").is_file()
    assert (package / "__init__.py").is_file()
    assert (package / "client.py").is_file()
    assert (package / "api" / "broker").is_dir()
    assert (package / "api" / "datafeed").is_dir()
    assert stored_fingerprint(generated) == client_fingerprint(spec_path.read_bytes())
    assert staging_folders(generated) == []


def test_generated_package_imports(generated):
    code = "from rest import Client; from rest.api.broker import broker_place_order; print(Client.__name__)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(generated)},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Client"


def test_generated_client_parses_not_found(rest_client):
    broker_get_order = generated_module("api.broker.broker_get_order")
    datafeed_resolve_symbol = generated_module("api.datafeed.datafeed_resolve_symbol")
    models = generated_module("models")

    order = broker_get_order.sync_detailed("ord-999", client=rest_client)
    symbol = datafeed_resolve_symbol.sync_detailed("NOPE", client=rest_client)

    assert order.status_code == 404
    assert isinstance(order.parsed, models.ErrorResponse)
    assert order.parsed.detail == "order_id 'ord-999' not found"
    assert symbol.status_code == 404
    assert isinstance(symbol.parsed, models.ErrorResponse)
    assert symbol.parsed.detail.startswith("symbol 'NOPE' not found")
    assert broker_get_order.sync("ord-999", client=rest_client) == order.parsed


def test_generated_client_parses_conflict(rest_client):
    broker_place_order = generated_module("api.broker.broker_place_order")
    broker_cancel_order = generated_module("api.broker.broker_cancel_order")
    models = generated_module("models")
    # A buy limit far below the market price stays working until it is cancelled.
    request = models.OrderRequest(
        symbol="AAPL",
        side=models.OrderRequestSide.BUY,
        type_=models.OrderRequestType.LIMIT,
        quantity=1,
        limit_price=1.0,
    )

    placed = broker_place_order.sync(client=rest_client, body=request)
    first = broker_cancel_order.sync_detailed(placed.id, client=rest_client)
    second = broker_cancel_order.sync_detailed(placed.id, client=rest_client)

    assert isinstance(placed, models.Order)
    assert first.status_code == 200
    assert isinstance(first.parsed, models.Order)
    assert second.status_code == 409
    assert isinstance(second.parsed, models.ErrorResponse)
    assert second.parsed.detail == f"order '{placed.id}' is cancelled; only working orders can be modified or cancelled"


def test_unchanged_spec_skips_generation(clients_copy, spec_path):
    before = modification_times(clients_copy)

    assert generate_clients(spec_path, clients_copy) is False
    assert modification_times(clients_copy) == before


def test_changed_spec_regenerates(clients_copy, spec_path, tmp_path):
    changed = write_changed_spec(spec_path, tmp_path / "changed.json")

    assert generate_clients(changed, clients_copy) is True
    assert stored_fingerprint(clients_copy) == client_fingerprint(changed.read_bytes())
    assert "Changed Trading API" in (client_package_dir(clients_copy) / "__init__.py").read_text()
    assert staging_folders(clients_copy) == []


def test_same_spec_gives_identical_bytes(generated, spec_path, tmp_path):
    # Each generation runs in a new interpreter with its own hash seed, so output that
    # depended on set order would differ here.
    clients = tmp_path / "again" / "clients"

    assert generate_clients(spec_path, clients) is True
    assert snapshot(clients) == snapshot(generated)


def test_forced_run_gives_identical_bytes(clients_copy, spec_path):
    before = snapshot(clients_copy)

    assert generate_clients(spec_path, clients_copy, force=True) is True
    assert snapshot(clients_copy) == before


def test_fingerprint_covers_spec_and_settings(spec_path, tmp_path):
    spec = spec_path.read_bytes()
    other_config = tmp_path / "config.yaml"
    other_config.write_bytes(GENERATOR_CONFIG.read_bytes() + b"# another comment\n")

    assert client_fingerprint(spec) == client_fingerprint(spec)
    assert client_fingerprint(spec + b" ") != client_fingerprint(spec)
    assert client_fingerprint(spec, other_config) != client_fingerprint(spec)


def test_failed_run_keeps_previous_package(clients_copy, spec_path, tmp_path):
    # The generator writes the whole package, then its post hook fails.
    failing_config = write_generator_config(tmp_path / "failing.json", ["false"])
    changed = write_changed_spec(spec_path, tmp_path / "changed.json")
    before = snapshot(clients_copy)

    with pytest.raises(CodegenError) as caught:
        generate_clients(changed, clients_copy, config_path=failing_config)

    message = str(caught.value)
    assert "openapi-python-client failed" in message
    assert "false failed" in message
    assert "the previous clients are unchanged" in message
    assert "\n" not in message
    assert snapshot(clients_copy) == before
    assert staging_folders(clients_copy) == []


def test_invalid_spec_leaves_no_package(tmp_path):
    spec = tmp_path / "openapi.json"
    spec.write_text('{"openapi": "3.1.0"}')
    clients = tmp_path / "clients"

    with pytest.raises(CodegenError, match="Failed to parse OpenAPI document"):
        generate_clients(spec, clients)

    assert not client_package_dir(clients).exists()
    assert stored_fingerprint(clients) is None
    assert staging_folders(clients) == []


def test_missing_spec_names_path(tmp_path):
    missing = tmp_path / "openapi.json"

    with pytest.raises(CodegenError, match=re.escape(f"OpenAPI spec {missing} not found")):
        generate_clients(missing, tmp_path / "clients")


def test_missing_fingerprint_regenerates(clients_copy, spec_path):
    (client_package_dir(clients_copy) / FINGERPRINT_FILE_NAME).unlink()

    assert generate_clients(spec_path, clients_copy) is True
    assert stored_fingerprint(clients_copy) == client_fingerprint(spec_path.read_bytes())


def test_stale_staging_folder_is_removed(clients_copy, spec_path):
    # A run killed during generation leaves its staging folder behind.
    stale = clients_copy / f"{STAGING_PREFIX}killed" / "rest"
    stale.mkdir(parents=True)
    (stale / "__init__.py").write_text("")

    assert generate_clients(spec_path, clients_copy) is False
    assert staging_folders(clients_copy) == []


def test_cli_skips_unchanged_clients(tmp_path, capsys):
    assert main(["--output-dir", str(tmp_path)]) == 0
    first = capsys.readouterr().out
    assert main(["--output-dir", str(tmp_path)]) == 0
    second = capsys.readouterr().out

    assert f"wrote {openapi_path(tmp_path)}" in first
    assert f"wrote {tmp_path / 'modules' / 'broker' / 'specs' / 'asyncapi.json'}" in first
    assert "generated the clients" in first
    assert f"unchanged {openapi_path(tmp_path)}" in second
    assert f"unchanged {client_package_dir(tmp_path / 'clients')}" in second


def test_cli_runs_only_requested_step(tmp_path):
    assert main(["asyncapi", "--output-dir", str(tmp_path)]) == 0

    assert (tmp_path / "modules" / "datafeed" / "specs" / "asyncapi.json").is_file()
    assert not openapi_path(tmp_path).exists()
    assert not (tmp_path / "clients").exists()


def test_cli_failure_prints_one_line(tmp_path):
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")

    result = subprocess.run(
        [sys.executable, "-m", "trading_api.codegen", "--output-dir", str(not_a_directory)],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert result.stderr.startswith("error: code generation failed: cannot write spec file")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_cli_interrupt_keeps_previous_package(generated, tmp_path):
    clients = Path(shutil.copytree(generated, tmp_path / "clients"))
    # A file that a completed run would remove with the old package.
    marker = client_package_dir(clients) / "previous-package-marker"
    marker.write_text("")
    before = snapshot(clients)
    process = subprocess.Popen(
        [sys.executable, "-m", "trading_api.codegen", "--output-dir", str(tmp_path), "--force"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Its own process group, so that the SIGINT reaches the generator too, as Ctrl+C in a terminal does.
        start_new_session=True,
    )
    try:
        # The staging folder exists while openapi-python-client runs.
        deadline = time.monotonic() + STAGING_WAIT_S
        while not staging_folders(clients) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert staging_folders(clients), "the run never started generating"
        os.killpg(process.pid, signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == INTERRUPTED_EXIT_STATUS
    assert stderr == (
        "code generation interrupted; each spec file and the clients package is either unchanged or complete\n"
    )
    assert f"wrote {openapi_path(tmp_path)}" in stdout
    assert snapshot(clients) == before
    assert staging_folders(clients) == []
    assert [path.name for path in tmp_path.rglob("*.tmp")] == []


def test_cli_rejects_unknown_step(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["openapi", "client"])

    assert caught.value.code == 2
    assert "unknown step 'client'" in capsys.readouterr().err
