"""Tests of devenv.pidfiles with real child processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import psutil

from devenv import pidfiles
from devenv.pidfiles import PidRecord, ProcessState


def wait_for_group_empty(pgid: int, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while pidfiles.group_has_members(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_write_and_read_round_trip(tmp_path, sleeper):
    record = pidfiles.record_for_pid("broker-0", sleeper.pid, port=8001, config_path="/x/dev-config.yaml")
    path = pidfiles.write_record(tmp_path, record)

    assert path == tmp_path / "broker-0.json"
    assert pidfiles.read_record(path) == record
    assert record.pgid == sleeper.pid
    assert record.create_time == psutil.Process(sleeper.pid).create_time()
    assert record.started_at
    data = json.loads(path.read_text())
    for key in ("pid", "pgid", "create_time", "name", "port"):
        assert key in data


def test_write_record_leaves_no_temp_files(tmp_path):
    record = PidRecord(name="core-0", pid=123, pgid=123, create_time=1.0, port=8003)
    pidfiles.write_record(tmp_path, record)
    record.exit_code = 1
    pidfiles.write_record(tmp_path, record)

    assert sorted(path.name for path in tmp_path.iterdir()) == ["core-0.json"]
    assert pidfiles.read_record(tmp_path / "core-0.json").exit_code == 1


def test_read_records_skips_invalid_files(tmp_path):
    pidfiles.write_record(tmp_path, PidRecord(name="core-0", pid=1, pgid=1, create_time=1.0))
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "other.json").write_text(json.dumps({"unexpected": 1}))

    assert list(pidfiles.read_records(tmp_path)) == ["core-0"]
    assert pidfiles.find_invalid_files(tmp_path) == [tmp_path / "broken.json", tmp_path / "other.json"]


def test_read_records_missing_directory(tmp_path):
    assert pidfiles.read_records(tmp_path / "missing") == {}


def test_remove_record_missing_is_quiet(tmp_path):
    pidfiles.remove_record(tmp_path, "nginx")
    pidfiles.write_record(tmp_path, PidRecord(name="nginx", pid=1, pgid=1, create_time=1.0))
    pidfiles.remove_record(tmp_path, "nginx")
    assert not (tmp_path / "nginx.json").exists()


def test_inspect_running_process(sleeper):
    record = pidfiles.record_for_pid("core-0", sleeper.pid)
    assert pidfiles.inspect_record(record) is ProcessState.RUNNING


def test_inspect_exited_process(sleeper):
    record = pidfiles.record_for_pid("core-0", sleeper.pid)
    sleeper.kill()
    sleeper.wait()
    assert pidfiles.inspect_record(record) is ProcessState.GONE


def test_inspect_unreaped_zombie_is_gone(sleeper):
    record = pidfiles.record_for_pid("core-0", sleeper.pid)
    os.kill(sleeper.pid, signal.SIGKILL)
    assert wait_for_group_empty(sleeper.pid)
    assert psutil.Process(sleeper.pid).status() == psutil.STATUS_ZOMBIE
    assert pidfiles.inspect_record(record) is ProcessState.GONE


def test_inspect_reused_pid(sleeper):
    # The same pid with another creation time is what a reused pid looks like.
    record = pidfiles.record_for_pid("core-0", sleeper.pid)
    record.create_time -= 1000
    assert pidfiles.inspect_record(record) is ProcessState.REUSED


def test_inspect_group_left_behind():
    # The shell exits at once, but the `sleep` it started stays in its process group.
    shell = subprocess.Popen(["sh", "-c", "sleep 60 & sleep 0.2"], start_new_session=True)
    record = pidfiles.record_for_pid("core-0", shell.pid)
    shell.wait()
    try:
        assert pidfiles.inspect_record(record) is ProcessState.GROUP_LEFT
        assert pidfiles.group_has_members(shell.pid)
    finally:
        os.killpg(shell.pid, signal.SIGKILL)
    assert wait_for_group_empty(shell.pid)
    assert pidfiles.inspect_record(record) is ProcessState.GONE
