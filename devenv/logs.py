"""Log files of the supervised processes, and the `devenv logs` command.

`backend-unified.log` contains every process's lines as
`2025-01-31 14:02:03.123 broker-0             | text`, with the name padded to
NAME_WIDTH characters. `{name}.log` contains one process's lines as
`2025-01-31 14:02:03.123 text`. ANSI escape sequences are removed before
anything is written.
"""

from __future__ import annotations

import heapq
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TextIO

from devenv.errors import DevenvError

if TYPE_CHECKING:
    from devenv.config import DevConfig

UNIFIED_LOG_NAME = "backend-unified.log"
NGINX_ACCESS_LOG_NAME = "nginx-access.log"
NAME_WIDTH = 20
DEFAULT_TAIL_LINES = 50
FOLLOW_POLL_INTERVAL_S = 0.2
TAIL_BLOCK_SIZE_BYTES = 8192

# CSI sequences (colours, cursor moves), OSC sequences (window titles, links)
# and the remaining two-byte escapes.
ANSI_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


def strip_ansi(text: str) -> str:
    """Remove ANSI escape sequences from text."""
    return ANSI_ESCAPE.sub("", text)


def format_timestamp(moment: datetime) -> str:
    """Return a local timestamp with milliseconds, the first field of every log line."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def format_unified_line(timestamp: str, name: str, text: str) -> str:
    """Return one line of the unified log, without the newline."""
    return f"{timestamp} {name.ljust(NAME_WIDTH)} | {text}"


class LogWriter:
    """Append process output to the unified log and to one file per process.

    Safe to call from several reader threads at once.
    """

    def __init__(self, logs_dir: Path) -> None:
        self.logs_dir = logs_dir
        logs_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._unified = self._open(UNIFIED_LOG_NAME)
        self._per_process: dict[str, TextIO] = {}
        self._closed = False

    def write(self, name: str, text: str, moment: datetime | None = None) -> None:
        """Write each line of `text`, without ANSI codes, as output of process `name`.

        Lines that arrive after `close()` are dropped.
        """
        timestamp = format_timestamp(moment or datetime.now())
        lines = strip_ansi(text).splitlines() or [""]
        with self._lock:
            if self._closed:
                return
            process_file = self._per_process.get(name)
            if process_file is None:
                process_file = self._per_process[name] = self._open(f"{name}.log")
            for line in lines:
                self._unified.write(format_unified_line(timestamp, name, line) + "\n")
                process_file.write(f"{timestamp} {line}\n")
            self._unified.flush()
            process_file.flush()

    def close(self) -> None:
        """Close every file."""
        with self._lock:
            self._closed = True
            for log_file in [self._unified, *self._per_process.values()]:
                log_file.close()
            self._per_process.clear()

    def _open(self, file_name: str) -> TextIO:
        # Append mode keeps writes at the end even after `devenv logs --clean` truncates the file.
        return open(self.logs_dir / file_name, "a", encoding="utf-8", errors="replace")


class LogWriterHandler(logging.Handler):
    """Logging handler that writes records into the log files under a process name.

    `echo(name, text)`, when given, also receives each formatted record, for
    printing it in the foreground.
    """

    def __init__(self, writer: LogWriter, name: str, echo: Callable[[str, str], None] | None = None):
        super().__init__()
        self.writer = writer
        self.process_name = name
        self.echo = echo

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            self.writer.write(self.process_name, text, datetime.fromtimestamp(record.created))
            if self.echo is not None:
                self.echo(self.process_name, text)
        except Exception:
            self.handleError(record)


def tail_lines(path: Path, count: int, end_offset: int | None = None) -> list[str]:
    """Return the last `count` lines of a file, without newlines; [] when it is missing.

    With `end_offset`, only the bytes before that offset are considered.
    """
    if count <= 0:
        return []
    try:
        with open(path, "rb") as log_file:
            position = log_file.seek(0, os.SEEK_END) if end_offset is None else end_offset
            data = b""
            while position > 0 and data.count(b"\n") <= count:
                step = min(TAIL_BLOCK_SIZE_BYTES, position)
                position -= step
                log_file.seek(position)
                data = log_file.read(step) + data
    except FileNotFoundError:
        return []
    lines = data.decode("utf-8", "replace").splitlines()
    return lines[-count:]


def truncate_logs(logs_dir: Path) -> list[Path]:
    """Truncate every `*.log` file in a directory, keeping the files; return them."""
    if not logs_dir.is_dir():
        return []
    paths = sorted(logs_dir.glob("*.log"))
    for path in paths:
        with open(path, "r+b") as log_file:
            log_file.truncate(0)
    return paths


def add_name(name: str, line: str) -> str:
    """Turn a line of a per-process log into the unified format by inserting the name."""
    parts = line.split(" ", 2)
    if len(parts) < 3:
        return format_unified_line("", name, line).lstrip()
    date, clock, text = parts
    return format_unified_line(f"{date} {clock}", name, text)


class FileFollower:
    """Read the lines appended to a file since the last call, like `tail -f`.

    Reading starts at the end the file had when the follower was created. A
    file that shrank (truncated by `devenv logs --clean`) is read again from its
    start, and a file replaced by a new one is reopened and read from its start.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._partial = b""
        self._file: BinaryIO | None = None
        self._inode: int | None = None
        self.start_offset = 0
        if self._open():
            self.start_offset = self._file.seek(0, os.SEEK_END)

    def read_new_lines(self) -> list[str]:
        """Return the complete lines written since the previous call."""
        try:
            status = os.stat(self.path)
        except FileNotFoundError:
            return []
        if self._file is None or status.st_ino != self._inode:
            self.close()
            if not self._open():
                return []
        elif status.st_size < self._file.tell():
            self._file.seek(0)
            self._partial = b""

        data = self._partial + self._file.read()
        *complete, self._partial = data.split(b"\n")
        return [line.decode("utf-8", "replace") for line in complete]

    def close(self) -> None:
        """Close the file."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def _open(self) -> bool:
        try:
            self._file = open(self.path, "rb")
        except FileNotFoundError:
            return False
        self._inode = os.fstat(self._file.fileno()).st_ino
        self._partial = b""
        return True


def follow_files(
    followers: dict[str, FileFollower],
    emit: Callable[[str, str], None],
    should_stop: Callable[[], bool] = lambda: False,
    poll_interval_s: float = FOLLOW_POLL_INTERVAL_S,
) -> None:
    """Pass each new line of each file to `emit(key, line)` until `should_stop()` is true."""
    try:
        while not should_stop():
            for key, follower in followers.items():
                for line in follower.read_new_lines():
                    emit(key, line)
            time.sleep(poll_interval_s)
    finally:
        for follower in followers.values():
            follower.close()


def merge_tails(followers: dict[str, FileFollower], count: int) -> list[str]:
    """Return the last `count` lines across several per-process logs, in timestamp order.

    Each file is read up to where its follower starts, so following repeats no line.
    """
    tails: list[Iterable[str]] = [
        [add_name(name, line) for line in tail_lines(follower.path, count, follower.start_offset)]
        for name, follower in followers.items()
    ]
    # Each line starts with a sortable timestamp, so merging by text orders them by time.
    return list(heapq.merge(*tails))[-count:]


def print_logs(
    config: DevConfig,
    names: list[str],
    lines: int = DEFAULT_TAIL_LINES,
    follow: bool = False,
    nginx: bool = False,
    output: TextIO | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> None:
    """Print the last lines of the unified log, of named processes or of the nginx access log.

    `names` are process names (`broker-0`) or server names (`broker`, meaning
    every instance). With `follow`, keep printing new lines until interrupted.
    """
    output = output or sys.stdout
    logs_dir: Path = config.logs_dir

    def emit(_key: str, line: str) -> None:
        print(line, file=output, flush=True)

    if nginx:
        if names:
            raise DevenvError("--nginx takes no process names; drop the names or the flag")
        _print_single(logs_dir / NGINX_ACCESS_LOG_NAME, lines, follow, emit, should_stop)
        return
    if not names:
        _print_single(logs_dir / UNIFIED_LOG_NAME, lines, follow, emit, should_stop)
        return

    followers = {
        name: FileFollower(logs_dir / f"{name}.log") for name in resolve_process_names(config, names)
    }
    for line in merge_tails(followers, lines):
        emit("", line)
    if follow:
        follow_files(followers, lambda name, line: emit(name, add_name(name, line)), should_stop)
    else:
        for follower in followers.values():
            follower.close()


def resolve_process_names(config: DevConfig, names: list[str]) -> list[str]:
    """Expand server names to their instances and check every name against the config."""
    instances = config.instances()
    known = ["nginx", "manager", *(instance.name for instance in instances)]
    resolved: list[str] = []
    for name in names:
        matches = [instance.name for instance in instances if instance.server == name]
        if name in known:
            matches = [name]
        if not matches:
            raise DevenvError(
                f"no process or server named '{name}' in {config.config_path}; "
                f"choose from {', '.join(known)}"
            )
        resolved.extend(match for match in matches if match not in resolved)
    return resolved


def clean_logs(config: DevConfig, output: TextIO | None = None) -> list[Path]:
    """Truncate every log file of a config and print how many were emptied."""
    paths = truncate_logs(config.logs_dir)
    print(f"emptied {len(paths)} log files in {config.logs_dir}", file=output or sys.stdout)
    return paths


def _print_single(
    path: Path,
    lines: int,
    follow: bool,
    emit: Callable[[str, str], None],
    should_stop: Callable[[], bool],
) -> None:
    if not follow and not path.exists():
        raise DevenvError(f"{path} does not exist yet; start the stack with devenv start")
    follower = FileFollower(path)
    for line in tail_lines(path, lines, follower.start_offset):
        emit("", line)
    if follow:
        follow_files({"": follower}, emit, should_stop)
    else:
        follower.close()
