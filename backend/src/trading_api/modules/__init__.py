"""Registry of the modules a server can enable through ENABLED_MODULES.

Each module's source lives in `modules/{name}/`; the dev tool relies on that path to
exclude other servers' modules from reload watching.

The registry stores module names and import paths only, and imports a module's package
when it is loaded. A server that does not watch a module's folder therefore keeps
running, without that module in its merged spec, when the module's code is broken.
"""

from __future__ import annotations

import importlib
import traceback
from collections.abc import Iterable
from typing import Any

from trading_api.modules.base import Module, ModuleRuntime

# Maps each module name to the package whose MODULE attribute declares it.
MODULE_PACKAGES: dict[str, str] = {
    "broker": "trading_api.modules.broker",
    "datafeed": "trading_api.modules.datafeed",
}
MODULE_NAMES: tuple[str, ...] = tuple(MODULE_PACKAGES)
# Every module by name. Only annotated here: __getattr__ below imports the modules on first access.
MODULES: dict[str, Module]


class ModuleImportError(Exception):
    """Error raised when a module's package fails to import.

    The message names the module, the exception and the file and line that raised it.
    """

    def __init__(self, module_name: str, cause: BaseException) -> None:
        super().__init__(f"module {module_name!r} failed to import: {describe_exception(cause)}")
        self.module_name = module_name


def describe_exception(exc: BaseException) -> str:
    """Return `Type: message (file, line N)` for an exception raised while importing."""
    if isinstance(exc, SyntaxError):
        return f"{type(exc).__name__}: {exc.msg} ({exc.filename}, line {exc.lineno})"
    # The innermost frame outside importlib's frozen bootstrap is the module's line that raised.
    frames = [frame for frame in traceback.extract_tb(exc.__traceback__) if not frame.filename.startswith("<frozen")]
    location = f" ({frames[-1].filename}, line {frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{location}"


def load_module(name: str) -> Module:
    """Import a module's package and return its declaration.

    Raises ValueError for a name that is not in MODULE_PACKAGES, and ModuleImportError when
    the package fails to import or declares no MODULE.
    """
    if name not in MODULE_PACKAGES:
        raise ValueError(f"unknown module {name!r}; known modules: {', '.join(MODULE_NAMES)}")
    try:
        return importlib.import_module(MODULE_PACKAGES[name]).MODULE
    except Exception as exc:
        # Importing runs the module's own code, which can raise any exception.
        raise ModuleImportError(name, exc) from exc


def load_modules(names: Iterable[str] = MODULE_NAMES) -> dict[str, Module]:
    """Import the named modules, by default all of them, and return them by name.

    Raises ModuleImportError for the first module that fails to import.
    """
    return {name: load_module(name) for name in names}


def load_available_modules(
    names: Iterable[str] = MODULE_NAMES,
) -> tuple[dict[str, Module], dict[str, ModuleImportError]]:
    """Import the named modules, by default all, and return those that imported and the errors of the others."""
    modules: dict[str, Module] = {}
    errors: dict[str, ModuleImportError] = {}
    for name in names:
        try:
            modules[name] = load_module(name)
        except ModuleImportError as exc:
            errors[name] = exc
    return modules, errors


def __getattr__(attribute: str) -> Any:
    # Importing the registry imports no module, and MODULES imports them all on first access.
    # It raises ModuleImportError when a module is broken; code that must survive that
    # calls load_available_modules instead.
    if attribute == "MODULES":
        modules = load_modules()
        globals()["MODULES"] = modules
        return modules
    raise AttributeError(f"module {__name__!r} has no attribute {attribute!r}")


# MODULES is left out, so that a star import does not import every module.
__all__ = [
    "MODULE_NAMES",
    "MODULE_PACKAGES",
    "Module",
    "ModuleImportError",
    "ModuleRuntime",
    "describe_exception",
    "load_available_modules",
    "load_module",
    "load_modules",
]
