"""Code generation before any server starts: the spec files, then the Python clients.

`python -m trading_api.codegen` exports openapi.json and every module's
asyncapi.json without starting a server, rewriting only the files whose content
changed. It then generates the REST client package `trading_api.clients.rest`
from openapi.json with openapi-python-client. The servers rewrite the specs in
their lifespan on every start and reload, but never touch the clients.

Client generation is skipped while the fingerprint stored in the package
matches the SHA-256 of the spec, the generator settings and the generator's
version. A run generates into a staging folder inside `clients/` and then moves
the finished package in place of the old one, so a failed or interrupted run
leaves the previous package as it was.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from trading_api.modules import ModuleImportError, load_modules
from trading_api.specs import (
    PACKAGE_DIR,
    SpecError,
    asyncapi_path,
    build_asyncapi,
    build_openapi,
    check_response_models,
    collect_all_routes,
    export_specs,
    openapi_path,
    write_if_changed,
)
from trading_api.specs.export import render_json

CLIENTS_DIR_NAME = "clients"
CLIENT_PACKAGE_NAME = "rest"
# Stored inside the generated package, so the package and its fingerprint are replaced together.
FINGERPRINT_FILE_NAME = ".fingerprint"
GENERATOR_CONFIG = Path(__file__).with_name("openapi-python-client.yaml")
GENERATOR_DISTRIBUTION = "openapi-python-client"
GENERATOR_MODULE = "openapi_python_client"
# A generous upper bound: generating this API's clients takes about a second.
GENERATOR_TIMEOUT_S = 300
STAGING_PREFIX = ".staging-"
# Signals held back while the old package is swapped for the new one.
DEFERRED_SIGNALS = {signal.SIGINT, signal.SIGTERM}
LOCK_FILE_NAME = ".codegen.lock"
# 128 + SIGINT: the status a shell reports for a command stopped by Ctrl+C.
INTERRUPTED_EXIT_STATUS = 130
CLIENTS_INIT_TEXT = '"""Python clients generated from the API specs by `python -m trading_api.codegen`; do not edit."""\n'
STEPS = ("openapi", "asyncapi", "clients")
# Lines of openapi-python-client's output that never explain a failure.
GENERATOR_BOILERPLATE = (
    "Generating ",
    "Error(s) encountered while generating",
    "Warning(s) encountered while generating",
    "If you believe this was a mistake",
)


class CodegenError(Exception):
    """Error raised when the clients can't be generated. The message names the file or the command."""


def clients_dir(output_dir: Path) -> Path:
    """Return the folder of the `clients` package under `output_dir`."""
    return output_dir / CLIENTS_DIR_NAME


def client_package_dir(clients: Path) -> Path:
    """Return the folder of the generated REST client package inside `clients`."""
    return clients / CLIENT_PACKAGE_NAME


# Specs


def export_openapi(output_dir: Path = PACKAGE_DIR) -> bool:
    """Write openapi.json under `output_dir` unless it is unchanged; return whether it wrote.

    Raises ModuleImportError when a module fails to import and SpecError when a route lacks
    a response model, both before anything is written.
    """
    check_response_models(collect_all_routes())
    return write_if_changed(openapi_path(output_dir), render_json(build_openapi()))


def export_asyncapi(output_dir: Path = PACKAGE_DIR) -> dict[Path, bool]:
    """Write every module's asyncapi.json under `output_dir`; return each path with whether it was rewritten.

    Raises ModuleImportError when a module fails to import, before anything is written.
    """
    results = {}
    for name, module in load_modules().items():
        path = asyncapi_path(output_dir, name)
        results[path] = write_if_changed(path, render_json(build_asyncapi(module)))
    return results


# Clients


