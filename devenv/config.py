"""Load and validate dev-config.yaml into a DevConfig.

The pydantic models below are the only list of settings. Validation has two
layers, and both always run, so one `devenv check` shows every problem in a
file. pydantic checks each key's type and form. The cross-key checks (ports,
the core server, module owners, WebSocket routes) read those raw YAML values
that are well typed, whatever else is wrong. Every problem becomes one
`FILE: KEY.PATH: sentence` line of a single ConfigError.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
)

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
# A newline in a path would split a Procfile line in two.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
# Values longer than this are cut in error messages.
MAX_SHOWN_VALUE_CHARS = 60

Problem = tuple[str, str]


def _check_path_text(value: Any) -> Any:
    if isinstance(value, str):
        if not value:
            raise ValueError("must be a path, got an empty string")
        if CONTROL_CHARACTERS.search(value):
            raise ValueError(f"must not contain control characters such as newlines, got {_show(value)}")
    return value


# A path as written in the config: a non-empty string without control characters.
ConfigPath = Annotated[Path, BeforeValidator(_check_path_text)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GatewayConfig(_Section):
    """The nginx gateway in front of every server."""

    port: StrictInt = 8000
    worker_processes: int | Literal["auto"] = 1
    worker_connections: StrictInt = Field(default=1024, ge=1)
    nginx: ConfigPath | None = None

    @field_validator("worker_processes", mode="before")
    @classmethod
    def _require_count_or_auto(cls, value: Any) -> Any:
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            return value
        raise ValueError(f"must be an integer >= 1 or 'auto', got {_show(value)}")


class ServerConfig(_Section):
    """One upstream: `instances` uvicorn processes on consecutive ports."""

    port: StrictInt
    instances: StrictInt = Field(default=1, ge=1)
    modules: list[str] = Field(default_factory=list)
    reload: StrictBool = True
    balance: Literal["round_robin", "least_conn", "ip_hash"] = "round_robin"
    access_log: StrictBool = False


class WebSocketConfig(_Section):
    """The rule nginx uses to pick the server for a WebSocket connection."""

    routing_strategy: Literal["path", "query_param"] = "path"
    query_param_name: str = "type"

    @field_validator("query_param_name")
    @classmethod
    def _require_identifier(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError(f"must be a query parameter name ([A-Za-z_][A-Za-z0-9_]*), got {_show(value)}")
        return value


class WatchConfig(_Section):
    """The directories uvicorn's reloader watches, and its exclusions."""

    dirs: list[ConfigPath] = Field(default_factory=lambda: [Path("backend/src")])
    exclude: list[ConfigPath] = Field(default_factory=list)
    module_path: str = "backend/src/trading_api/modules/{module}"

    @field_validator("module_path")
    @classmethod
    def _require_placeholder(cls, value: str) -> str:
        _check_path_text(value)
        if MODULE_PLACEHOLDER not in value:
            raise ValueError(f"must contain {MODULE_PLACEHOLDER}, got {_show(value)}")
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
    root: ConfigPath
    app: str = "trading_api.main:app"
    modules_env: str = "ENABLED_MODULES"
    api_base_url: str = "/api/v1"
    host: str = "127.0.0.1"
    state_dir: ConfigPath = Path(".local")
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
            raise ValueError(f"must be an import path like 'package.module:app', got {_show(value)}")
        return value

    @field_validator("modules_env")
    @classmethod
    def _require_env_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError(f"must be an environment variable name, got {_show(value)}")
        return value

    @field_validator("api_base_url")
    @classmethod
    def _require_url_prefix(cls, value: str) -> str:
        if not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+", value):
            raise ValueError(f"must be a URL path like '/api/v1' without a trailing slash, got {_show(value)}")
        return value

    @field_validator("host")
    @classmethod
    def _require_plain_host(cls, value: str) -> str:
        if not HOST_PATTERN.fullmatch(value):
            raise ValueError(f"must be an IP address or host name, got {_show(value)}")
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


