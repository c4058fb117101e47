"""Start, stop and restart the stack: the gateway (nginx) and every uvicorn instance.

`start` runs the supervisor (devenv.processes) either in a detached process
of its own session (`python -m devenv supervise CONFIG`) or in the foreground.
Both write PID files under `state_dir/pids/`, so `stop` and `status` work from
any shell, also after the manager was killed.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import click
import yaml

from devenv import health, pidfiles, ports, render
from devenv.config import DEFAULT_CONFIG_PATH, DevConfig, load_config
from devenv.errors import ConfigError, DevenvError
from devenv.logs import LogWriter, LogWriterHandler, tail_lines
from devenv.nginx import find_nginx
from devenv.pidfiles import (
    MANAGER_NAME,
    ROLE_CORE_SERVER,
    ROLE_GATEWAY,
    ROLE_MODULE_SERVER,
    PidRecord,
    ProcessState,
)
from devenv.processes import (
    KILL_CONFIRM_S,
    KILL_WAIT_S,
    ServerProcessMonitor,
    Supervisor,
    describe_exit,
    read_procfile,
    terminate_groups,
)

logger = logging.getLogger(__name__)

GATEWAY_NAME = "nginx"
START_TIMEOUT_S = 30.0
PORT_RELEASE_TIMEOUT_S = 5.0
MANAGER_POLL_INTERVAL_S = 0.2
# How often the manager looks for reloaders that lost their server process. Each check scans the process table.
SERVER_PROCESS_CHECK_INTERVAL_S = 1.0
# The signals that make the manager stop every process in order. SIGHUP comes
# when the terminal of a foreground start closes.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# Gateway, module servers, core server.
STOP_STAGE_COUNT = 3
# Extra time `stop` gives the manager beyond its own stop stages before it kills it.
MANAGER_STOP_MARGIN_S = 2.0
LOG_TAIL_LINES = 20
LOCK_FILE_NAME = "start.lock"
MANAGER_LOG_NAME = f"{MANAGER_NAME}.log"


def echo(message: str) -> None:
    click.echo(message)


def warn(message: str) -> None:
    click.echo(f"devenv: {message}", err=True)


# The stack as the config describes it.


def process_ports(config: DevConfig) -> dict[str, int]:
    """Map each process name to its port: the gateway first, then every instance in config order."""
    ports_by_name = {GATEWAY_NAME: config.gateway.port}
    ports_by_name.update({instance.name: instance.port for instance in config.instances()})
    return ports_by_name


def process_roles(config: DevConfig) -> dict[str, str]:
    """Map each process name to its role (a pidfiles.ROLE_* name), in the order of `process_ports`."""
    roles = {GATEWAY_NAME: ROLE_GATEWAY}
    for instance in config.instances():
        roles[instance.name] = ROLE_CORE_SERVER if instance.server == config.core_server else ROLE_MODULE_SERVER
    return roles


def stop_stages(roles: dict[str, str]) -> list[list[str]]:
    """Group process names by role in stop order: gateway, module servers, core server last.

    A name without a known role stops with the module servers.
    """
    gateway = [name for name, role in roles.items() if role == ROLE_GATEWAY]
    core = [name for name, role in roles.items() if role == ROLE_CORE_SERVER]
    modules = [name for name in roles if name not in gateway and name not in core and name != MANAGER_NAME]
    return [gateway, modules, core]


def recorded_roles(records: dict[str, PidRecord], config: DevConfig | None = None) -> dict[str, str]:
    """Map each recorded process name to the role in its record.

    Records written before roles were recorded take the role from `config`, when given.
    """
    config_roles = process_roles(config) if config is not None else {GATEWAY_NAME: ROLE_GATEWAY}
    return {name: record.role or config_roles.get(name, "") for name, record in records.items()}


def recorded_config_path(records: dict[str, PidRecord]) -> Path | None:
    """Return the config file the recorded processes were started with: the manager's, else any process's."""
    manager = records.get(MANAGER_NAME)
    candidates = [manager] if manager is not None else []
    candidates += [record for name, record in records.items() if name != MANAGER_NAME]
    for record in candidates:
        if record.config_path:
            return Path(record.config_path)
    return None


def http_url(host: str, port: int, path: str = "") -> str:
    """Return an http URL, with an IPv6 host in brackets."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}{path}"


