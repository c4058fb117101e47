"""Tests of devenv.topology, devenv.stopping and devenv.lifecycle that need neither nginx nor uvicorn.

They cover the stop order, lenient config reading and the messages of stop and start.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import yaml

from devenv import lifecycle, pidfiles, stopping, topology
from devenv.config import load_config
from devenv.errors import ConfigError, DevenvError
from devenv.pidfiles import ROLE_CORE_SERVER, ROLE_GATEWAY, ROLE_MODULE_SERVER, PidRecord

HOST = "127.0.0.1"
# A key that validation rejects, as after a typo while the stack runs.
TYPO = {"gatway": {"port": 8000}}


def write_config(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


def server_settings(ports: list[int]) -> dict:
    """Return config keys for a gateway and two servers without reload on the given three ports."""
    return {
        "gateway": {"port": ports[0]},
        "servers": {
            "core": {"port": ports[1], "reload": False},
            "broker": {"port": ports[2], "modules": ["broker"], "reload": False},
        },
    }


def test_stop_stages_follow_roles():
    roles = {"nginx": ROLE_GATEWAY, "core-0": ROLE_CORE_SERVER, "broker-0": ROLE_MODULE_SERVER, "old-0": ""}

    assert topology.stop_stages(roles) == [["nginx"], ["broker-0", "old-0"], ["core-0"]]


def test_recorded_roles_fall_back_to_config(tmp_path, free_port_block):
    config = load_config(write_config(tmp_path / "dev-config.yaml", server_settings(free_port_block(3))))
    records = {
        name: PidRecord(name=name, pid=1, pgid=1, create_time=1.0, role=role)
        for name, role in [("nginx", ""), ("core-0", ""), ("broker-0", ROLE_MODULE_SERVER), ("gone-0", "")]
    }

    roles = topology.recorded_roles(records, config)

    assert roles == {"nginx": ROLE_GATEWAY, "core-0": ROLE_CORE_SERVER, "broker-0": ROLE_MODULE_SERVER, "gone-0": ""}
    assert topology.recorded_roles(records)["core-0"] == ""
    assert topology.recorded_roles(records)["nginx"] == ROLE_GATEWAY


def test_lenient_read_matches_config(tmp_path, free_port_block):
    settings = {"root": "..", "state_dir": "run", "host": "localhost", **server_settings(free_port_block(3))}
    valid = load_config(write_config(tmp_path / "config" / "valid.yaml", settings))
    invalid_path = write_config(tmp_path / "config" / "invalid.yaml", {**settings, **TYPO})

    files = stopping.read_stack_files_leniently(invalid_path)

    assert files is not None
    assert files.state_dir == valid.state_dir == tmp_path / "run"
    assert files.pids_dir == valid.pids_dir
    assert files.host == "localhost"
    assert files.config_path == invalid_path.resolve()
    assert files.config is None


def test_lenient_read_defaults(tmp_path):
    files = stopping.read_stack_files_leniently(write_config(tmp_path / "dev-config.yaml", TYPO))

    assert files is not None
    assert files.state_dir == tmp_path / ".local"
    assert files.host == "127.0.0.1"


@pytest.mark.parametrize(
    "text",
    ["servers: [unclosed\n", "- a list\n", "state_dir: 5\n", "root: ''\n"],
    ids=["yaml_error", "not_mapping", "state_dir_not_string", "empty_root"],
)
def test_lenient_read_rejects(tmp_path, text):
    path = tmp_path / "dev-config.yaml"
    path.write_text(text)

    assert stopping.read_stack_files_leniently(path) is None


def test_stop_invalid_config_without_pidfiles(tmp_path):
    path = write_config(tmp_path / "dev-config.yaml", TYPO)

    with pytest.raises(ConfigError, match="gatway"):
        stopping.stop_config_file(path)


def test_stop_unreadable_config_raises(tmp_path):
    path = tmp_path / "dev-config.yaml"
    path.write_text("servers: [unclosed\n")
    (tmp_path / ".local" / "pids").mkdir(parents=True)

    with pytest.raises(ConfigError):
        stopping.stop_config_file(path)


def test_stop_invalid_config_uses_pidfiles(tmp_path, sleeper, capsys):
    path = write_config(tmp_path / "dev-config.yaml", {"state_dir": "state", **TYPO})
    pids_dir = tmp_path / "state" / "pids"
    record = pidfiles.record_for_pid("broker-0", sleeper.pid, config_path=str(path), role=ROLE_MODULE_SERVER)
    pidfiles.write_record(pids_dir, record)

    assert stopping.stop_config_file(path, timeout_s=1) is True

    assert sleeper.wait(5) == -15
    assert pidfiles.read_records(pids_dir) == {}
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"devenv: {path} is invalid (devenv check {path} lists the errors); "
        f"stopping what the PID files in {pids_dir} record"
    ]
    assert f"stopped broker-0 (pid {sleeper.pid})" in captured.out


def start_error(config_path: Path) -> str:
    with pytest.raises(DevenvError) as error:
        lifecycle.start(load_config(config_path))
    return str(error.value)


def listen(port: int) -> socket.socket:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind((HOST, port))
    server.listen()
    return server


def test_busy_port_message_counts_processes(tmp_path, free_port_block):
    ports = free_port_block(3)
    path = write_config(tmp_path / "dev-config.yaml", {"state_dir": "state", **server_settings(ports)})
    own = [listen(ports[1])]
    other = None
    try:
        one_port = start_error(path)
        own.append(listen(ports[0]))
        two_ports_one_process = start_error(path)
        # The other process starts listening only now, so the first two messages name one process.
        other = subprocess.Popen(
            [sys.executable, "-c", (
                "import socket, sys, time\n"
                "server = socket.socket()\n"
                f"server.bind(({HOST!r}, {ports[2]}))\n"
                "server.listen()\n"
                "print('listening', flush=True)\n"
                "time.sleep(60)\n"
            )],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert other.stdout.readline().strip() == "listening"
        two_processes = start_error(path)
    finally:
        for server in own:
            server.close()
        if other is not None:
            other.kill()
            other.wait()

    assert "stop that process or change the ports" in one_port
    assert "stop that process or change the ports" in two_ports_one_process
    assert f"is in use by pid {other.pid}" in two_processes
    assert "stop those processes or change the ports" in two_processes
    assert psutil.Process().name() in two_processes


def test_check_warns_about_missing_module_folder(tmp_path):
    (tmp_path / "backend/src/trading_api/modules/broker").mkdir(parents=True)
    config_path = write_config(
        tmp_path / "dev-config.yaml",
        {"servers": {"broker": {"port": 18301, "modules": ["brokr"]}, "core": {"port": 18302}}, "gateway": {"port": 18300}},
    )

    result = subprocess.run(
        [sys.executable, "-m", "devenv", "check", str(config_path)], capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    folder = tmp_path / "backend/src/trading_api/modules/brokr"
    assert result.stderr == (
        f"devenv: warning: {config_path}: servers.broker.modules: module 'brokr' has no source folder {folder} "
        "(watch.module_path); check the module name\n"
    )