# Loading


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that rejects a key repeated in one mapping instead of keeping the last value."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            # Keys merged in with `<<` may be overridden on purpose, so only explicit keys count.
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node)
            if key in first_lines:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {_show(key)} (first at line {first_lines[key]})",
                    key_node.start_mark,
                )
            first_lines[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def load_config(path: str | Path | None = None) -> DevConfig:
    """Read, validate and resolve a config file; raise ConfigError listing every problem."""
    config_path = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    shown = str(config_path)
    try:
        text = config_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{shown}: config file not found; pass the path of a dev-config.yaml") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{shown}: invalid UTF-8 at byte {exc.start}; save the config as UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read the config file ({exc.strerror})") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(_describe_yaml_error(shown, exc)) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{shown}: the config must be a YAML mapping of keys, got {type(data).__name__}")
    return parse_config(data, config_path.resolve(), shown)


def parse_config(data: dict[Any, Any], config_path: Path, shown: str | None = None) -> DevConfig:
    """Validate already-parsed YAML and make its paths absolute.

    `root` resolves against the config file's directory (and defaults to it);
    every other relative path resolves against `root`. Raises ConfigError with
    one line per problem.
    """
    shown = shown or str(config_path)
    problems = _check_raw(data)
    problems += _check_cross_keys(data)

    values = dict(data)
    values["config_path"] = config_path
    values["root"] = _resolve(config_path.parent, values.get("root", "."))
    if isinstance(values["root"], Path) and not values["root"].is_dir():
        problems.append(("root", f"directory {values['root']} does not exist; root is relative to the config file's directory"))

    config = None
    try:
        config = _resolve_paths(DevConfig.model_validate(values))
    except ValidationError as exc:
        already_reported = {key for key, _ in problems}
        problems += [problem for problem in _describe_validation_error(exc) if problem[0] not in already_reported]
    if config is not None:
        problems += _check_resolved_paths(config)

    if problems or config is None:
        order = _document_order(data)
        problems.sort(key=lambda problem: _position(problem[0], order))
        raise ConfigError("\n".join(f"{shown}: {key}: {message}" for key, message in problems))
    return config


def _resolve(base: Path, value: Any) -> Any:
    # Anything but a usable path string is left for the model to reject with a message.
    if isinstance(value, str) and value and not CONTROL_CHARACTERS.search(value):
        return (base / value).resolve()
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


# Messages


def _show(value: Any) -> str:
    """Quote a value for a message on one line, so a hostile string cannot break the message apart."""
    shown = repr(value)
    if len(shown) > MAX_SHOWN_VALUE_CHARS:
        shown = shown[: MAX_SHOWN_VALUE_CHARS - 3] + "..."
    return shown


def _printable(value: Any) -> str:
    """Show a key inside a key path without quotes, escaping control characters."""
    if isinstance(value, str):
        return repr(value)[1:-1]
    return repr(value)


def _bad_name(what: str, value: Any) -> str:
    return f"invalid {what} {_show(value)}; use lowercase letters, digits and '_', starting with a letter"


def _describe_yaml_error(shown: str, exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.reader.ReaderError):
        return (
            f"{shown}: YAML syntax error: unacceptable character #x{exc.character:04x} at character {exc.position}: "
            f"{exc.reason}; remove it"
        )
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or "invalid YAML"
    if mark is not None:
        return f"{shown}:{mark.line + 1}:{mark.column + 1}: YAML syntax error: {problem}; fix the file at that line and column"
    return f"{shown}: YAML syntax error: {problem}"


def _document_order(data: Any, prefix: str = "", order: dict[str, int] | None = None) -> dict[str, int]:
    """Number every key path of the YAML in the order it appears in the file."""
    order = {} if order is None else order
    if isinstance(data, dict):
        children = [(f"{prefix}.{_printable(key)}" if prefix else _printable(key), value) for key, value in data.items()]
    elif isinstance(data, list):
        children = [(f"{prefix}[{i}]", value) for i, value in enumerate(data)]
    else:
        children = []
    for path, value in children:
        order.setdefault(path, len(order))
        _document_order(value, path, order)
    return order


