"""Tests of servers and spec commands when one module's code fails to import.

Each test runs Python in a subprocess on a copy of the trading_api package in which
broker's service.py has a syntax error, so the checkout's source stays untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from trading_api.specs import asyncapi_path, export_specs, openapi_path

pytestmark = pytest.mark.timeout(120)

SOURCE_PACKAGE = Path(__file__).resolve().parents[2] / "backend" / "src" / "trading_api"
BROKEN_LINE = "def broken(:"
BROKER_ERROR = "module 'broker' failed to import: SyntaxError: invalid syntax ("
SUBPROCESS_TIMEOUT_S = 60
OLD_MTIME_NS = 1_000_000_000 * 10**9

# Starts the app of ENABLED_MODULES with spec_dir argv[1] under TestClient, requests the
# paths in argv[2:] and prints each status code, with the body of /openapi.json.
SERVER_SCRIPT = """
import json, sys
from pathlib import Path
from fastapi.testclient import TestClient
from trading_api.app import create_app

app = create_app(spec_dir=Path(sys.argv[1]))
with TestClient(app) as client:
    responses = {path: client.get(path) for path in ["/openapi.json", *sys.argv[2:]]}
print(json.dumps({
    "status": {path: response.status_code for path, response in responses.items()},
    "openapi": responses["/openapi.json"].json(),
}))
"""


def ignore_generated(directory: str, names: list[str]) -> set[str]:
    return {name for name in names if name in ("__pycache__", "clients", "openapi.json") or name.endswith(".pyc")}


@pytest.fixture(scope="module")
def broken_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a folder to put on PYTHONPATH: a copy of trading_api whose broker fails to import."""
    source = tmp_path_factory.mktemp("broken_source")
    package = source / "trading_api"
    shutil.copytree(SOURCE_PACKAGE, package, ignore=ignore_generated)
    service = package / "modules" / "broker" / "service.py"
    service.write_text(service.read_text(encoding="utf-8") + f"\n{BROKEN_LINE}\n", encoding="utf-8")
    return source


def run_python(source: Path, args: list[str], enabled_modules: str = "") -> subprocess.CompletedProcess[str]:
    """Run the interpreter with `args` on the package copy in `source`, with ENABLED_MODULES set."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(source), os.environ.get("PYTHONPATH")])),
        "ENABLED_MODULES": enabled_modules,
    }
    return subprocess.run(
        [sys.executable, *args],
        cwd=source,
        env=env,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
        check=False,
    )


def run_server(
    source: Path, spec_dir: Path, enabled_modules: str, *paths: str
) -> tuple[subprocess.CompletedProcess[str], dict]:
    """Start the app in `source` under TestClient; return the process and its status codes and merged spec."""
    result = run_python(source, ["-c", SERVER_SCRIPT, str(spec_dir), *paths], enabled_modules)
    assert result.returncode == 0, result.stderr
    return result, json.loads(result.stdout)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("ERROR:")]


def broker_paths(document: dict) -> list[str]:
    return [path for path in document["paths"] if path.startswith("/api/v1/broker/")]


def test_core_server_survives_broken_module(broken_source: Path, tmp_path: Path) -> None:
    result, output = run_server(broken_source, tmp_path, "", "/api/v1/health")

    assert output["status"] == {"/openapi.json": 200, "/api/v1/health": 200}
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert BROKER_ERROR in errors[0]
    assert str(broken_source / "trading_api" / "modules" / "broker" / "service.py") in errors[0]
    assert errors[0].endswith(
        "; this server leaves the module out of its merged OpenAPI document and does not write openapi.json, "
        "which the module's own server writes again once the module imports"
    )
    # No file to read, so the spec is built in memory from the modules that imported.
    assert broker_paths(output["openapi"]) == []
    assert "/api/v1/datafeed/bars" in output["openapi"]["paths"]


def test_incomplete_server_writes_no_openapi(broken_source: Path, tmp_path: Path) -> None:
    result, _ = run_server(broken_source, tmp_path, "")

    assert not openapi_path(tmp_path).exists()
    assert f"not writing {openapi_path(tmp_path)}: the merged spec lacks module(s) broker" in result.stderr
    assert asyncapi_path(tmp_path, "datafeed").is_file()
    assert not asyncapi_path(tmp_path, "broker").exists()


def test_incomplete_server_keeps_and_serves_complete_spec(broken_source: Path, tmp_path: Path) -> None:
    # The spec that the servers wrote before broker broke, from the checkout's working code.
    export_specs(tmp_path)
    spec_file = openapi_path(tmp_path)
    complete = spec_file.read_bytes()
    os.utime(spec_file, ns=(OLD_MTIME_NS, OLD_MTIME_NS))

    _, output = run_server(broken_source, tmp_path, "")

    assert spec_file.read_bytes() == complete
    assert spec_file.stat().st_mtime_ns == OLD_MTIME_NS
    assert output["openapi"] == json.loads(complete)
    assert "/api/v1/broker/orders" in output["openapi"]["paths"]


def test_other_module_server_survives_broken_module(broken_source: Path, tmp_path: Path) -> None:
    result, output = run_server(
        broken_source, tmp_path, "datafeed", "/api/v1/health", "/api/v1/datafeed/config", "/api/v1/broker/health"
    )

    assert output["status"] == {
        "/openapi.json": 200,
        "/api/v1/health": 200,
        "/api/v1/datafeed/config": 200,
        "/api/v1/broker/health": 404,
    }
    assert len(error_lines(result.stderr)) == 1, result.stderr
    assert BROKER_ERROR in error_lines(result.stderr)[0]


def test_enabled_broken_module_stops_startup(broken_source: Path, tmp_path: Path) -> None:
    result = run_python(broken_source, ["-c", SERVER_SCRIPT, str(tmp_path)], "broker")

    assert result.returncode == 1
    assert result.stdout == ""
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith(f"trading_api.modules.ModuleImportError: {BROKER_ERROR}")
    # The traceback of the syntax error itself comes first, as the cause.
    assert BROKEN_LINE in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_unknown_module_lists_known_despite_broken_module(broken_source: Path, tmp_path: Path) -> None:
    result = run_python(broken_source, ["-c", SERVER_SCRIPT, str(tmp_path)], "broker,options")

    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("trading_api.settings.SettingsError: ENABLED_MODULES='broker,options' names unknown")
    assert "known modules: broker, datafeed" in last_line


def test_specs_command_fails_on_broken_module(broken_source: Path, tmp_path: Path) -> None:
    result = run_python(broken_source, ["-m", "trading_api.specs", "--output-dir", str(tmp_path)])

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: spec export failed: {BROKER_ERROR}")
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("steps", [[], ["openapi"], ["asyncapi"], ["clients"]])
def test_codegen_command_fails_on_broken_module(broken_source: Path, tmp_path: Path, steps: list[str]) -> None:
    result = run_python(broken_source, ["-m", "trading_api.codegen", *steps, "--output-dir", str(tmp_path)])

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: code generation failed: {BROKER_ERROR}")
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