def client_fingerprint(spec: bytes, config_path: Path = GENERATOR_CONFIG) -> str:
    """Return the SHA-256 of everything the generated code depends on: generator version, settings and spec."""
    settings = _read_bytes(config_path, "generator settings file", "restore it from the repository")
    digest = hashlib.sha256()
    for part in (_generator_version().encode(), settings, spec):
        # The length prefix keeps two different splits of the same bytes from hashing alike.
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def stored_fingerprint(clients: Path) -> str | None:
    """Return the fingerprint of the package in `clients`, or None when there is no complete package."""
    package = client_package_dir(clients)
    if not (package / "__init__.py").is_file():
        return None
    try:
        return (package / FINGERPRINT_FILE_NAME).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def generate_clients(
    spec_path: Path,
    clients: Path,
    *,
    config_path: Path = GENERATOR_CONFIG,
    force: bool = False,
    verbose: bool = False,
) -> bool:
    """Generate the REST client package from `spec_path` into `clients`; return whether it generated.

    Nothing runs while the stored fingerprint matches, unless `force` is set.
    `verbose` copies the generator's output to stderr. Raises CodegenError,
    and then leaves the previous package unchanged.
    """
    # The generator runs in a staging folder, so relative paths would point elsewhere.
    spec_path, clients, config_path = spec_path.resolve(), clients.resolve(), config_path.resolve()
    spec = _read_bytes(spec_path, "OpenAPI spec", "export it with `python -m trading_api.codegen openapi`")
    fingerprint = client_fingerprint(spec, config_path)
    try:
        clients.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CodegenError(f"cannot create the clients folder {clients} ({exc.strerror or exc})") from None

    with _exclusive_lock(clients / LOCK_FILE_NAME):
        _remove_stale_staging(clients)
        _write_clients_init(clients)
        if not force and stored_fingerprint(clients) == fingerprint:
            return False

        try:
            _generate_and_replace(spec_path, config_path, clients, fingerprint, verbose)
        except OSError as exc:
            raise CodegenError(f"cannot write the clients in {clients} ({exc.strerror or exc})") from None
    return True


