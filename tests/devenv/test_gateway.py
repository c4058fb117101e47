"""Tests of devenv.gateway on a real supervisor whose `nginx` process is a script in place of the nginx master."""

from __future__ import annotations

import logging
import os
import shlex
import sys
import time
from pathlib import Path

import pytest

from devenv import nginx, processes, render
from devenv.config import DevConfig, parse_config
from devenv.gateway import RELOAD_CONFIRM_S, GatewayDownMarks
from devenv.logs import LogWriter
from devenv.processes import Supervisor

# A master that records each SIGHUP in a file and never starts workers, so no
# reload can finish. It creates the `.ready` file once its handler is installed.
SIGHUP_RECORDER_CODE = """\
import signal
import sys
import time

def record(signum, frame):
    with open(sys.argv[1], "a") as hangups:
        hangups.write("SIGHUP\\n")

signal.signal(signal.SIGHUP, record)
open(sys.argv[1] + ".ready", "w").close()
time.sleep(60)
"""


def make_config(tmp_path: Path) -> DevConfig:
    data = {
        "state_dir": str(tmp_path / "state"),
        "servers": {"core": {"port": 8003}},
        "watch": {"dirs": [str(tmp_path)]},
    }
    return parse_config(data, tmp_path / "dev-config.yaml")


@pytest.fixture
def fake_master(tmp_path):
    """Start a supervisor whose `nginx` process runs `code`; return it and the file its SIGHUPs go to."""
    started: list[tuple[Supervisor, LogWriter]] = []

    def start(code: str = SIGHUP_RECORDER_CODE, wait_ready: bool = True) -> tuple[Supervisor, Path]:
        script = tmp_path / "fake_master.py"
        script.write_text(code)
        hangups = tmp_path / "hangups.txt"
        command = f"exec {shlex.quote(sys.executable)} {shlex.quote(str(script))} {shlex.quote(str(hangups))}"
        writer = LogWriter(tmp_path / "logs")
        supervisor = Supervisor(
            processes.read_procfile(f"nginx: {command}\n", {}),
            cwd=tmp_path,
            env=dict(os.environ),
            log_writer=writer,
            pids_dir=tmp_path / "pids",
        )
        supervisor.start_all()
        started.append((supervisor, writer))
        ready = Path(f"{hangups}.ready")
        deadline = time.monotonic() + 10
        while wait_ready and not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return supervisor, hangups

    yield start
    for supervisor, writer in started:
        supervisor.stop([], kill_wait_s=0.5)
        writer.close()


def test_unfinished_reload_logged(tmp_path, fake_master, caplog):
    caplog.set_level(logging.INFO, logger="devenv.gateway")
    config = make_config(tmp_path)
    supervisor, hangups = fake_master()
    gateway = GatewayDownMarks(config, nginx.find_nginx(config), supervisor)

    started = time.monotonic()
    gateway.update({"core-0"})
    elapsed = time.monotonic() - started

    assert hangups.read_text() == "SIGHUP\n"
    assert elapsed >= RELOAD_CONFIRM_S
    assert "cannot update the gateway for core-0" in caplog.text
    assert f"did not replace its workers within {RELOAD_CONFIRM_S:g} s after SIGHUP" in caplog.text
    assert "marked core-0 down" not in caplog.text
    assert " down;" in config.nginx_conf_path.read_text()
    assert supervisor.running_names() == ["nginx"]

    gateway.update({"core-0"})

    assert hangups.read_text() == "SIGHUP\n"
    assert caplog.text.count("cannot update the gateway") == 1


def test_rejected_conf_not_written(tmp_path, fake_master, caplog):
    caplog.set_level(logging.INFO, logger="devenv.gateway")
    config = make_config(tmp_path)
    rejecting_nginx = tmp_path / "rejecting-nginx"
    rejecting_nginx.write_text("#!/bin/sh\necho 'nginx: [emerg] unknown directive' >&2\nexit 1\n")
    rejecting_nginx.chmod(0o755)
    working = render.render_nginx_conf(config)
    render.write_if_changed(config.nginx_conf_path, working)
    supervisor, hangups = fake_master()
    gateway = GatewayDownMarks(config, rejecting_nginx, supervisor)

    gateway.update({"core-0"})

    assert "cannot update the gateway for core-0: nginx rejected" in caplog.text
    assert "unknown directive" in caplog.text
    assert config.nginx_conf_path.read_text() == working
    assert not hangups.exists()
    assert supervisor.running_names() == ["nginx"]


def test_exited_nginx_logged(tmp_path, fake_master, caplog):
    caplog.set_level(logging.INFO, logger="devenv.gateway")
    config = make_config(tmp_path)
    supervisor, hangups = fake_master("import sys\n", wait_ready=False)
    deadline = time.monotonic() + 10
    while supervisor.running_names() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert supervisor.running_names() == []
    gateway = GatewayDownMarks(config, nginx.find_nginx(config), supervisor)

    gateway.update({"core-0"})
    gateway.update({"core-0"})

    assert caplog.text.count("cannot update the gateway for core-0: nginx is not running") == 1
    assert not config.nginx_conf_path.exists()
    assert not hangups.exists()
