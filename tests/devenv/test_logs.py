"""Tests of devenv.logs: the log file format, tailing, following and the `logs` command."""

from __future__ import annotations

import io
import re
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from devenv import logs
from devenv.config import load_config
from devenv.errors import DevenvError

UNIFIED_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (.{20}) \| (.*)$")
PROCESS_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (.*)$")


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "dev-config.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "root": str(tmp_path),
                "state_dir": "state",
                "watch": {"dirs": ["."]},
                "servers": {
                    "broker": {"port": 9001, "modules": ["broker"]},
                    "datafeed": {"port": 9002, "modules": ["datafeed"], "instances": 2},
                    "core": {"port": 9010},
                },
            }
        )
    )
    return load_config(path)


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_writer_formats_unified_and_process_logs(tmp_path):
    writer = logs.LogWriter(tmp_path)
    writer.write("broker-0", "first\nsecond", datetime(2025, 1, 31, 14, 2, 3, 123456))
    writer.write("core-0", "hello")
    writer.close()

    unified = read_lines(tmp_path / logs.UNIFIED_LOG_NAME)
    assert unified[0] == "2025-01-31 14:02:03.123 broker-0             | first"
    assert unified[1].endswith("broker-0             | second")
    match = UNIFIED_LINE.match(unified[2])
    assert match is not None
    assert match.group(1) == "core-0".ljust(20)
    assert match.group(2) == "hello"
    assert read_lines(tmp_path / "broker-0.log") == ["2025-01-31 14:02:03.123 first", "2025-01-31 14:02:03.123 second"]
    assert PROCESS_LINE.match(read_lines(tmp_path / "core-0.log")[0]).group(1) == "hello"


def test_writer_strips_ansi_codes(tmp_path):
    writer = logs.LogWriter(tmp_path)
    writer.write("core-0", "\x1b[32mINFO\x1b[0m:     started \x1b]0;title\x07server \x1b[2K")
    writer.close()

    for path in tmp_path.glob("*.log"):
        text = path.read_text()
        assert "\x1b" not in text
        assert "INFO:     started server " in text


def test_writer_keeps_long_names_whole(tmp_path):
    writer = logs.LogWriter(tmp_path)
    name = "a_server_with_a_long_name-0"
    writer.write(name, "line")
    writer.close()
    assert f" {name} | line" in (tmp_path / logs.UNIFIED_LOG_NAME).read_text()


def test_writer_appends_after_truncation(tmp_path):
    writer = logs.LogWriter(tmp_path)
    writer.write("core-0", "before")
    logs.truncate_logs(tmp_path)
    writer.write("core-0", "after")
    writer.close()

    unified = read_lines(tmp_path / logs.UNIFIED_LOG_NAME)
    assert len(unified) == 1
    assert unified[0].endswith("| after")
    # Append mode writes at the new end, so no NUL bytes fill the truncated range.
    assert "\0" not in (tmp_path / "core-0.log").read_text()


def test_tail_lines_across_blocks(tmp_path):
    path = tmp_path / "big.log"
    path.write_text("".join(f"line {i:05d} {'x' * 100}\n" for i in range(2000)))
    tail = logs.tail_lines(path, 3)
    assert [line.split()[1] for line in tail] == ["01997", "01998", "01999"]
    assert len(logs.tail_lines(path, 500)) == 500
    assert logs.tail_lines(path, 0) == []
    assert logs.tail_lines(tmp_path / "missing.log", 5) == []


def test_tail_lines_without_trailing_newline(tmp_path):
    path = tmp_path / "short.log"
    path.write_text("a\nb\nc")
    assert logs.tail_lines(path, 2) == ["b", "c"]
    assert logs.tail_lines(path, 10) == ["a", "b", "c"]


def test_truncate_logs_keeps_files(tmp_path):
    (tmp_path / "a.log").write_text("text\n")
    (tmp_path / "b.log").write_text("more\n")
    (tmp_path / "keep.txt").write_text("not a log\n")

    truncated = logs.truncate_logs(tmp_path)

    assert truncated == [tmp_path / "a.log", tmp_path / "b.log"]
    assert (tmp_path / "a.log").stat().st_size == 0
    assert (tmp_path / "b.log").stat().st_size == 0
    assert (tmp_path / "keep.txt").read_text() == "not a log\n"


def test_follower_reads_only_new_complete_lines(tmp_path):
    path = tmp_path / "core-0.log"
    path.write_text("old\n")
    follower = logs.FileFollower(path)
    try:
        assert follower.read_new_lines() == []
        with open(path, "a") as log_file:
            log_file.write("new\npart")
        assert follower.read_new_lines() == ["new"]
        with open(path, "a") as log_file:
            log_file.write("ial\n")
        assert follower.read_new_lines() == ["partial"]
    finally:
        follower.close()