def instance_health_urls(config: DevConfig) -> dict[str, str]:
    """Map each instance name to its own health URL."""
    return {
        instance.name: http_url(config.host, instance.port, f"{config.api_base_url}/health")
        for instance in config.instances()
    }


def gateway_routes(config: DevConfig) -> dict[str, str]:
    """Map each gateway health route to the server behind it: core's, then one per module."""
    routes = {f"{config.api_base_url}/health": config.core_server}
    for module, server in config.module_servers().items():
        routes[f"{config.api_base_url}/{module}/health"] = server
    return routes


def gateway_url(config: DevConfig) -> str:
    return http_url(config.host, config.gateway.port)


# Start.


@dataclass(frozen=True)
class StartupFailure:
    """A failed start: its reason and the processes whose last log lines explain it."""

    reason: str
    log_names: tuple[str, ...]


class StartInterrupted(DevenvError):
    """A start that a signal interrupted. The exit status is 128 + the signal number.

    The message says that every process the start had started was stopped, so
    raise it only once they are, or from a try block whose finally stops them.
    """

    def __init__(self, signum: int) -> None:
        name = signal.Signals(signum).name
        described = f"{name} (Ctrl+C)" if signum == signal.SIGINT else name
        super().__init__(f"start was interrupted by {described}; stopped every process that had started")
        self.exit_code = 128 + signum


class StartLock:
    """An exclusive fcntl lock on `state_dir/start.lock`, so two starts never launch together.

    `config_option` follows `devenv status` and `devenv stop` in the message of a held lock.
    """

    def __init__(self, state_dir: Path, config_option: str = "") -> None:
        self.path = state_dir / LOCK_FILE_NAME
        self.config_option = config_option
        self._descriptor: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise DevenvError naming the start that holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(descriptor, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(descriptor)
            raise DevenvError(
                f"another devenv start (pid {holder}) is in progress for {self.path.parent}; "
                f"wait for it to finish, then use devenv status{self.config_option} or devenv stop{self.config_option}"
            ) from None
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()}\n".encode("ascii"))
        self._descriptor = descriptor

    def release(self) -> None:
        """Release the lock. Calling it again does nothing."""
        if self._descriptor is None:
            return
        fcntl.flock(self._descriptor, fcntl.LOCK_UN)
        os.close(self._descriptor)
        self._descriptor = None


def start(config: DevConfig, foreground: bool = False, wait: bool = True, timeout_s: float = START_TIMEOUT_S) -> int:
    """Start the gateway and every instance, and return the exit status.

    Detached (the default), returns once every health check passes, or at once
    with `wait=False`. In the foreground, runs until SIGINT, SIGTERM or SIGHUP
    and then stops everything. On a failed start, prints the failing process's
    last log lines, stops what started and raises DevenvError. On an
    interrupted start, stops what started and raises StartInterrupted.
    """
    lock = StartLock(config.state_dir, _config_option(config))
    lock.acquire()
    try:
        _reject_if_running(config)
        _check_ports_free(config)
        prepared = render.prepare(config)
        run_pre_start_hooks(config)
        if foreground:
            return _run_foreground(config, prepared.nginx_binary, lock, wait, timeout_s)
        return _start_detached(config, wait, timeout_s)
    finally:
        lock.release()


def run_pre_start_hooks(config: DevConfig) -> None:
    """Run each `hooks.pre_start` command through the shell in the root directory.

    The directory of the Python that runs devenv comes first on PATH, so a hook
    that says `python` uses the same virtual environment as devenv.
    """
    search_path = os.pathsep.join(filter(None, [os.path.dirname(sys.executable), os.environ.get("PATH")]))
    env = {**os.environ, "PATH": search_path}
    for command in config.hooks.pre_start:
        echo(f"running pre_start hook: {command}")
        result = subprocess.run(command, shell=True, cwd=config.root, env=env)
        if result.returncode != 0:
            raise DevenvError(
                f"pre_start hook `{command}` failed with exit status {result.returncode} (run in {config.root}); "
                f"fix it or remove it from hooks.pre_start in {config.config_path}; nothing was started"
            )