def _generate_and_replace(spec_path: Path, config_path: Path, clients: Path, fingerprint: str, verbose: bool) -> None:
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=clients))
    try:
        generated = staging / CLIENT_PACKAGE_NAME
        _run_generator(spec_path, config_path, generated, verbose)
        (generated / FINGERPRINT_FILE_NAME).write_text(f"{fingerprint}\n", encoding="ascii")
        _replace_package(generated, client_package_dir(clients), staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _generator_version() -> str:
    try:
        return importlib.metadata.version(GENERATOR_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise CodegenError(_generator_missing_message()) from None


def _generator_missing_message() -> str:
    return f"{GENERATOR_DISTRIBUTION} is not installed for {sys.executable}; install the dev dependencies with `make install`"


def _read_bytes(path: Path, what: str, fix: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CodegenError(f"{what} {path} not found; {fix}") from None
    except OSError as exc:
        raise CodegenError(f"cannot read the {what} {path} ({exc.strerror or exc})") from None


@contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path`, so two runs never generate into the same folder at once."""
    try:
        handle = open(path, "a")
    except OSError as exc:
        raise CodegenError(f"cannot open the lock file {path} ({exc.strerror or exc})") from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_stale_staging(clients: Path) -> None:
    # Only a run that was killed leaves a staging folder, and the lock rules out a live one.
    for path in clients.glob(f"{STAGING_PREFIX}*"):
        shutil.rmtree(path, ignore_errors=True)


def _write_clients_init(clients: Path) -> None:
    init = clients / "__init__.py"
    try:
        if init.is_file() and init.read_text(encoding="utf-8") == CLIENTS_INIT_TEXT:
            return
        init.write_text(CLIENTS_INIT_TEXT, encoding="utf-8")
    except OSError as exc:
        raise CodegenError(f"cannot write {init} ({exc.strerror or exc})") from None


def _run_generator(spec_path: Path, config_path: Path, target: Path, verbose: bool) -> None:
    if importlib.util.find_spec(GENERATOR_MODULE) is None:
        raise CodegenError(_generator_missing_message())
    command = [
        sys.executable, "-m", GENERATOR_MODULE, "generate",
        "--path", str(spec_path),
        "--meta", "none",
        "--config", str(config_path),
        "--output-path", str(target),
        # A warning means part of the API is missing from the clients, so it fails the run.
        "--fail-on-warning",
    ]
    # The generator's post hooks call `ruff` by name; put this interpreter's scripts first,
    # so they use the ruff installed with the generator.
    scripts_dir = os.path.dirname(sys.executable)
    env = {**os.environ, "PATH": os.pathsep.join([scripts_dir, os.environ.get("PATH", "")])}
    try:
        result = subprocess.run(
            command, cwd=target.parent, env=env, capture_output=True, text=True, timeout=GENERATOR_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise CodegenError(
            f"{GENERATOR_DISTRIBUTION} did not finish within {GENERATOR_TIMEOUT_S} s on {spec_path}; "
            "the previous clients are unchanged"
        ) from None
    if verbose:
        sys.stderr.write(result.stdout + result.stderr)
    if result.returncode != 0 or not (target / "__init__.py").is_file():
        reason = _generator_failure_reason(result.stdout + result.stderr)
        raise CodegenError(
            f"{GENERATOR_DISTRIBUTION} failed on {spec_path} (exit status {result.returncode}): {reason}; "
            "the previous clients are unchanged, and --verbose shows the generator's full output"
        )


def _generator_failure_reason(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if any("Traceback" in line for line in lines):
        # The generator crashed: the exception is the traceback's last line.
        return lines[-1]
    for line in lines:
        if not line.startswith(GENERATOR_BOILERPLATE):
            return line
    return "no error message"


def _replace_package(generated: Path, package: Path, staging: Path) -> None:
    """Move the finished package `generated` to `package`, and the old package into `staging`.

    SIGINT and SIGTERM wait until both renames are done, so Ctrl+C can't fall between them.
    NOTE: the two renames are still not one atomic step. A run killed by SIGKILL between
    them leaves no package and no fingerprint, so the next run generates again.
    """
    previous = staging / "previous"
    with _signals_deferred():
        had_previous = package.exists()
        if had_previous:
            os.rename(package, previous)
        try:
            os.rename(generated, package)
        except OSError:
            if had_previous:
                os.rename(previous, package)
            raise


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Block DEFERRED_SIGNALS in the calling thread for the duration of the block, then deliver them.

    NOTE: only the calling thread's signal mask changes. In a program with other threads
    the kernel may deliver a signal to one of them, and Python then raises
    KeyboardInterrupt in the main thread even inside the block.
    """
    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, DEFERRED_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)


# Command line


def main(argv: list[str] | None = None) -> int:
    """Run the requested steps and return the exit status: 0 on success, 1 on failure, 130 on Ctrl+C.

    NOTE: Ctrl+C before this function runs, while Python still imports this module and
    FastAPI, ends with Python's own traceback.
    """
    parser = argparse.ArgumentParser(
        prog="python -m trading_api.codegen",
        description=(
            "Export the spec files and generate the Python clients before the servers start. "
            "Only changed spec files are rewritten, and the clients are only generated again "
            "when openapi.json, the generator settings or the generator's version changed."
        ),
    )
    parser.add_argument(
        "steps",
        nargs="*",
        metavar="STEP",
        help=(
            "openapi (openapi.json), asyncapi (each module's asyncapi.json) or clients "
            "(exports openapi.json, then generates the clients from it); default: all three"
        ),
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=PACKAGE_DIR,
        help="directory that receives the spec files and the clients folder (default: the trading_api package, %(default)s)",
    )
    parser.add_argument("--force", action="store_true", help="generate the clients even when their fingerprint matches")
    parser.add_argument("--verbose", action="store_true", help="show openapi-python-client's output")
    args = parser.parse_args(argv)
    unknown = [step for step in args.steps if step not in STEPS]
    if unknown:
        parser.error(f"unknown step {unknown[0]!r}; choose from {', '.join(STEPS)}")
    steps = set(args.steps or STEPS)

    try:
        _run_steps(steps, args.output_dir, args.force, args.verbose)
    except (SpecError, CodegenError, ModuleImportError) as exc:
        print(f"error: code generation failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # The spec files and the clients package are replaced whole, so that this line is true.
        print(
            "code generation interrupted; each spec file and the clients package is either unchanged or complete",
            file=sys.stderr,
        )
        return INTERRUPTED_EXIT_STATUS
    return 0


def _run_steps(steps: set[str], output_dir: Path, force: bool, verbose: bool) -> None:
    if {"openapi", "asyncapi"} <= steps:
        results = export_specs(output_dir)
    else:
        results = {}
        if steps & {"openapi", "clients"}:
            results[openapi_path(output_dir)] = export_openapi(output_dir)
        if "asyncapi" in steps:
            results.update(export_asyncapi(output_dir))
    for path, written in results.items():
        print(f"{'wrote' if written else 'unchanged'} {path}")

    if "clients" not in steps:
        return
    clients = clients_dir(output_dir)
    started = time.monotonic()
    if generate_clients(openapi_path(output_dir), clients, force=force, verbose=verbose):
        print(f"generated the clients in {client_package_dir(clients)} in {time.monotonic() - started:.1f} s")
    else:
        print(f"unchanged {client_package_dir(clients)} (the fingerprint of openapi.json and the generator matches)")


if __name__ == "__main__":
    sys.exit(main())
