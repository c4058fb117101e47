"""Writing the spec files: only when their content changed, and atomically."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trading_api.modules import MODULE_NAMES, Module, load_modules
from trading_api.specs.asyncapi import build_asyncapi
from trading_api.specs.openapi import SpecError, build_openapi, check_response_models, collect_all_routes

logger = logging.getLogger(__name__)

# Directory of the trading_api package, which is the default root of the spec files.
PACKAGE_DIR = Path(__file__).resolve().parent.parent
SPEC_FILE_MODE = 0o644


def openapi_path(output_dir: Path) -> Path:
    """Return where the merged OpenAPI document goes under `output_dir`."""
    return output_dir / "openapi.json"


def asyncapi_path(output_dir: Path, module: str) -> Path:
    """Return where a module's AsyncAPI document goes under `output_dir`."""
    return output_dir / "modules" / module / "specs" / "asyncapi.json"


def render_json(document: dict[str, Any]) -> str:
    """Serialize a spec document. Equal documents give equal text."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def write_if_changed(path: Path, text: str) -> bool:
    """Write `text` to `path` unless the file already contains it, and return whether it wrote.

    The text goes to a temporary file in the same directory that then replaces `path`,
    so a reader or a concurrent writer never reads a partly written file.
    Raises SpecError naming the path when the file can't be written.
    """
    data = text.encode("utf-8")
    try:
        if path.read_bytes() == data:
            return False
    except OSError:
        # Missing or unreadable: write it, and let a failed write report the cause.
        pass

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise SpecError(f"cannot write spec file {path}: a parent path exists and is not a directory") from None
    except OSError as exc:
        raise SpecError(f"cannot write spec file {path}: {exc.strerror or exc}") from exc

    temporary = None
    try:
        with tempfile.NamedTemporaryFile(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
        ) as handle:
            temporary = Path(handle.name)
            handle.write(data)
        os.chmod(temporary, SPEC_FILE_MODE)
        os.replace(temporary, path)
        temporary = None
    except OSError as exc:
        raise SpecError(f"cannot write spec file {path}: {exc.strerror or exc}") from exc
    finally:
        # Also runs on KeyboardInterrupt, so that an interrupted write leaves no temporary file.
        if temporary is not None:
            temporary.unlink(missing_ok=True)
    return True


def export_specs(output_dir: Path = PACKAGE_DIR, modules: Mapping[str, Module] | None = None) -> dict[Path, bool]:
    """Write openapi.json and the asyncapi.json of each module in `modules` under `output_dir`.

    `modules` defaults to every module, and then a module that fails to import raises
    ModuleImportError before anything is written. When `modules` lacks a registered module,
    openapi.json is not written, so a spec without that module never replaces a complete one.
    The module's own server writes the file again once the module imports.

    Returns each written or unchanged path with whether it was rewritten. Raises SpecError
    when a route lacks a response model or a file can't be written; nothing is written in
    the first case.
    """
    modules = load_modules() if modules is None else modules
    check_response_models(collect_all_routes(modules))
    documents = {}
    missing = [name for name in MODULE_NAMES if name not in modules]
    if missing:
        logger.warning(
            "not writing %s: the merged spec lacks module(s) %s, which failed to import",
            openapi_path(output_dir),
            ", ".join(missing),
        )
    else:
        documents[openapi_path(output_dir)] = build_openapi(modules=modules)
    for name, module in modules.items():
        documents[asyncapi_path(output_dir, name)] = build_asyncapi(module)

    results = {}
    for path, document in documents.items():
        results[path] = write_if_changed(path, render_json(document))
        if results[path]:
            logger.info("wrote spec %s", path)
    return results