def _reject_if_running(config: DevConfig) -> None:
    records = pidfiles.read_records(config.pids_dir)
    manager = records.pop(MANAGER_NAME, None)
    option = _config_option(config)
    if manager is not None and pidfiles.inspect_record(manager) is ProcessState.RUNNING:
        raise DevenvError(
            f"already running for {config.state_dir}: manager pid {manager.pid} since "
            f"{manager.started_at}, config {manager.config_path}; run devenv stop{option} or devenv restart{option} first"
        )
    if manager is not None:
        _remove_stale_record(config.pids_dir, manager)

    live = []
    for record in records.values():
        state = pidfiles.inspect_record(record)
        if state in (ProcessState.RUNNING, ProcessState.GROUP_LEFT):
            live.append(f"{record.name} (pid {record.pid})")
        else:
            _remove_stale_record(config.pids_dir, record, state)
    if live:
        raise DevenvError(
            f"processes from an earlier start still run without their manager: {', '.join(live)}; "
            f"run devenv stop{option} to stop them"
        )


def _remove_stale_record(pids_dir: Path, record: PidRecord, state: ProcessState | None = None) -> None:
    state = state or pidfiles.inspect_record(record)
    if state is ProcessState.REUSED:
        warn(
            f"the pidfile of {record.name} names pid {record.pid}, which now belongs to another process; "
            "removed the stale pidfile without signalling that process"
        )
    elif record.exit_code is None:
        warn(f"removed the stale pidfile of {record.name} (pid {record.pid} is gone)")
    pidfiles.remove_record(pids_dir, record.name)


def _check_ports_free(config: DevConfig) -> None:
    names_by_port = {port: name for name, port in process_ports(config).items()}
    try:
        busy = ports.find_busy_ports(config.host, list(names_by_port))
    except socket.gaierror as error:
        raise DevenvError(
            f"host {config.host!r} in {config.config_path} cannot be resolved ({error.strerror}); "
            "set host to an address such as 127.0.0.1"
        ) from None
    if not busy:
        return
    problems = [
        f"port {holder.port} ({names_by_port[holder.port]}) is in use by {holder.describe()}" for holder in busy
    ]
    raise DevenvError(
        f"cannot start: {'; '.join(problems)}; stop {_those_processes(busy)} or change the ports in "
        f"{config.config_path}; nothing was started"
    )


def _those_processes(holders: list[ports.PortHolder]) -> str:
    """Return "that process" or "those processes", counting a pid that listens on several ports once."""
    # A hidden holder (pid None) may be any process, so each one counts.
    distinct = {holder.pid if holder.pid is not None else ("hidden", holder.port) for holder in holders}
    return "that process" if len(distinct) == 1 else "those processes"


def _start_detached(config: DevConfig, wait: bool, timeout_s: float) -> int:
    manager = _spawn_manager(config)
    echo(f"started the manager (pid {manager.pid}); logs in {config.logs_dir}")
    if not wait:
        echo(
            f"not waiting for health checks; run devenv status{_config_option(config)} "
            "to see when every process is healthy"
        )
        return 0

    try:
        failure = wait_for_startup(config, timeout_s, manager_alive=lambda: manager.poll() is None)
    except KeyboardInterrupt:
        warn("interrupted; stopping every process that started")
        stop(config)
        raise StartInterrupted(signal.SIGINT) from None
    if failure is not None:
        _fail_start(config, failure, lambda: stop(config))
    print_summary(config)
    return 0


