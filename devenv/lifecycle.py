"""Start and restart the stack: the gateway (nginx) and every uvicorn instance.

`start` takes the start lock, checks that nothing runs and every port is free,
renders the files, runs the pre_start hooks and then runs the manager
(devenv.manager) either in a detached process of its own session or in the
foreground. It waits until every health check passes and prints a summary.
`stop` lives in devenv.stopping.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click

from devenv import health, nginx, pidfiles, ports, render
from devenv.config import DevConfig
from devenv.console import config_option, echo, those_processes, warn
from devenv.errors import DevenvError
from devenv.gateway import GatewayDownMarks
from devenv.logs import LogWriter, tail_lines
from devenv.manager import (
    STOP_SIGNALS,
    StopRequest,
    attach_manager_log,
    build_supervisor,
    detach_manager_log,
    discard_output_after_hangup,
    remove_own_manager_record,
    run_until_stopped,
    spawn_manager,
    write_manager_record,
)
from devenv.pidfiles import MANAGER_NAME, ProcessState
from devenv.processes import KILL_WAIT_S, ServerProcessMonitor, describe_exit
from devenv.stopping import LIVE_STATES, remove_stale_record, stop, wait_for_port_release
from devenv.topology import (
    GATEWAY_NAME,
    gateway_routes,
    gateway_url,
    instance_health_urls,
    process_ports,
    process_roles,
    stop_stages,
)

logger = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0
LOG_TAIL_LINES = 20
LOCK_FILE_NAME = "start.lock"


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
    lock = StartLock(config.state_dir, config_option(config))
    lock.acquire()
    try:
        _reject_if_running(config)
        _check_ports_free(config)
        prepared = render.prepare(config)
        warn_missing_module_dirs(config)
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
        try:
            result = subprocess.run(command, shell=True, cwd=config.root, env=env)
        except KeyboardInterrupt:
            # Nothing has started yet; the hook got the same SIGINT from the terminal.
            raise StartInterrupted(signal.SIGINT) from None
        if result.returncode in (-signal.SIGINT, 128 + signal.SIGINT):
            raise StartInterrupted(signal.SIGINT)
        if result.returncode != 0:
            raise DevenvError(
                f"pre_start hook `{command}` failed with exit status {result.returncode} (run in {config.root}); "
                f"fix it or remove it from hooks.pre_start in {config.config_path}; nothing was started"
            )


def warn_missing_module_dirs(config: DevConfig) -> None:
    """Warn about modules whose source folder (watch.module_path) does not exist, most often a misspelt name.

    A warning, not an error: the app, not devenv, decides which module names exist.
    """
    for module, server in config.module_servers().items():
        folder = config.module_dir(module)
        if not folder.is_dir():
            warn(
                f"warning: {config.config_path}: servers.{server}.modules: module '{module}' has no source folder {folder} "
                "(watch.module_path); check the module name"
            )


def check(config: DevConfig) -> str:
    """Render both files and run `nginx -t`; return what was done, as a sentence.

    While a stack runs from the config's state_dir, its nginx.conf and Procfile
    are left alone: only the candidate nginx.conf is written and validated.
    """
    manager = pidfiles.read_records(config.pids_dir).get(MANAGER_NAME)
    if manager is None or pidfiles.inspect_record(manager) is not ProcessState.RUNNING:
        prepared = render.prepare(config)
        warn_missing_module_dirs(config)
        return f"valid; wrote {prepared.procfile_path} and {prepared.nginx_conf_path} (nginx -t passed)"

    binary = nginx.find_nginx(config)
    render.render_procfile(config, binary)
    render.validate_nginx_conf(config, binary, render.render_nginx_conf(config))
    warn_missing_module_dirs(config)
    return (
        f"valid (nginx -t passed); a stack runs from {config.state_dir} (manager pid {manager.pid}, "
        f"config {manager.config_path}), so its Procfile and nginx.conf were left as they are"
    )


def _reject_if_running(config: DevConfig) -> None:
    records = pidfiles.read_records(config.pids_dir)
    manager = records.pop(MANAGER_NAME, None)
    option = config_option(config)
    if manager is not None and pidfiles.inspect_record(manager) is ProcessState.RUNNING:
        raise DevenvError(
            f"already running for {config.state_dir}: manager pid {manager.pid} since "
            f"{manager.started_at}, config {manager.config_path}; run devenv stop{option} or devenv restart{option} first"
        )
    if manager is not None:
        remove_stale_record(config.pids_dir, manager)

    live = []
    for record in records.values():
        state = pidfiles.inspect_record(record)
        if state in LIVE_STATES:
            live.append(f"{record.name} (pid {record.pid})")
        else:
            remove_stale_record(config.pids_dir, record, state)
    if live:
        raise DevenvError(
            f"processes from an earlier start still run without their manager: {', '.join(live)}; "
            f"run devenv stop{option} to stop them"
        )


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
        f"cannot start: {'; '.join(problems)}; stop {those_processes(busy)} or change the ports in "
        f"{config.config_path}; nothing was started"
    )


def _start_detached(config: DevConfig, wait: bool, timeout_s: float) -> int:
    manager = spawn_manager(config)
    echo(f"started the manager (pid {manager.pid}); logs in {config.logs_dir}")
    if not wait:
        echo(
            f"not waiting for health checks; run devenv status{config_option(config)} "
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

    def wait_for_checks(
        urls: dict[str, str], checks: str, log_names: tuple[str, ...] | None = None
    ) -> StartupFailure | None:
        """Probe `urls`, keyed by the instance or route they check, until all are healthy or the deadline passes.

        A timeout's failure names `log_names`, or the unhealthy keys when `log_names` is None.
        """
        results = health.wait_until_healthy(
            list(urls.values()), max(deadline - time.monotonic(), 0.0), lambda: find_failure() is not None
        )
        failure = find_failure()
        if failure is not None:
            return failure
        unhealthy = [key for key, url in urls.items() if not results[url].healthy]
        if not unhealthy:
            return None
        details = "; ".join(f"{key}: {results[urls[key]].describe()}" for key in unhealthy)
        return StartupFailure(f"{checks} timed out after {timeout_s:g} s ({details})", log_names or tuple(unhealthy))

    failure = wait_for_checks(instance_health_urls(config), "health checks")
    if failure is not None:
        return failure
    route_urls = {route: gateway_url(config) + route for route in gateway_routes(config)}
    return wait_for_checks(route_urls, "gateway health checks", (GATEWAY_NAME,))


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
        f"start failed: {failure.reason}; fix the cause shown above and run devenv start{config_option(config)} again"
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
    echo(f"logs: devenv logs{config_option(config, '--config ')} -f; stop: devenv stop{config_option(config)}")


def _run_foreground(config: DevConfig, nginx_binary: Path, lock: StartLock, wait: bool, timeout_s: float) -> int:
    """Run the manager in this process until SIGINT, SIGTERM or SIGHUP, and release `lock` once startup is over."""
    writer = LogWriter(config.logs_dir)
    supervisor = build_supervisor(config, nginx_binary, writer, printer_output=sys.stdout)
    handler = attach_manager_log(writer, echo_line=supervisor.print_line)
    stop_request = StopRequest()
    stop_request.install(STOP_SIGNALS)
    write_manager_record(config, os.getpid())
    stopped_ports = list(process_ports(config).values())
    stages = stop_stages(process_roles(config))

    try:
        supervisor.start_all()
        if wait:
            failure = wait_for_startup(config, timeout_s, manager_alive=lambda: True, interrupted=stop_request.is_set)
            if stop_request.is_set():
                discard_output_after_hangup(stop_request)
                logger.info("received %s during startup; stopping every process", stop_request.signal_name)
                # The finally block below stops every process before main() prints this error.
                raise StartInterrupted(stop_request.signum)
            if failure is not None:
                _fail_start(config, failure, lambda: supervisor.stop(stages))
            print_summary(config)

        lock.release()
        echo("press Ctrl+C to stop")
        run_until_stopped(supervisor, stop_request, GatewayDownMarks(config, nginx_binary, supervisor))
    finally:
        discard_output_after_hangup(stop_request)
        supervisor.stop(stages)
        remove_own_manager_record(config)
        stop_request.restore()
        detach_manager_log(handler, writer)
    wait_for_port_release(config.host, stopped_ports)
    echo("stopped every process")
    return 0


def restart(config: DevConfig, timeout_s: float = KILL_WAIT_S, foreground: bool = False,
            wait: bool = True, start_timeout_s: float = START_TIMEOUT_S) -> int:
    """Stop whatever runs, wait until its ports are free, then start."""
    stop(config, timeout_s)
    return start(config, foreground=foreground, wait=wait, timeout_s=start_timeout_s)