def _position(key: str, order: dict[str, int]) -> int:
    """Return where a problem's key, or its closest enclosing key, appears in the file; -1 if nowhere."""
    while key:
        if key in order:
            return order[key]
        key = key[: max(key.rfind("."), key.rfind("["), 0)]
    return -1


# Checks on the raw YAML


def _check_raw(data: dict[Any, Any]) -> list[Problem]:
    """Catch what pydantic words poorly: bad names, missing or wrongly typed sections."""
    problems: list[Problem] = []
    for key in _INTERNAL_KEYS & data.keys():
        problems.append((key, "is not a config key; remove it"))

    servers = data.get("servers")
    if servers is None:
        problems.append(("servers", "is missing; list at least the core server, e.g. 'servers: {core: {port: 8003}}'"))
    elif not isinstance(servers, dict):
        problems.append(("servers", f"must be a mapping of server names to settings, e.g. 'core: {{port: 8003}}', got {_show(servers)}"))
    elif not servers:
        problems.append(("servers", "is empty; list at least the core server, e.g. 'core: {port: 8003}'"))
    else:
        for name, server in servers.items():
            key = f"servers.{_printable(name)}"
            if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
                problems.append((key, _bad_name("server name", name)))
            if not isinstance(server, dict):
                problems.append((key, f"must be a mapping with at least 'port', got {_show(server)}"))
                continue
            modules = server.get("modules")
            if isinstance(modules, list):
                for i, module in enumerate(modules):
                    if not isinstance(module, str) or not NAME_PATTERN.fullmatch(module):
                        problems.append((f"{key}.modules[{i}]", _bad_name("module name", module)))

    routes = data.get("websocket_routes")
    if isinstance(routes, dict):
        for route in routes:
            if not isinstance(route, str) or not NAME_PATTERN.fullmatch(route):
                problems.append((f"websocket_routes.{_printable(route)}", _bad_name("route name", route)))
    return problems


@dataclass(frozen=True)
class _RawServer:
    """A server's raw values that pydantic accepts; None marks a value it rejects."""

    name: str
    port: int | None
    instances: int
    modules: tuple[str, ...] | None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _raw_servers(data: dict[Any, Any]) -> list[_RawServer]:
    servers = data.get("servers")
    if not isinstance(servers, dict):
        return []
    found = []
    for name, raw in servers.items():
        if not isinstance(raw, dict):
            continue
        port = raw.get("port")
        instances = raw.get("instances", 1)
        modules = raw.get("modules", [])
        well_typed_modules = isinstance(modules, list) and all(isinstance(module, str) for module in modules)
        found.append(
            _RawServer(
                name=_printable(name),
                port=port if _is_int(port) else None,
                # A rejected instance count is reported by pydantic; check the first instance anyway.
                instances=instances if _is_int(instances) and instances >= 1 else 1,
                modules=tuple(modules) if well_typed_modules else None,
            )
        )
    return found


def _section(data: dict[Any, Any], name: str) -> dict[Any, Any] | None:
    """Return a section mapping, {} when it is absent, or None when it is not a mapping."""
    section = data.get(name, {})
    return section if isinstance(section, dict) else None


def _check_cross_keys(data: dict[Any, Any]) -> list[Problem]:
    """Check the rules that span several keys, using the raw values that are well typed."""
    servers = _raw_servers(data)
    gateway = _section(data, "gateway")
    gateway_port = None
    if gateway is not None:
        gateway_port = gateway.get("port", GatewayConfig.model_fields["port"].default)

    problems = _check_ports(gateway_port if _is_int(gateway_port) else None, servers)
    problems += _check_core_server(data, servers)
    problems += _check_module_owners(servers)
    problems += _check_websocket_routes(data)
    return problems


