"""The processes of a stack and their addresses, derived from a config or from the PID files.

Roles decide the stop order. The health URLs and gateway routes are what
`start` waits for and `status` probes.
"""

from __future__ import annotations

from pathlib import Path

from devenv.config import DevConfig
from devenv.pidfiles import MANAGER_NAME, ROLE_CORE_SERVER, ROLE_GATEWAY, ROLE_MODULE_SERVER, PidRecord

GATEWAY_NAME = "nginx"


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
