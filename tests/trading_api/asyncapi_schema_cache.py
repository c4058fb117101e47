"""Fetch the official AsyncAPI 3.0.0 JSON schema from the npm package @asyncapi/specs.

The schema is not committed. It is unpacked once into .venv/cache/asyncapi-specs/ by
`npm pack @asyncapi/specs@6`, so the tests need npm and the npm registry on first use.
Run this file to fetch it ahead of the tests: `python tests/trading_api/asyncapi_schema_cache.py`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".venv" / "cache" / "asyncapi-specs"
PACKAGE_SPEC = "@asyncapi/specs@6"
SCHEMA_MEMBER = "package/schemas/3.0.0.json"
NPM_TIMEOUT_S = 300


class SchemaFetchError(RuntimeError):
    """The AsyncAPI schema could not be fetched with npm."""


def schema_path(cache_dir: Path = CACHE_DIR) -> Path:
    """Return where the cached AsyncAPI 3.0.0 schema lives."""
    return cache_dir / "3.0.0.json"


def fetch_asyncapi_schema(cache_dir: Path = CACHE_DIR) -> Path:
    """Return the path of the AsyncAPI 3.0.0 schema, fetching it with npm if it is not cached."""
    target = schema_path(cache_dir)
    if target.is_file():
        return target

    npm = shutil.which("npm")
    if npm is None:
        raise SchemaFetchError(f"npm not found on PATH; install Node.js and npm to fetch {PACKAGE_SPEC}")

    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as work_dir:
        result = subprocess.run(
            [npm, "pack", PACKAGE_SPEC, "--pack-destination", work_dir],
            cwd=work_dir,
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT_S,
        )
        if result.returncode != 0:
            raise SchemaFetchError(
                f"npm pack {PACKAGE_SPEC} failed (exit {result.returncode}): {result.stderr.strip()}"
            )

        tarballs = list(Path(work_dir).glob("*.tgz"))
        if len(tarballs) != 1:
            raise SchemaFetchError(
                f"npm pack {PACKAGE_SPEC} produced {len(tarballs)} tarballs in {work_dir}, expected 1"
            )
        with tarfile.open(tarballs[0]) as archive:
            member = archive.extractfile(SCHEMA_MEMBER)
            if member is None:
                raise SchemaFetchError(f"{tarballs[0].name} has no {SCHEMA_MEMBER}")
            data = member.read()

        # Validate before caching, and replace atomically so parallel test workers never
        # read a partial file.
        json.loads(data)
        partial = Path(work_dir) / target.name
        partial.write_bytes(data)
        partial.replace(target)
    return target


def load_asyncapi_schema(cache_dir: Path = CACHE_DIR) -> dict[str, Any]:
    """Return the AsyncAPI 3.0.0 schema as a dict, fetching it first if needed."""
    return json.loads(fetch_asyncapi_schema(cache_dir).read_text())


if __name__ == "__main__":
    try:
        print(fetch_asyncapi_schema())
    except (SchemaFetchError, subprocess.TimeoutExpired) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
