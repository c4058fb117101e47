"""`devenv stop`: stop the manager, then every recorded process in order, and wait until their ports are free.

Everything `stop` needs is in the PID files under `state_dir/pids/`, so it
works from any shell, also after the manager was killed or the config became invalid.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from devenv import pidfiles, ports
from devenv.config import DevConfig, load_config
from devenv.console import echo, those_processes, warn
from devenv.errors import ConfigError, DevenvError
from devenv.manager import MANAGER_POLL_INTERVAL_S
from devenv.pidfiles import MANAGER_NAME, PidRecord, ProcessState
from devenv.processes import KILL_CONFIRM_S, KILL_WAIT_S, terminate_groups
from devenv.topology import recorded_config_path, recorded_roles, stop_stages

PORT_RELEASE_TIMEOUT_S = 5.0
# Gateway, module servers, core server.
STOP_STAGE_COUNT = 3
# Extra time `stop` gives the manager beyond its own stop stages before it kills it.
MANAGER_STOP_MARGIN_S = 2.0
# A process that runs, or one that exited while its process group still runs. Both may still use their ports and get signals.
LIVE_STATES = (ProcessState.RUNNING, ProcessState.GROUP_LEFT)


@dataclass(frozen=True)
class StackFiles:
    """Locations of a stack's runtime files, and its config when that config is valid."""

    config_path: Path
    state_dir: Path
    host: str
    config: DevConfig | None = None

    @property
    def pids_dir(self) -> Path:
        # The same layout as DevConfig.pids_dir.
        return self.state_dir / "pids"

    @classmethod
    def from_config(cls, config: DevConfig) -> StackFiles:
        return cls(config_path=config.config_path, state_dir=config.state_dir, host=config.host, config=config)


def read_stack_files_leniently(config_path: Path) -> StackFiles | None:
    """Read only `root`, `state_dir` and `host` from a config file that may fail validation.

    Missing keys take their defaults. `root` is relative to the config file's
    directory and `state_dir` to root, as in a valid config. Returns None when
    the file cannot be read as a YAML mapping or these keys are not strings.
    """
    try:
        data = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    data = {} if data is None else data
    if not isinstance(data, dict):
        return None
    root = data.get("root", ".")
    state_dir = data.get("state_dir", str(DevConfig.model_fields["state_dir"].default))
    host = data.get("host", DevConfig.model_fields["host"].default)
    if not all(isinstance(value, str) and value for value in (root, state_dir, host)):
        return None
    config_path = config_path.resolve()
    root_dir = (config_path.parent / root).resolve()
    return StackFiles(config_path=config_path, state_dir=(root_dir / state_dir).resolve(), host=host)


def stop_config_file(config_path: Path, timeout_s: float = KILL_WAIT_S) -> bool:
    """Stop what runs for a config file; return whether anything ran.

    When the config fails validation, for example after a typo made while the
    stack runs, stops what the PID files in the state_dir it names record. Raises
    the ConfigError when not even that state_dir can be read from the file.
    """
    try:
        config = load_config(config_path)
    except ConfigError:
        files = read_stack_files_leniently(config_path)
        if files is None or not files.pids_dir.is_dir():
            raise
        warn(
            f"{config_path} is invalid (devenv check {shlex.quote(str(config_path))} lists the errors); "
            f"stopping what the PID files in {files.pids_dir} record"
        )
        return stop_recorded(files, timeout_s)
    return stop(config, timeout_s)


def stop(config: DevConfig, timeout_s: float = KILL_WAIT_S) -> bool:
    """Stop the manager and every recorded process of a config in order; return whether anything ran."""
    return stop_recorded(StackFiles.from_config(config), timeout_s)


def stop_recorded(files: StackFiles, timeout_s: float = KILL_WAIT_S) -> bool:
    """Stop the manager and every process that the PID files record; return whether anything ran.

    A live manager gets SIGTERM and stops its processes itself. Whatever is
    left afterwards, or everything when the manager is gone, is stopped from
    the PID files in the order gateway, module servers, core. Each process
    group gets SIGTERM, then SIGKILL after `timeout_s`. Returns once every
    port of a stopped process is free.
    """
    records = pidfiles.read_records(files.pids_dir)
    running_config = recorded_config_path(records)
    if running_config is not None and running_config != files.config_path:
        warn(f"running with config {running_config}, not {files.config_path}; stopping what the PID files record")
    manager = records.pop(MANAGER_NAME, None)
    ports_to_free = [
        record.port
        for record in records.values()
        if record.port is not None and pidfiles.inspect_record(record) in LIVE_STATES
    ]
    anything_ran = False

    if manager is not None:
        anything_ran |= _stop_manager(files.pids_dir, manager, timeout_s)

    records = pidfiles.read_records(files.pids_dir)
    records.pop(MANAGER_NAME, None)
    for stage in stop_stages(recorded_roles(records, files.config)):
        anything_ran |= _stop_stage(files.pids_dir, [records[name] for name in stage], timeout_s)

    wait_for_port_release(files.host, ports_to_free)
    if anything_ran:
        echo(f"stopped every process of {running_config or files.config_path}; their ports are free")
    else:
        echo(f"devenv is not running (no live process recorded in {files.pids_dir})")
    return anything_ran


