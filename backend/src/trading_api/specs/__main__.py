"""Command line: write the OpenAPI and AsyncAPI spec files without starting a server."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from trading_api.modules import ModuleImportError
from trading_api.specs.export import PACKAGE_DIR, export_specs
from trading_api.specs.openapi import SpecError

# 128 + SIGINT: the status a shell reports for a command stopped by Ctrl+C.
INTERRUPTED_EXIT_STATUS = 130


def main(argv: list[str] | None = None) -> int:
    """Export the specs and return the exit status: 0 on success, 1 on failure, 130 on Ctrl+C.

    NOTE: Ctrl+C before this function runs, while Python still imports this package and
    FastAPI, ends with Python's own traceback.
    """
    parser = argparse.ArgumentParser(
        prog="python -m trading_api.specs",
        description=(
            "Write openapi.json and modules/{module}/specs/asyncapi.json, "
            "rewriting only the files whose content changed."
        ),
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=PACKAGE_DIR,
        help="directory that receives the spec files (default: the trading_api package, %(default)s)",
    )
    args = parser.parse_args(argv)

    try:
        results = export_specs(args.output_dir)
    except (SpecError, ModuleImportError) as exc:
        print(f"error: spec export failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # Each spec file is replaced whole, so that this line is true.
        print("spec export interrupted; each spec file is either unchanged or complete", file=sys.stderr)
        return INTERRUPTED_EXIT_STATUS

    for path, written in results.items():
        print(f"{'wrote' if written else 'unchanged'} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