def _check_ports(gateway_port: int | None, servers: list[_RawServer]) -> list[Problem]:
    """Check every port's range and that no two are equal.

    Configured ports (the gateway's and each server's first instance) are
    claimed before the ports derived as port + i, so a clash is reported on
    the server whose extra instances caused it.
    """
    problems: list[Problem] = []
    users: dict[int, str] = {}

    def claim(key: str, port: int, user: str, label: str) -> bool:
        if not MIN_PORT <= port <= MAX_PORT:
            problems.append((key, f"port {port}{label} is outside {MIN_PORT}-{MAX_PORT}; choose a port in that range"))
            return False
        if port in users:
            problems.append((key, f"port {port}{label} is also used by {users[port]}; give each a port of its own"))
            return True
        users[port] = user
        return True

    if gateway_port is not None:
        claim("gateway.port", gateway_port, "the gateway", "")
    numbered = [server for server in servers if server.port is not None]
    in_range = [
        server
        for server in numbered
        if claim(f"servers.{server.name}.port", server.port, f"{server.name}-0", f" (instance {server.name}-0)")
    ]
    for server in in_range:
        for index in range(1, server.instances):
            instance = f"{server.name}-{index}"
            if not claim(f"servers.{server.name}.port", server.port + index, instance, f" (instance {instance})"):
                break  # Every later instance is out of range too.
    return problems


def _check_core_server(data: dict[Any, Any], servers: list[_RawServer]) -> list[Problem]:
    problems: list[Problem] = []
    cores = [server.name for server in servers if server.modules == ()]
    all_known = isinstance(data.get("servers"), dict) and len(servers) == len(data["servers"])
    all_known = all_known and all(server.modules is not None for server in servers)
    if not cores and servers and all_known:
        names = ", ".join(server.name for server in servers)
        problems.append(
            ("servers", f"every server ({names}) runs modules, so there is no core server; add one server without modules, which serves /, health and docs")
        )
    for extra in cores[1:]:
        problems.append(
            (
                f"servers.{extra}.modules",
                f"server '{extra}' has no modules, like '{cores[0]}'; exactly one server (the core server) runs no modules, so list the modules '{extra}' runs",
            )
        )
    return problems


def _check_module_owners(servers: list[_RawServer]) -> list[Problem]:
    problems: list[Problem] = []
    owners: dict[str, str] = {}
    for server in servers:
        for i, module in enumerate(server.modules or ()):
            key = f"servers.{server.name}.modules[{i}]"
            owner = owners.setdefault(module, server.name)
            if owner != server.name:
                problems.append((key, f"module {_show(module)} is already run by server '{owner}'; a module belongs to one server"))
            elif module in server.modules[:i]:
                problems.append((key, f"module {_show(module)} is listed twice"))
    return problems


def _check_websocket_routes(data: dict[Any, Any]) -> list[Problem]:
    routes = data.get("websocket_routes")
    if not isinstance(routes, dict) or not routes:
        return []
    problems: list[Problem] = []
    servers = data.get("servers")
    names = [name for name in servers if isinstance(name, str)] if isinstance(servers, dict) else []
    for route, target in routes.items():
        if isinstance(target, str) and target not in names:
            problems.append(
                (f"websocket_routes.{_printable(route)}", f"server {_show(target)} does not exist; use one of: {', '.join(names)}")
            )

    websocket = _section(data, "websocket")
    strategy = websocket.get("routing_strategy", "path") if websocket is not None else None
    if strategy == "path":
        problems.append(
            ("websocket_routes", "is only used with websocket.routing_strategy 'query_param', but the strategy is 'path'; set it or remove websocket_routes")
        )
    return problems


