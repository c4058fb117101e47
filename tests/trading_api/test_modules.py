"""Tests of the module registry: names without imports, lazy loading and import errors."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import trading_api.modules
from trading_api.modules import (
    MODULE_NAMES,
    MODULE_PACKAGES,
    MODULES,
    Module,
    describe_exception,
    load_available_modules,
    load_module,
    load_modules,
)

pytestmark = pytest.mark.timeout(120)


def test_registry_import_loads_no_module() -> None:
    # A fresh interpreter, because this one imported every module for the other tests.
    script = (
        "import json, sys\n"
        "import trading_api.modules as registry\n"
        "print(json.dumps({'names': list(registry.MODULE_NAMES),"
        " 'imported': sorted(name for name in sys.modules if name.startswith('trading_api.modules.'))}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)

    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output["names"] == ["broker", "datafeed"]
    assert output["imported"] == ["trading_api.modules.base"]


@pytest.mark.parametrize("name", MODULE_NAMES)
def test_load_module_returns_declaration_of_name(name: str) -> None:
    module = load_module(name)

    assert isinstance(module, Module)
    assert module.name == name
    assert importlib.import_module(MODULE_PACKAGES[name]).MODULE is module


def test_load_module_unknown_name_lists_known() -> None:
    with pytest.raises(ValueError) as excinfo:
        load_module("options")

    assert str(excinfo.value) == "unknown module 'options'; known modules: broker, datafeed"


def test_load_modules_keeps_requested_order() -> None:
    assert list(load_modules(["datafeed", "broker"])) == ["datafeed", "broker"]
    assert list(load_modules()) == list(MODULE_NAMES)


def test_modules_attribute_has_every_module() -> None:
    assert list(MODULES) == list(MODULE_NAMES)
    assert trading_api.modules.MODULES is MODULES
    assert MODULES == load_modules()


def test_load_available_modules_without_failures() -> None:
    modules, errors = load_available_modules()

    assert list(modules) == list(MODULE_NAMES)
    assert errors == {}


def test_unknown_registry_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError) as excinfo:
        trading_api.modules.OPTIONS  # noqa: B018

    assert str(excinfo.value) == "module 'trading_api.modules' has no attribute 'OPTIONS'"


def test_describe_exception_names_raising_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "registry_probe_runtime_error"
    package.mkdir()
    (package / "__init__.py").write_text("VALUE = 1\nRATIO = VALUE / 0\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    with pytest.raises(ZeroDivisionError) as excinfo:
        importlib.import_module(package.name)

    assert (
        describe_exception(excinfo.value) == f"ZeroDivisionError: division by zero ({package / '__init__.py'}, line 2)"
    )


def test_describe_exception_of_syntax_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "registry_probe_syntax_error"
    package.mkdir()
    (package / "__init__.py").write_text("VALUE = 1\n\ndef broken(:\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    with pytest.raises(SyntaxError) as excinfo:
        importlib.import_module(package.name)

    assert describe_exception(excinfo.value) == f"SyntaxError: invalid syntax ({package / '__init__.py'}, line 3)"
