"""`devenv status`: the state of the manager, every process and every gateway route."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from devenv import health, pidfiles
from devenv.config import DevConfig, load_config
from devenv.console import config_option, echo
from devenv.errors import ConfigError
from devenv.pidfiles import MANAGER_NAME, PidRecord, ProcessState
from devenv.processes import describe_exit, find_lost_server_processes
from devenv.render import GATEWAY_HEALTH_PATH
from devenv.topology import GATEWAY_NAME, gateway_routes, http_url, process_ports, recorded_config_path

EXIT_RUNNING = 0
EXIT_DEGRADED = 1
EXIT_STOPPED = 3
# Short, so that status returns within about a second even when a port accepts
# connections but never responds. A healthy local server responds in milliseconds.
STATUS_PROBE_TIMEOUT_S = 1.0


def collect_status(config: DevConfig) -> dict:
    """Return the state of the manager, every process and every gateway route, as JSON-ready data.

    Names, pids and ports come from the PID files. Health URLs and gateway
    routes come from the config the processes were started with, when it
    differs from `config` and still loads. `state` is "running" when the
    manager and every process run and every health check passes, "stopped"
    when nothing runs, and "degraded" otherwise.
    """
    records = pidfiles.read_records(config.pids_dir)
    now = time.time()
    warnings: list[str] = []
    running_config_path = recorded_config_path(records)
    view = _config_of_running_stack(config, running_config_path, warnings)

    manager_record = records.get(MANAGER_NAME)
    manager = _record_status(manager_record, now) if manager_record else None
    manager_alive = bool(manager and manager["alive"])

    processes = _process_entries(view, records, now)
    if not manager_alive and any(entry["alive"] for entry in processes):
        option = config_option(config)
        warnings.append(
            "the manager is not running, so the output of the processes below is no longer written to the logs; "
            f"run devenv restart{option} to run them under a new manager, or devenv stop{option}"
        )

    gateway = next((entry for entry in processes if entry["name"] == GATEWAY_NAME), None)
    gateway_port = gateway["port"] if gateway and gateway["port"] is not None else view.gateway.port
    gateway_base_url = http_url(view.host, gateway_port)
    gateway_alive = bool(gateway and gateway["alive"])
    health_urls = {
        entry["name"]: _health_url(view, entry, gateway_base_url)
        for entry in processes
        if entry["alive"] and entry["port"] is not None
    }
    route_urls = {route: gateway_base_url + route for route in gateway_routes(view)} if gateway_alive else {}
    reloaders = {
        entry["name"]: records[entry["name"]].pid
        for entry in processes
        if entry["alive"] and records[entry["name"]].reload
    }

    # The probes run while the reloaders are watched, so neither waits for the other.
    with ThreadPoolExecutor(max_workers=1) as pool:
        probes = pool.submit(health.check_all, [*health_urls.values(), *route_urls.values()], STATUS_PROBE_TIMEOUT_S)
        lost = find_lost_server_processes(reloaders)
        results = probes.result()

    for entry in processes:
        name = entry["name"]
        if name in lost:
            entry["health"] = _unprobed(
                health_urls[name], f"no server process: the app failed to load or its process was killed; "
                f"see devenv logs{config_option(config, '--config ')} {name}"
            )
        elif name in health_urls:
            entry["health"] = _health_status(results[health_urls[name]])

    routes = []
    for route, server in gateway_routes(view).items():
        url = gateway_base_url + route
        instances = [instance.name for instance in view.instances() if instance.server == server]
        if not gateway_alive:
            checked = _health_status(None)
        elif instances and all(name in lost for name in instances):
            checked = _unprobed(url, f"no server process in {', '.join(instances)}")
        else:
            checked = _health_status(results[url])
        routes.append({"route": route, "server": server, "url": url, "health": checked})

    any_alive = manager_alive or any(entry["alive"] for entry in processes)
    all_healthy = (
        manager_alive
        and all(entry["alive"] and entry["health"]["healthy"] for entry in processes)
        and all(route["health"]["healthy"] for route in routes)
    )
    if not any_alive:
        state = "stopped"
    elif all_healthy:
        state = "running"
    else:
        state = "degraded"
    return {
        "state": state,
        "config": str(config.config_path),
        "running_config": str(running_config_path) if running_config_path else None,
        "state_dir": str(config.state_dir),
        "warnings": warnings,
        "manager": manager,
        "processes": processes,
        "gateway": {"url": gateway_base_url, "routes": routes},
    }


def status(config: DevConfig, as_json: bool = False) -> int:
    """Print the status of the stack; return 0 when running, 1 when degraded, 3 when stopped."""
    report = collect_status(config)
    if as_json:
        echo(json.dumps(report, indent=2))
    else:
        _print_status(report)
    return {"running": EXIT_RUNNING, "degraded": EXIT_DEGRADED, "stopped": EXIT_STOPPED}[report["state"]]


def _config_of_running_stack(config: DevConfig, running_config_path: Path | None, warnings: list[str]) -> DevConfig:
    """Return the config the recorded processes were started with, or `config` when that one cannot be loaded."""
    if running_config_path is None or running_config_path == config.config_path:
        return config
    try:
        running_config = load_config(running_config_path)
    except ConfigError:
        warnings.append(
            f"running with config {running_config_path}, not {config.config_path}; {running_config_path} is "
            f"missing or invalid now, so names, pids and ports come from the PID files, and health URLs "
            f"and gateway routes from {config.config_path}"
        )
        return config
    warnings.append(
        f"running with config {running_config_path}, not {config.config_path}; "
        "this status shows what runs, as the PID files record it"
    )
    return running_config


def _process_entries(view: DevConfig, records: dict[str, PidRecord], now: float) -> list[dict]:
    """Return one entry per process: the config's processes first, then any other recorded one.

    A recorded port wins over the config's, because the config may have changed since the start.
    """
    expected_ports = process_ports(view)
    names = [*expected_ports, *(name for name in records if name not in expected_ports and name != MANAGER_NAME)]
    entries = []
    for name in names:
        record = records.get(name)
        port = record.port if record is not None and record.port is not None else expected_ports.get(name)
        entries.append({"name": name, "port": port, **_record_status(record, now), "health": None})
    return entries


def _health_url(view: DevConfig, entry: dict, gateway_base_url: str) -> str:
    if entry["name"] == GATEWAY_NAME:
        return f"{gateway_base_url}{GATEWAY_HEALTH_PATH}"
    return http_url(view.host, entry["port"], f"{view.api_base_url}/health")


def _record_status(record: PidRecord | None, now: float) -> dict:
    if record is None:
        return {"pid": None, "alive": False, "detail": "not running", "uptime_s": None, "exit_code": None}
    state = pidfiles.inspect_record(record)
    alive = state is ProcessState.RUNNING
    if alive:
        detail = "running"
    elif record.exit_code is not None:
        detail = describe_exit(record.exit_code)
    elif state is ProcessState.REUSED:
        detail = "stale pidfile (pid reused by another process)"
    elif state is ProcessState.GROUP_LEFT:
        detail = "exited, but its process group still runs"
    else:
        detail = "not running"
    return {
        "pid": record.pid,
        "alive": alive,
        "detail": detail,
        "uptime_s": round(now - record.create_time, 1) if alive else None,
        "exit_code": record.exit_code,
    }


def _unprobed(url: str, error: str) -> dict:
    """Return an unhealthy health entry that no HTTP request was needed for."""
    return {"url": url, "healthy": False, "status_code": None, "response_time_ms": None, "error": error}


def _health_status(result: health.HealthResult | None) -> dict:
    if result is None:
        return {"url": None, "healthy": False, "status_code": None, "response_time_ms": None, "error": "not probed"}
    return {
        "url": result.url,
        "healthy": result.healthy,
        "status_code": result.status_code,
        "response_time_ms": round(result.elapsed_s * 1000, 1),
        "error": result.error,
    }


def _print_status(report: dict) -> None:
    echo(f"devenv: {report['state']} (config {report['running_config'] or report['config']})")
    for warning in report["warnings"]:
        echo(f"warning: {warning}")
    manager = report["manager"]
    if manager and manager["alive"]:
        echo(f"manager: pid {manager['pid']}, up {_format_duration(manager['uptime_s'])}")
    else:
        echo("manager: not running")

    echo(f"  {'NAME':<20} {'PID':<8} {'PORT':<6} {'ALIVE':<6} {'UPTIME':<9} HEALTH")
    for entry in report["processes"]:
        pid = str(entry["pid"]) if entry["pid"] is not None else "-"
        port = str(entry["port"]) if entry["port"] is not None else "-"
        alive = "yes" if entry["alive"] else "no"
        uptime = _format_duration(entry["uptime_s"]) if entry["uptime_s"] is not None else "-"
        checked = entry["health"]
        health_text = _describe_health(checked) if checked else entry["detail"]
        echo(f"  {entry['name']:<20} {pid:<8} {port:<6} {alive:<6} {uptime:<9} {health_text}")

    echo(f"gateway {report['gateway']['url']}:")
    for route in report["gateway"]["routes"]:
        echo(f"  {route['route']:<40} -> {route['server']:<12} {_describe_health(route['health'])}")


def _describe_health(checked: dict) -> str:
    if checked["status_code"] is None:
        return checked["error"] or "no response"
    verdict = "healthy" if checked["healthy"] else "unhealthy"
    return f"{verdict} (HTTP {checked['status_code']} in {checked['response_time_ms']:.0f} ms)"


def _format_duration(seconds: float) -> str:
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"
