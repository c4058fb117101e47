"""Writing the spec files: only when their content changed, and atomically."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from trading_api.modules import MODULES
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
    except OSError as exc:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        raise SpecError(f"cannot write spec file {path}: {exc.strerror or exc}") from exc
    return True


def export_specs(output_dir: Path = PACKAGE_DIR) -> dict[Path, bool]:
    """Write the merged OpenAPI document and every module's AsyncAPI document under `output_dir`.

    Returns each path with whether it was rewritten. Raises SpecError when a route lacks a
    response model or a file can't be written; nothing is written in the first case.
    """
    check_response_models(collect_all_routes())
    documents = {openapi_path(output_dir): build_openapi()}
    for name, module in MODULES.items():
        documents[asyncapi_path(output_dir, name)] = build_asyncapi(module)

    results = {}
    for path, document in documents.items():
        results[path] = write_if_changed(path, render_json(document))
        if results[path]:
            logger.info("wrote spec %s", path)
    return results
