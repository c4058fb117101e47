"""Load and validate dev-config.yaml into a DevConfig.

The pydantic models below are the only list of settings. Every problem in a
file is collected and reported together as `FILE: KEY.PATH: sentence` lines,
so one run of `devenv check` shows everything that needs fixing.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from devenv.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("config/dev-config.yaml")
MIN_PORT = 1024
MAX_PORT = 65535
# Names reach a shell command line, file names and nginx.conf, so nothing
# outside this pattern is accepted.
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
# uvicorn's --host is interpolated into the Procfile and nginx.conf.
HOST_PATTERN = re.compile(r"[A-Za-z0-9.:\-\[\]]+")
MODULE_PLACEHOLDER = "{module}"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GatewayConfig(_Section):
    """The nginx gateway in front of every server."""

    port: int = 8000
    worker_processes: int | Literal["auto"] = 1
    worker_connections: int = Field(default=1024, ge=1)
    nginx: Path | None = None

    @field_validator("worker_processes", mode="before")
    @classmethod
    def _require_count_or_auto(cls, value: Any) -> Any:
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            return value
        raise ValueError(f"must be an integer >= 1 or 'auto', got {value!r}")


class ServerConfig(_Section):
    """One upstream: `instances` uvicorn processes on consecutive ports."""

    port: int
    instances: int = Field(default=1, ge=1)
    modules: list[str] = Field(default_factory=list)
    reload: bool = True
    balance: Literal["round_robin", "least_conn", "ip_hash"] = "round_robin"
    access_log: bool = False


class WebSocketConfig(_Section):
    """How nginx picks the server for a WebSocket connection."""

    routing_strategy: Literal["path", "query_param"] = "path"
    query_param_name: str = "type"

    @field_validator("query_param_name")
    @classmethod
    def _require_identifier(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError(f"must be a query parameter name ([A-Za-z_][A-Za-z0-9_]*), got {value!r}")
        return value


class WatchConfig(_Section):
    """What uvicorn's reloader watches."""

    dirs: list[Path] = Field(default_factory=lambda: [Path("backend/src")])
    exclude: list[Path] = Field(default_factory=list)
    module_path: str = "backend/src/trading_api/modules/{module}"

    @field_validator("module_path")
    @classmethod
    def _require_placeholder(cls, value: str) -> str:
        if MODULE_PLACEHOLDER not in value:
            raise ValueError(f"must contain {MODULE_PLACEHOLDER}, got {value!r}")
        return value


class HooksConfig(_Section):
    """Shell commands devenv runs around the processes' lifetime."""

    pre_start: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class Instance:
    """One uvicorn process of a server: `{server}-{index}` on `port`."""

    server: str
    index: int
    port: int
    modules: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.server}-{self.index}"


