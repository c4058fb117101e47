"""Tests of devenv.status against real processes and sockets, without nginx or uvicorn."""

from __future__ import annotations

import socket
import time

import yaml

from devenv import pidfiles, status
from devenv.config import load_config
from devenv.pidfiles import ROLE_CORE_SERVER

HOST = "127.0.0.1"


def test_status_fast_on_silent_port(tmp_path, free_port_block, sleeper):
    # A listening socket that never accepts: connections complete, no response ever comes.
    silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    silent.bind((HOST, 0))
    silent.listen()
    port = silent.getsockname()[1]
    config_path = tmp_path / "dev-config.yaml"
    config_path.write_text(yaml.safe_dump({
        "state_dir": "state",
        "gateway": {"port": free_port_block(1)[0]},
        "servers": {"core": {"port": port, "reload": False}},
    }))
    config = load_config(config_path)
    record = pidfiles.record_for_pid("core-0", sleeper.pid, port, str(config.config_path), role=ROLE_CORE_SERVER)
    pidfiles.write_record(config.pids_dir, record)

    started = time.monotonic()
    try:
        report = status.collect_status(config)
    finally:
        silent.close()
    elapsed = time.monotonic() - started

    core = next(entry for entry in report["processes"] if entry["name"] == "core-0")
    assert core["alive"] is True
    assert core["port"] == port
    assert core["health"]["error"] == "timed out"
    assert report["state"] == "degraded"
    assert elapsed < status.STATUS_PROBE_TIMEOUT_S + 0.8