def _stop_manager(pids_dir: Path, manager: PidRecord, timeout_s: float) -> bool:
    state = pidfiles.inspect_record(manager)
    if state is not ProcessState.RUNNING:
        remove_stale_record(pids_dir, manager, state)
        return False

    echo(f"stopping the manager (pid {manager.pid}); it stops its processes in order")
    try:
        os.kill(manager.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    # NOTE: the manager stops its processes with its own KILL_WAIT_S, not with `timeout_s`.
    # Only the sweep below applies `timeout_s`, to whatever the manager leaves.
    manager_wait_s = STOP_STAGE_COUNT * (max(timeout_s, KILL_WAIT_S) + KILL_CONFIRM_S) + MANAGER_STOP_MARGIN_S
    if not _wait_for_exit(manager, manager_wait_s):
        warn(f"the manager (pid {manager.pid}) still runs {manager_wait_s:g} s after SIGTERM; sending SIGKILL")
        if pidfiles.inspect_record(manager) is ProcessState.RUNNING:
            os.kill(manager.pid, signal.SIGKILL)
        _wait_for_exit(manager, KILL_CONFIRM_S)
    if pidfiles.inspect_record(manager) is not ProcessState.RUNNING:
        pidfiles.remove_record(pids_dir, MANAGER_NAME)
    return True


def _wait_for_exit(record: PidRecord, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while pidfiles.inspect_record(record) is ProcessState.RUNNING:
        if time.monotonic() >= deadline:
            return False
        time.sleep(MANAGER_POLL_INTERVAL_S / 4)
    return True


def _stop_stage(pids_dir: Path, records: list[PidRecord], timeout_s: float) -> bool:
    groups: dict[str, int] = {}
    for record in records:
        state = pidfiles.inspect_record(record)
        if state in LIVE_STATES:
            groups[record.name] = record.pgid
        else:
            remove_stale_record(pids_dir, record, state)
    if not groups:
        return False

    killed = terminate_groups(groups, timeout_s)
    by_name = {record.name: record for record in records}
    for name, pgid in groups.items():
        record = by_name[name]
        if pidfiles.group_has_members(pgid):
            warn(f"{name} (process group {pgid}) still runs after SIGKILL; its pidfile is kept")
            continue
        outcome = "killed" if name in killed else "stopped"
        echo(f"{outcome} {name} (pid {record.pid})")
        pidfiles.remove_record(pids_dir, name)
    return True


def wait_for_port_release(host: str, ports_to_free: list[int]) -> None:
    """Wait until the ports are free, and raise DevenvError naming each process still on one after PORT_RELEASE_TIMEOUT_S.

    Only warns when the host cannot be resolved.
    """
    try:
        busy = ports.wait_for_ports_free(host, ports_to_free, PORT_RELEASE_TIMEOUT_S)
    except socket.gaierror as error:
        warn(f"cannot check that the ports are free: host {host!r} cannot be resolved ({error.strerror})")
        return
    if not busy:
        return
    holders = [ports.find_port_holder(port) for port in busy]
    described = [f"port {holder.port} is in use by {holder.describe()}" for holder in holders]
    raise DevenvError(
        f"processes stopped, but {PORT_RELEASE_TIMEOUT_S:g} s later {'; '.join(described)}; "
        f"stop {those_processes(holders)} before the next start"
    )


def remove_stale_record(pids_dir: Path, record: PidRecord, state: ProcessState | None = None) -> None:
    """Remove the pidfile of a process that is gone.

    Warns unless the record has the exit status, and always when the pid now belongs to another process.
    """
    state = state or pidfiles.inspect_record(record)
    if state is ProcessState.REUSED:
        warn(
            f"the pidfile of {record.name} names pid {record.pid}, which now belongs to another process; "
            "removed the stale pidfile without signalling that process"
        )
    elif record.exit_code is None:
        warn(f"removed the stale pidfile of {record.name} (pid {record.pid} is gone)")
    pidfiles.remove_record(pids_dir, record.name)