class DevConfig(_Section):
    """A validated dev-config.yaml with every path made absolute."""

    config_path: Path
    root: Path
    app: str = "trading_api.main:app"
    modules_env: str = "ENABLED_MODULES"
    api_base_url: str = "/api/v1"
    host: str = "127.0.0.1"
    state_dir: Path = Path(".local")
    gateway: GatewayConfig = Field(default_factory=GatewayConfig)
    servers: dict[str, ServerConfig]
    websocket: WebSocketConfig = Field(default_factory=WebSocketConfig)
    websocket_routes: dict[str, str] = Field(default_factory=dict)
    watch: WatchConfig = Field(default_factory=WatchConfig)
    hooks: HooksConfig = Field(default_factory=HooksConfig)

    @field_validator("app")
    @classmethod
    def _require_import_path(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", value):
            raise ValueError(f"must be an import path like 'package.module:app', got {value!r}")
        return value

    @field_validator("modules_env")
    @classmethod
    def _require_env_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError(f"must be an environment variable name, got {value!r}")
        return value

    @field_validator("api_base_url")
    @classmethod
    def _require_url_prefix(cls, value: str) -> str:
        if not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+", value):
            raise ValueError(f"must be a URL path like '/api/v1' without a trailing slash, got {value!r}")
        return value

    @field_validator("host")
    @classmethod
    def _require_plain_host(cls, value: str) -> str:
        if not HOST_PATTERN.fullmatch(value):
            raise ValueError(f"must be an IP address or host name, got {value!r}")
        return value

    # Derived views used by rendering and the lifecycle.

    def instances(self) -> list[Instance]:
        """Return every uvicorn instance, server by server in config order."""
        return [
            Instance(name, index, server.port + index, tuple(server.modules))
            for name, server in self.servers.items()
            for index in range(server.instances)
        ]

    @property
    def core_server(self) -> str:
        """The name of the one server without modules; it serves `location /`."""
        return next(name for name, server in self.servers.items() if not server.modules)

    def module_servers(self) -> dict[str, str]:
        """Map each module to the server that runs it, in config order."""
        return {module: name for name, server in self.servers.items() for module in server.modules}

    def module_dir(self, module: str) -> Path:
        return self.root / self.watch.module_path.replace(MODULE_PLACEHOLDER, module)

    @property
    def pids_dir(self) -> Path:
        return self.state_dir / "pids"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def nginx_dir(self) -> Path:
        return self.state_dir / "nginx"

    @property
    def nginx_conf_path(self) -> Path:
        return self.nginx_dir / "nginx.conf"

    @property
    def procfile_path(self) -> Path:
        return self.root / "Procfile"


def load_config(path: str | Path | None = None) -> DevConfig:
    """Read, validate and resolve a config file; raise ConfigError listing every problem."""
    config_path = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    shown = str(config_path)
    try:
        text = config_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{shown}: config file not found; pass the path of a dev-config.yaml") from None
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read the config file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(_describe_yaml_error(shown, exc)) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{shown}: the config must be a YAML mapping of keys, got {type(data).__name__}")
    return parse_config(data, config_path.resolve(), shown)


def parse_config(data: dict[str, Any], config_path: Path, shown: str | None = None) -> DevConfig:
    """Validate already-parsed YAML.

    `root` resolves against the config file's directory (and defaults to it);
    every other relative path resolves against `root`.
    """
    shown = shown or str(config_path)
    problems = _check_raw(data)
    values = dict(data)
    values["config_path"] = config_path
    values["root"] = _resolve(config_path.parent, values.get("root", "."))
    try:
        config = DevConfig.model_validate(values)
    except ValidationError as exc:
        raise _config_error(shown, problems + _describe_validation_error(exc)) from None
    problems += _check_semantics(config)
    if problems:
        raise _config_error(shown, problems)
    return _resolve_paths(config)


def _resolve(base: Path, value: Any) -> Any:
    if isinstance(value, (str, Path)):
        return (base / Path(value)).resolve()
    return value


def _resolve_paths(config: DevConfig) -> DevConfig:
    root = config.root
    watch = config.watch.model_copy(
        update={
            "dirs": [(root / d).resolve() for d in config.watch.dirs],
            "exclude": [(root / d).resolve() for d in config.watch.exclude],
        }
    )
    gateway = config.gateway
    if gateway.nginx is not None and "/" in str(gateway.nginx):
        # A bare name such as "nginx" is looked up on PATH; a path is relative to root.
        gateway = gateway.model_copy(update={"nginx": (root / gateway.nginx).resolve()})
    return config.model_copy(
        update={
            "state_dir": (root / config.state_dir).resolve(),
            "watch": watch,
            "gateway": gateway,
        }
    )


# Known keys per section, for suggesting the closest one to a misspelt key.
_KNOWN_KEYS: dict[str, type[BaseModel]] = {
    "": DevConfig,
    "gateway": GatewayConfig,
    "servers.*": ServerConfig,
    "websocket": WebSocketConfig,
    "watch": WatchConfig,
    "hooks": HooksConfig,
}
_INTERNAL_KEYS = {"config_path"}


def _check_raw(data: dict[str, Any]) -> list[tuple[str, str]]:
    """Catch what pydantic words poorly: unknown keys, bad names, wrong section types."""
    problems: list[tuple[str, str]] = []
    for key in _INTERNAL_KEYS & data.keys():
        problems.append((key, "is not a config key; remove it"))
    servers = data.get("servers")
    if servers is None:
        problems.append(("servers", "is missing; list at least the core server, e.g. 'servers: {core: {port: 8003}}'"))
    elif not isinstance(servers, dict) or not servers:
        problems.append(("servers", "must be a mapping of server names to settings, e.g. 'core: {port: 8003}'"))
    else:
        for name, server in servers.items():
            if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
                problems.append((f"servers.{_printable(name)}", _bad_name("server name", name)))
            if server is not None and not isinstance(server, dict):
                problems.append((f"servers.{_printable(name)}", "must be a mapping with at least 'port'"))
            modules = server.get("modules") if isinstance(server, dict) else None
            if isinstance(modules, list):
                for i, module in enumerate(modules):
                    if not isinstance(module, str) or not NAME_PATTERN.fullmatch(module):
                        problems.append((f"servers.{_printable(name)}.modules[{i}]", _bad_name("module name", module)))
    routes = data.get("websocket_routes")
    if isinstance(routes, dict):
        for route in routes:
            if not isinstance(route, str) or not NAME_PATTERN.fullmatch(route):
                problems.append((f"websocket_routes.{_printable(route)}", _bad_name("route name", route)))
    return problems


def _bad_name(what: str, value: Any) -> str:
    return f"invalid {what} {_printable(value)!r}; use lowercase letters, digits and '_', starting with a letter"


def _printable(value: Any) -> str:
    """Show a value on one line, so a hostile name cannot break the message apart."""
    return str(value).encode("unicode_escape").decode("ascii")


def _describe_validation_error(exc: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for error in exc.errors():
        location = [str(part) for part in error["loc"]]
        key = ".".join(location)
        kind = error["type"]
        if kind == "extra_forbidden":
            problems.append((key, _unknown_key_message(location)))
        elif kind == "missing":
            problems.append((key, "is missing"))
        elif kind == "literal_error":
            expected = error["ctx"]["expected"]
            problems.append((key, f"must be one of {expected}, got {error['input']!r}"))
        elif kind == "value_error":
            problems.append((key, str(error["ctx"]["error"])))
        elif kind == "greater_than_equal":
            problems.append((key, f"must be >= {error['ctx']['ge']}, got {error['input']!r}"))
        elif kind in ("int_parsing", "int_type", "int_from_float"):
            problems.append((key, f"must be an integer, got {error['input']!r}"))
        elif kind in ("bool_parsing", "bool_type"):
            problems.append((key, f"must be true or false, got {error['input']!r}"))
        elif kind in ("list_type",):
            problems.append((key, f"must be a list, got {error['input']!r}"))
        elif kind in ("dict_type", "model_type"):
            problems.append((key, f"must be a mapping, got {error['input']!r}"))
        elif kind in ("string_type",):
            problems.append((key, f"must be a string, got {error['input']!r}"))
        else:
            problems.append((key, error["msg"]))
    return problems


def _unknown_key_message(location: list[str]) -> str:
    section = ".".join(location[:-1])
    if location[0] == "servers" and len(location) == 3:
        section = "servers.*"
    model = _KNOWN_KEYS.get(section)
    key = location[-1]
    if model is None:
        return "is not a known key; remove it"
    known = [name for name in model.model_fields if name not in _INTERNAL_KEYS]
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(known)}"
    return f"is not a known key; {hint}"


def _check_semantics(config: DevConfig) -> list[tuple[str, str]]:
    """Check the rules that span several keys: ports, the core server, modules and routes."""
    problems: list[tuple[str, str]] = []
    problems += _check_ports(config)

    cores = [name for name, server in config.servers.items() if not server.modules]
    if not cores:
        problems.append(("servers", "no core server; exactly one server must have no modules (it serves /, health and docs)"))
    elif len(cores) > 1:
        problems.append(
            (
                f"servers.{cores[1]}.modules",
                f"servers {', '.join(cores)} all have no modules; exactly one core server is allowed, give the others their modules",
            )
        )

    owners: dict[str, str] = {}
    for name, server in config.servers.items():
        for module in server.modules:
            if module in owners and owners[module] != name:
                problems.append((f"servers.{name}.modules", f"module '{module}' is already run by server '{owners[module]}'; a module belongs to one server"))
            elif module in owners:
                problems.append((f"servers.{name}.modules", f"module '{module}' is listed twice"))
            owners.setdefault(module, name)

    for route, target in config.websocket_routes.items():
        if target not in config.servers:
            known = ", ".join(config.servers)
            problems.append((f"websocket_routes.{route}", f"server '{_printable(target)}' does not exist; use one of: {known}"))
    if config.websocket_routes and config.websocket.routing_strategy != "query_param":
        problems.append(("websocket_routes", "is only used with websocket.routing_strategy 'query_param'; set it or remove websocket_routes"))
    return problems


def _check_ports(config: DevConfig) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    users: dict[int, str] = {}

    def claim(key: str, port: int, user: str, label: str) -> None:
        if not MIN_PORT <= port <= MAX_PORT:
            problems.append((key, f"port {port}{label} is outside {MIN_PORT}-{MAX_PORT}"))
            return
        if port in users:
            problems.append((key, f"port {port}{label} is also used by {users[port]}"))
            return
        users[port] = user

    claim("gateway.port", config.gateway.port, "the gateway", "")
    for instance in config.instances():
        label = f" (instance {instance.name})"
        claim(f"servers.{instance.server}.port", instance.port, instance.name, label)
    return problems


def _config_error(shown: str, problems: list[tuple[str, str]]) -> ConfigError:
    lines = [f"{shown}: {key}: {message}" for key, message in problems]
    return ConfigError("\n".join(lines))


def _describe_yaml_error(shown: str, exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or "invalid YAML"
    if mark is not None:
        return f"{shown}:{mark.line + 1}:{mark.column + 1}: YAML syntax error: {problem}; fix the file at that line and column"
    return f"{shown}: YAML syntax error: {problem}"
