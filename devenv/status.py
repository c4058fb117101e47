"""`devenv status`: the state of the manager, every process and every gateway route."""

from __future__ import annotations

import json
import time

from devenv import health, pidfiles
from devenv.config import DevConfig
from devenv.lifecycle import GATEWAY_NAME, echo, gateway_routes, gateway_url, instance_health_urls, process_ports
from devenv.pidfiles import MANAGER_NAME, PidRecord, ProcessState
from devenv.processes import describe_exit

EXIT_RUNNING = 0
EXIT_DEGRADED = 1
EXIT_STOPPED = 3


def collect_status(config: DevConfig) -> dict:
    """Return the state of the manager, every process and every gateway route, as JSON-ready data.

    `state` is "running" when the manager and every process run and every
    health check passes, "stopped" when nothing runs, and "degraded" otherwise.
    """
    records = pidfiles.read_records(config.pids_dir)
    session = health.new_session()
    now = time.time()

    manager_record = records.get(MANAGER_NAME)
    manager = _record_status(manager_record, now) if manager_record else None
    manager_alive = bool(manager and manager["alive"])

    instance_urls = instance_health_urls(config)
    gateway_health_url = f"{gateway_url(config)}{config.api_base_url}/health"
    processes = []
    for name, port in process_ports(config).items():
        record = records.get(name)
        entry = {"name": name, "port": port, **_record_status(record, now)}
        entry["health"] = None
        if entry["alive"]:
            url = instance_urls.get(name, gateway_health_url)
            entry["health"] = _health_status(health.check_health(url, session=session))
        processes.append(entry)

    gateway_alive = next(entry["alive"] for entry in processes if entry["name"] == GATEWAY_NAME)
    routes = []
    for route, server in gateway_routes(config).items():
        url = gateway_url(config) + route
        result = health.check_health(url, session=session) if gateway_alive else None
        routes.append({"route": route, "server": server, "url": url, "health": _health_status(result)})

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
        "state_dir": str(config.state_dir),
        "manager": manager,
        "processes": processes,
        "gateway": {"url": gateway_url(config), "routes": routes},
    }


def status(config: DevConfig, as_json: bool = False) -> int:
    """Print the status of the stack; return 0 when running, 1 when degraded, 3 when stopped."""
    report = collect_status(config)
    if as_json:
        echo(json.dumps(report, indent=2))
    else:
        _print_status(report)
    return {"running": EXIT_RUNNING, "degraded": EXIT_DEGRADED, "stopped": EXIT_STOPPED}[report["state"]]


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
    echo(f"devenv: {report['state']} (config {report['config']})")
    manager = report["manager"]
    if manager and manager["alive"]:
        echo(f"manager: pid {manager['pid']}, up {_format_duration(manager['uptime_s'])}")
    else:
        echo("manager: not running")

    echo(f"  {'NAME':<20} {'PID':<8} {'PORT':<6} {'ALIVE':<6} {'UPTIME':<9} HEALTH")
    for entry in report["processes"]:
        pid = str(entry["pid"]) if entry["pid"] is not None else "-"
        alive = "yes" if entry["alive"] else "no"
        uptime = _format_duration(entry["uptime_s"]) if entry["uptime_s"] is not None else "-"
        checked = entry["health"]
        health_text = _describe_health(checked) if checked else entry["detail"]
        echo(f"  {entry['name']:<20} {pid:<8} {entry['port']:<6} {alive:<6} {uptime:<9} {health_text}")

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