def _check_resolved_paths(config: DevConfig) -> list[Problem]:
    """Check the absolute paths: watched directories exist and stay watched, state_dir fits nginx.conf."""
    problems: list[Problem] = []
    if "$" in str(config.state_dir):
        # nginx expands variables in the access_log path, and a quoted string cannot escape '$'.
        problems.append(("state_dir", f"path {config.state_dir} contains '$', which nginx.conf cannot hold; choose a path without '$'"))

    if not config.root.is_dir() or not any(server.reload for server in config.servers.values()):
        return problems
    for i, directory in enumerate(config.watch.dirs):
        if not directory.is_dir():
            problems.append(
                (f"watch.dirs[{i}]", f"directory {directory} does not exist, and uvicorn would watch its working directory instead; fix the path")
            )
    for i, path in enumerate(config.watch.exclude):
        if not path.is_dir() and not path.is_relative_to(config.root):
            problems.append(
                (f"watch.exclude[{i}]", f"{path} is outside root and not an existing directory, so uvicorn cannot exclude it; create it or remove the entry")
            )
    # uvicorn drops a watched directory that lies inside an excluded one.
    excluded = [("state_dir", config.state_dir, "choose a state_dir outside it")]
    excluded += [(f"watch.exclude[{i}]", path, "exclude a narrower path") for i, path in enumerate(config.watch.exclude)]
    for key, path, fix in excluded:
        for directory in config.watch.dirs:
            if directory == path or path in directory.parents:
                problems.append((key, f"{path} contains the watched directory {directory}, so uvicorn would stop watching it; {fix}"))
    return problems


# Pydantic errors


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
# Dicts whose keys are names the user picks; an int in a location under them is a key, not a list index.
_NAMED_MAPPINGS = {"servers", "websocket_routes"}


def _key_path(location: tuple[Any, ...]) -> str:
    """Format a pydantic location as the key path users write: `servers.core.modules[0]`."""
    text = ""
    for position, part in enumerate(location):
        parent = location[position - 1] if position else None
        if part == "[key]":
            continue  # The error is about the key itself, so name the key.
        if isinstance(part, int) and parent not in _NAMED_MAPPINGS:
            text += f"[{part}]"
        else:
            text += ("." if text else "") + _printable(part)
    return text


def _describe_validation_error(exc: ValidationError) -> list[Problem]:
    problems = []
    for error in exc.errors():
        location = tuple(error["loc"])
        key = _key_path(location)
        kind = error["type"]
        got = _show(error.get("input"))
        if kind in ("extra_forbidden", "invalid_key"):
            message = _unknown_key_message(location)
        elif kind == "missing":
            message = "is missing"
        elif kind == "literal_error":
            message = f"must be one of {error['ctx']['expected']}, got {got}"
        elif kind == "value_error":
            message = str(error["ctx"]["error"])
        elif kind == "greater_than_equal":
            message = f"must be >= {error['ctx']['ge']}, got {got}"
        elif kind in ("int_parsing", "int_type", "int_from_float"):
            message = f"must be an integer, got {got}"
        elif kind in ("bool_parsing", "bool_type"):
            message = f"must be true or false, got {got}"
        elif kind == "list_type":
            message = f"must be a list, got {got}"
        elif kind in ("dict_type", "model_type", "model_attributes_type"):
            message = f"must be a mapping, got {got}"
        elif kind == "string_type":
            message = f"must be a string, got {got}"
        elif kind == "path_type":
            message = f"must be a path, got {got}"
        else:
            message = f"{error['msg']}, got {got}"
        problems.append((key, message))
    return problems


def _unknown_key_message(location: tuple[Any, ...]) -> str:
    section = ".".join(str(part) for part in location[:-1])
    if location[0] == "servers" and len(location) == 3:
        section = "servers.*"
    model = _KNOWN_KEYS.get(section)
    key = location[-1]
    if model is None:
        return "is not a known key; remove it"
    known = [name for name in model.model_fields if name not in _INTERNAL_KEYS]
    close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(known)}"
    return f"is not a known key; {hint}"