def test_follower_restarts_after_truncation(tmp_path):
    path = tmp_path / "core-0.log"
    path.write_text("a long line that was there before\n")
    follower = logs.FileFollower(path)
    try:
        path.write_text("")
        assert follower.read_new_lines() == []
        with open(path, "a") as log_file:
            log_file.write("fresh\n")
        assert follower.read_new_lines() == ["fresh"]
    finally:
        follower.close()


def test_follower_waits_for_missing_file_and_reopens_replaced(tmp_path):
    path = tmp_path / "core-0.log"
    follower = logs.FileFollower(path)
    try:
        assert follower.read_new_lines() == []
        path.write_text("created\n")
        assert follower.read_new_lines() == ["created"]
        replacement = tmp_path / "replacement.log"
        replacement.write_text("replaced\n")
        replacement.replace(path)
        assert follower.read_new_lines() == ["replaced"]
    finally:
        follower.close()


def test_print_logs_unified_tail(config):
    writer = logs.LogWriter(config.logs_dir)
    for i in range(5):
        writer.write("core-0", f"line {i}")
    writer.close()

    output = io.StringIO()
    logs.print_logs(config, [], lines=2, output=output)

    printed = output.getvalue().splitlines()
    assert len(printed) == 2
    assert printed[0].endswith("core-0               | line 3")
    assert printed[1].endswith("| line 4")


def test_print_logs_named_processes_merge_by_time(config):
    writer = logs.LogWriter(config.logs_dir)
    writer.write("broker-0", "b1", datetime(2025, 1, 1, 10, 0, 1))
    writer.write("datafeed-0", "d1", datetime(2025, 1, 1, 10, 0, 2))
    writer.write("datafeed-1", "d2", datetime(2025, 1, 1, 10, 0, 3))
    writer.write("broker-0", "b2", datetime(2025, 1, 1, 10, 0, 4))
    writer.write("core-0", "c1", datetime(2025, 1, 1, 10, 0, 5))
    writer.close()

    output = io.StringIO()
    logs.print_logs(config, ["broker-0", "datafeed"], lines=10, output=output)

    printed = output.getvalue().splitlines()
    assert [line.rsplit("| ", 1)[1] for line in printed] == ["b1", "d1", "d2", "b2"]
    assert all(UNIFIED_LINE.match(line) for line in printed)
    assert UNIFIED_LINE.match(printed[1]).group(1) == "datafeed-0".ljust(20)


def test_print_logs_unknown_name(config):
    with pytest.raises(DevenvError, match="no process or server named 'brokr'.*broker-0"):
        logs.print_logs(config, ["brokr"], output=io.StringIO())


def test_print_logs_nginx_access_log(config):
    config.logs_dir.mkdir(parents=True)
    (config.logs_dir / logs.NGINX_ACCESS_LOG_NAME).write_text('127.0.0.1 "GET /api/v1/health HTTP/1.1" 200\n')
    output = io.StringIO()
    logs.print_logs(config, [], nginx=True, output=output)
    assert output.getvalue() == '127.0.0.1 "GET /api/v1/health HTTP/1.1" 200\n'


def test_print_logs_missing_log(config):
    with pytest.raises(DevenvError, match="does not exist yet"):
        logs.print_logs(config, [], output=io.StringIO())


def test_print_logs_follow_prints_new_lines(config):
    writer = logs.LogWriter(config.logs_dir)
    writer.write("core-0", "before")
    output = io.StringIO()
    polls = []

    def should_stop() -> bool:
        polls.append(1)
        if len(polls) == 2:
            writer.write("core-0", "during")
        return len(polls) > 3

    logs.print_logs(config, ["core"], lines=5, follow=True, output=output, should_stop=should_stop)
    writer.close()

    printed = output.getvalue().splitlines()
    assert [line.rsplit("| ", 1)[1] for line in printed] == ["before", "during"]
    assert UNIFIED_LINE.match(printed[1]).group(1) == "core-0".ljust(20)


def test_clean_logs_empties_every_file(config):
    writer = logs.LogWriter(config.logs_dir)
    writer.write("core-0", "text")
    writer.close()
    (config.logs_dir / logs.NGINX_ACCESS_LOG_NAME).write_text("request\n")

    output = io.StringIO()
    cleaned = logs.clean_logs(config, output=output)

    assert len(cleaned) == 3
    assert all(path.exists() and path.stat().st_size == 0 for path in cleaned)
    assert "emptied 3 log files" in output.getvalue()