def _spawn_manager(config: DevConfig) -> subprocess.Popen:
    config.logs_dir.mkdir(parents=True, exist_ok=True)
    with open(config.logs_dir / MANAGER_LOG_NAME, "ab") as manager_log:
        manager = subprocess.Popen(
            [sys.executable, "-m", "devenv", "supervise", str(config.config_path)],
            cwd=config.root,
            stdin=subprocess.DEVNULL,
            stdout=manager_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    record = pidfiles.record_for_pid(MANAGER_NAME, manager.pid, config_path=str(config.config_path))
    pidfiles.write_record(config.pids_dir, record)
    return manager


def wait_for_startup(
    config: DevConfig,
    timeout_s: float,
    manager_alive: Callable[[], bool],
    interrupted: Callable[[], bool] = lambda: False,
) -> StartupFailure | None:
    """Wait until every instance, then every gateway route, passes its health check.

    Returns None on success, or the failure: a process that exited, a uvicorn
    reloader whose server process exited, the manager exiting, an
    interruption, or the timeout.
    """
    deadline = time.monotonic() + timeout_s
    server_monitor = ServerProcessMonitor()

    def find_failure() -> StartupFailure | None:
        if not manager_alive():
            return StartupFailure("the manager exited during startup", (MANAGER_NAME,))
        records = pidfiles.read_records(config.pids_dir)
        exited = {name: record.exit_code for name, record in records.items() if record.exit_code is not None}
        if exited:
            described = ", ".join(f"{name} {describe_exit(code)}" for name, code in exited.items())
            return StartupFailure(f"{described} during startup", tuple(exited))
        reloaders = {name: record.pid for name, record in records.items() if record.reload}
        lost = sorted(server_monitor.check(reloaders))
        if lost:
            return StartupFailure(
                f"no server process in {', '.join(lost)}: uvicorn's reloader runs, "
                "but the server process it started exited during startup",
                tuple(lost),
            )
        if interrupted():
            return StartupFailure("startup was interrupted", ())
        return None

    instance_urls = instance_health_urls(config)
    results = health.wait_until_healthy(
        list(instance_urls.values()), deadline - time.monotonic(), lambda: find_failure() is not None
    )
    failure = find_failure()
    if failure is not None:
        return failure
    unhealthy = [name for name, url in instance_urls.items() if not results[url].healthy]
    if unhealthy:
        details = "; ".join(f"{name}: {results[instance_urls[name]].describe()}" for name in unhealthy)
        return StartupFailure(f"health checks timed out after {timeout_s:g} s ({details})", tuple(unhealthy))

    route_urls = {route: gateway_url(config) + route for route in gateway_routes(config)}
    results = health.wait_until_healthy(
        list(route_urls.values()), max(deadline - time.monotonic(), 0.0), lambda: find_failure() is not None
    )
    failure = find_failure()
    if failure is not None:
        return failure
    unhealthy_routes = [route for route, url in route_urls.items() if not results[url].healthy]
    if unhealthy_routes:
        details = "; ".join(f"{route}: {results[route_urls[route]].describe()}" for route in unhealthy_routes)
        return StartupFailure(f"gateway health checks timed out after {timeout_s:g} s ({details})", (GATEWAY_NAME,))
    return None


def _fail_start(config: DevConfig, failure: StartupFailure, stop_everything: Callable[[], None]) -> None:
    for name in failure.log_names:
        path = config.logs_dir / f"{name}.log"
        lines = tail_lines(path, LOG_TAIL_LINES)
        warn(f"last {len(lines)} lines of {path}:")
        for line in lines:
            click.echo(f"    {line}", err=True)
    warn("stopping every process that started")
    stop_everything()
    raise DevenvError(
        f"start failed: {failure.reason}; fix the cause shown above and run devenv start{_config_option(config)} again"
    )


def print_summary(config: DevConfig) -> None:
    """Print each process's pid and port, the gateway URL and where the logs are."""
    records = pidfiles.read_records(config.pids_dir)
    manager = records.get(MANAGER_NAME)
    manager_pid = manager.pid if manager else "?"
    echo(f"devenv is running (manager pid {manager_pid}, config {config.config_path})")
    for name, port in process_ports(config).items():
        record = records.get(name)
        pid = str(record.pid) if record else "?"
        echo(f"  {name:<20} pid {pid:<8} port {port}")
    echo(f"gateway: {gateway_url(config)}  (API docs: {gateway_url(config)}/docs)")
    echo(f"logs: devenv logs{_config_option(config, '--config ')} -f; stop: devenv stop{_config_option(config)}")


def _config_option(config: DevConfig, flag: str = "") -> str:
    """Return ` [FLAG]PATH` for hints that must name a config other than the default one."""
    if config.config_path == DEFAULT_CONFIG_PATH.resolve():
        return ""
    return f" {flag}{shlex.quote(str(config.config_path))}"


# The supervisor, detached or in the foreground.


def child_environment() -> dict[str, str]:
    """Return the environment of every supervised process: devenv's, unbuffered."""
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def build_supervisor(config: DevConfig, nginx_binary: Path, writer: LogWriter, printer_output=None) -> Supervisor:
    """Build a supervisor for the config's Procfile, rendered in memory.

    The Procfile at the root is shared by every config with that root, so the
    supervisor renders its own copy instead of reading a file another start may
    have rewritten.
    """
    procfile_text = render.render_procfile(config, nginx_binary)
    roles = process_roles(config)
    reloaded = {instance.name for instance in config.instances() if config.servers[instance.server].reload}
    specs = [
        replace(spec, role=roles.get(spec.name, ""), reload=spec.name in reloaded)
        for spec in read_procfile(procfile_text, process_ports(config))
    ]
    return Supervisor(
        specs,
        cwd=config.root,
        env=child_environment(),
        log_writer=writer,
        pids_dir=config.pids_dir,
        config_path=str(config.config_path),
        printer_output=printer_output,
    )


def supervise(config: DevConfig) -> int:
    """Run the supervisor of a detached start until SIGTERM, SIGINT or SIGHUP, then stop in order."""
    writer = LogWriter(config.logs_dir)
    handler = _attach_manager_log(writer)
    try:
        supervisor = build_supervisor(config, find_nginx(config), writer)
    except BaseException:
        _detach_manager_log(handler, writer)
        raise
    stop_request = StopRequest()
    stop_request.install(STOP_SIGNALS)
    try:
        supervisor.start_all()
        _run_until_stopped(supervisor, stop_request)
    finally:
        supervisor.stop(stop_stages(process_roles(config)))
        _remove_own_manager_record(config)
        stop_request.restore()
        _detach_manager_log(handler, writer)
    return 0


def _run_foreground(config: DevConfig, nginx_binary: Path, lock: StartLock, wait: bool, timeout_s: float) -> int:
    writer = LogWriter(config.logs_dir)
    supervisor = build_supervisor(config, nginx_binary, writer, printer_output=sys.stdout)
    handler = _attach_manager_log(writer, echo_line=supervisor.print_line)
    stop_request = StopRequest()
    stop_request.install(STOP_SIGNALS)
    pidfiles.write_record(
        config.pids_dir, pidfiles.record_for_pid(MANAGER_NAME, os.getpid(), config_path=str(config.config_path))
    )
    stopped_ports = list(process_ports(config).values())
    stages = stop_stages(process_roles(config))

    try:
        supervisor.start_all()
        if wait:
            failure = wait_for_startup(config, timeout_s, manager_alive=lambda: True, interrupted=stop_request.is_set)
            if stop_request.is_set():
                _discard_output_after_hangup(stop_request)
                logger.info("received %s during startup; stopping every process", stop_request.signal_name)
                # The finally block below stops every process before main() prints this error.
                raise StartInterrupted(stop_request.signum)
            if failure is not None:
                _fail_start(config, failure, lambda: supervisor.stop(stages))
            print_summary(config)

        lock.release()
        echo("press Ctrl+C to stop")
        _run_until_stopped(supervisor, stop_request)
    finally:
        _discard_output_after_hangup(stop_request)
        supervisor.stop(stages)
        _remove_own_manager_record(config)
        stop_request.restore()
        _detach_manager_log(handler, writer)
    _wait_for_port_release(config.host, stopped_ports)
    echo("stopped every process")
    return 0


def _run_until_stopped(supervisor: Supervisor, stop_request: StopRequest) -> None:
    next_server_check = time.monotonic()
    while not stop_request.event.wait(MANAGER_POLL_INTERVAL_S):
        if supervisor.any_exit.is_set() and not supervisor.running_names():
            logger.error("every process has exited; the manager stops")
            return
        if time.monotonic() >= next_server_check:
            supervisor.check_server_processes()
            next_server_check = time.monotonic() + SERVER_PROCESS_CHECK_INTERVAL_S
    logger.info("received %s; stopping every process", stop_request.signal_name)


def _discard_output_after_hangup(stop_request: StopRequest) -> None:
    """Point stdout and stderr at /dev/null after SIGHUP, because the terminal is gone and writes to it fail.

    The manager's lines still reach the log files.
    """
    if stop_request.signum != signal.SIGHUP:
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
        os.dup2(devnull, sys.stderr.fileno())
    finally:
        os.close(devnull)


def _attach_manager_log(writer: LogWriter, echo_line: Callable[[str, str], None] | None = None) -> logging.Handler:
    handler = LogWriterHandler(writer, MANAGER_NAME, echo_line)
    handler.setFormatter(logging.Formatter("%(message)s"))
    package_logger = logging.getLogger("devenv")
    package_logger.addHandler(handler)
    package_logger.setLevel(logging.INFO)
    return handler


def _detach_manager_log(handler: logging.Handler, writer: LogWriter) -> None:
    logging.getLogger("devenv").removeHandler(handler)
    writer.close()


class StopRequest:
    """Request to stop, set by SIGINT, SIGTERM or SIGHUP and acted on by the manager's main loop.

    The signal handler only records the signal, because logging from it could
    deadlock on a lock that the interrupted main thread has taken.
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None
        self.signal_name: str | None = None
        self._previous: dict[int, object] = {}

    def install(self, signums: tuple[signal.Signals, ...]) -> None:
        """Handle these signals until `restore()`."""
        for signum in signums:
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        """Put the previous handlers back."""
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def is_set(self) -> bool:
        return self.event.is_set()

    def _handle(self, signum: int, _frame) -> None:
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        self.event.set()


def _remove_own_manager_record(config: DevConfig) -> None:
    # The manager removes its own record as its last step, just before it exits,
    # so that a clean stop leaves no stale pidfile to report at the next start.
    record = pidfiles.read_record(pidfiles.record_path(config.pids_dir, MANAGER_NAME))
    if record is not None and record.pid == os.getpid():
        pidfiles.remove_record(config.pids_dir, MANAGER_NAME)


# Stop.


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
    live_states = (ProcessState.RUNNING, ProcessState.GROUP_LEFT)
    ports_to_free = [
        record.port
        for record in records.values()
        if record.port is not None and pidfiles.inspect_record(record) in live_states
    ]
    anything_ran = False

    if manager is not None:
        anything_ran |= _stop_manager(files.pids_dir, manager, timeout_s)

    records = pidfiles.read_records(files.pids_dir)
    records.pop(MANAGER_NAME, None)
    for stage in stop_stages(recorded_roles(records, files.config)):
        anything_ran |= _stop_stage(files.pids_dir, [records[name] for name in stage], timeout_s)

    _wait_for_port_release(files.host, ports_to_free)
    if anything_ran:
        echo(f"stopped every process of {running_config or files.config_path}; their ports are free")
    else:
        echo(f"devenv is not running (no live process recorded in {files.pids_dir})")
    return anything_ran


def _stop_manager(pids_dir: Path, manager: PidRecord, timeout_s: float) -> bool:
    state = pidfiles.inspect_record(manager)
    if state is not ProcessState.RUNNING:
        _remove_stale_record(pids_dir, manager, state)
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
        if state in (ProcessState.RUNNING, ProcessState.GROUP_LEFT):
            groups[record.name] = record.pgid
        else:
            _remove_stale_record(pids_dir, record, state)
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


def _wait_for_port_release(host: str, ports_to_free: list[int]) -> None:
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
        f"stop {_those_processes(holders)} before the next start"
    )


# Restart.


def restart(config: DevConfig, timeout_s: float = KILL_WAIT_S, foreground: bool = False,
            wait: bool = True, start_timeout_s: float = START_TIMEOUT_S) -> int:
    """Stop whatever runs, wait until its ports are free, then start."""
    stop(config, timeout_s)
    return start(config, foreground=foreground, wait=wait, timeout_s=start_timeout_s)

