"""PID files: one JSON record per supervised process and one for the manager.

A record stores the process's creation time as psutil reports it, so that a
later reader can tell the recorded process from an unrelated one that got the
same pid after it exited.
"""

from __future__ import annotations

import enum
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import psutil

MANAGER_NAME = "manager"
# A record's role decides its stop stage: the gateway first, then module servers, the core server last.
ROLE_GATEWAY = "gateway"
ROLE_MODULE_SERVER = "module_server"
ROLE_CORE_SERVER = "core_server"
# On Linux, psutil computes create_time from the boot time and the start time in
# clock ticks (usually 100 per second), so two reads for one process agree well within this.
CREATE_TIME_TOLERANCE_S = 0.05


class ProcessState(enum.Enum):
    """State of a recorded process: running, gone, group left behind, or pid reused."""

    RUNNING = "running"
    GONE = "gone"
    # The recorded pid exited, but other members of its process group still run.
    GROUP_LEFT = "group_left"
    # The pid now belongs to another process, which must never be signalled.
    REUSED = "reused"


@dataclass
class PidRecord:
    """Content of one PID file. The supervisor sets `exit_code` when the process exits on its own.

    `role` is one of the ROLE_* names, empty for the manager. `reload` is true
    for a uvicorn instance that runs under uvicorn's reloader.
    """

    name: str
    pid: int
    pgid: int
    create_time: float
    port: int | None = None
    started_at: str = ""
    config_path: str = ""
    exit_code: int | None = None
    role: str = ""
    reload: bool = False


def record_path(pids_dir: Path, name: str) -> Path:
    """Return the PID file path of a process name."""
    return pids_dir / f"{name}.json"


def record_for_pid(
    name: str, pid: int, port: int | None = None, config_path: str = "", role: str = "", reload: bool = False
) -> PidRecord:
    """Build a record for a live pid, reading its process group and creation time."""
    process = psutil.Process(pid)
    create_time = process.create_time()
    return PidRecord(
        name=name,
        pid=pid,
        pgid=os.getpgid(pid),
        create_time=create_time,
        port=port,
        started_at=_format_local_time(create_time),
        config_path=config_path,
        role=role,
        reload=reload,
    )


def write_record(pids_dir: Path, record: PidRecord) -> Path:
    """Write a record atomically, so that readers see either the old or the new file."""
    pids_dir.mkdir(parents=True, exist_ok=True)
    path = record_path(pids_dir, record.name)
    descriptor, temp_name = tempfile.mkstemp(dir=pids_dir, prefix=f".{record.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as temp_file:
            json.dump(asdict(record), temp_file, indent=2)
            temp_file.write("\n")
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return path


def read_record(path: Path) -> PidRecord | None:
    """Read a PID file; return None when it is missing or not a valid record."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return PidRecord(**data)
    except (OSError, ValueError, TypeError):
        return None


def read_records(pids_dir: Path) -> dict[str, PidRecord]:
    """Read every valid PID file in a directory, keyed by process name."""
    records: dict[str, PidRecord] = {}
    if not pids_dir.is_dir():
        return records
    for path in sorted(pids_dir.glob("*.json")):
        record = read_record(path)
        if record is not None:
            records[record.name] = record
    return records


def find_invalid_files(pids_dir: Path) -> list[Path]:
    """Return the PID files in a directory that cannot be parsed as records."""
    if not pids_dir.is_dir():
        return []
    return [path for path in sorted(pids_dir.glob("*.json")) if read_record(path) is None]


def remove_record(pids_dir: Path, name: str) -> None:
    """Delete a process's PID file if it exists."""
    record_path(pids_dir, name).unlink(missing_ok=True)


def inspect_record(record: PidRecord) -> ProcessState:
    """Return whether the recorded process still runs, has exited, or its pid was reused."""
    try:
        process = psutil.Process(record.pid)
        create_time = process.create_time()
        is_zombie = process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return ProcessState.GROUP_LEFT if group_has_members(record.pgid) else ProcessState.GONE

    if abs(create_time - record.create_time) > CREATE_TIME_TOLERANCE_S:
        return ProcessState.REUSED
    if is_zombie:
        return ProcessState.GROUP_LEFT if group_has_members(record.pgid) else ProcessState.GONE
    return ProcessState.RUNNING


def group_has_members(pgid: int) -> bool:
    """Return whether any process other than a zombie is in process group `pgid`.

    Linux and macOS do not hand out a number as a new pid while a process group
    of that number exists, so members found here belong to the recorded group.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return bool(group_member_pids(pgid))


def group_member_pids(pgid: int) -> list[int]:
    """Return the pids of the processes in process group `pgid`, zombies left out."""
    members = []
    for process in psutil.process_iter(["status"]):
        try:
            if os.getpgid(process.pid) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(process.pid)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return members


def _format_local_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="seconds")
