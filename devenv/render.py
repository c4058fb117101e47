"""Render the Procfile and nginx.conf from a DevConfig with Jinja2.

Both templates live at the repository root (`Procfile.template`,
`nginx/nginx.conf.j2`); the rendered files are written atomically and only
when their content changed, so an unchanged config leaves their mtimes alone.
"""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
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
# Directories under the project root that the tool writes or that hold workflow
# scripts; no file in them may trigger a reload. uvicorn only reloads on *.py
# files, so generated JSON specs and __pycache__ never trigger one by themselves.
GENERATED_PATHS = (
    "backend/src/trading_api/clients",
    "scripts",
)


@dataclass(frozen=True)
class ProcfileEntry:
    name: str
    port: int
    env_assignments: str
    access_log: bool
    reload: bool
    reload_dirs: tuple[str, ...]
    reload_excludes: tuple[str, ...]


@dataclass(frozen=True)
class Upstream:
    name: str
    balance: str
    ports: tuple[int, ...]

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
    return environment


def reload_excludes(config: DevConfig, server: str) -> list[str]:
    """List the paths and patterns that must not reload `server`, as absolute paths.

    uvicorn treats an existing directory as excluded at any depth only when it
    is given by absolute path, so every path here is absolute; a missing
    directory is created by `prepare_watch_dirs` before the processes start.
    """
    own_modules = set(config.servers[server].modules)
    paths = [config.state_dir]
    paths += [config.root / path for path in GENERATED_PATHS]
    paths += [config.module_dir(module) / "specs" for module in own_modules]
    paths += [
        config.module_dir(module)
        for module in config.module_servers()
        if module not in own_modules
    ]
    paths += list(config.watch.exclude)
    return [str(path) for path in paths]


def excluded_dirs(config: DevConfig) -> list[Path]:
    """Return the excluded directories that must exist before uvicorn starts."""
    dirs = {config.state_dir, *(config.root / path for path in GENERATED_PATHS)}
    dirs.update(path for path in config.watch.exclude if not path.suffix)
    return sorted(dirs)


def render_procfile(config: DevConfig, nginx_binary: Path, python: str | None = None) -> str:
    """Render the Procfile: nginx first, then one uvicorn line per instance."""
    python = python or sys.executable
    entries = []
    for instance in config.instances():
        server = config.servers[instance.server]
        modules = ",".join(instance.modules)
        env = f"{config.modules_env}={shlex.quote(modules)} PYTHONUNBUFFERED=1 "
        entries.append(
            ProcfileEntry(
                name=instance.name,
                port=instance.port,
                env_assignments=env,
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
        graceful_shutdown_s=GRACEFUL_SHUTDOWN_S,
        processes=entries,
    )


def render_nginx_conf(config: DevConfig) -> str:
    """Render nginx.conf: one upstream per server, one location per module, / to core."""
    upstreams = [
        Upstream(name, server.balance, tuple(server.port + i for i in range(server.instances)))
        for name, server in config.servers.items()
    ]
    modules = [ModuleRoute(module, server) for module, server in config.module_servers().items()]
    template = _environment().get_template(NGINX_TEMPLATE)
    return template.render(
        config_path=config.config_path,
        gateway=config.gateway,
        nginx_dir=config.nginx_dir,
        logs_dir=config.logs_dir,
        websocket=config.websocket,
        websocket_routes=config.websocket_routes,
        core_server=config.core_server,
        upstreams=upstreams,
        modules=modules,
        api_base_url=config.api_base_url,
        listen_host=_nginx_host(config.host),
        upstream_host=_nginx_host(config.host),
        keepalive_connections=KEEPALIVE_CONNECTIONS,
        websocket_timeout_s=WEBSOCKET_TIMEOUT_S,
    )


def _nginx_host(host: str) -> str:
    # nginx wants IPv6 addresses in brackets; "localhost" would make it bind and proxy to every address it resolves to.
    if host == "localhost":
        return "127.0.0.1"
    if ":" in host and not host.startswith("["):
        return f"[{host}]"
    return host


def write_if_changed(path: Path, text: str) -> bool:
    """Write `text` to `path` atomically unless it already holds it; return whether it wrote."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise DevenvError(f"cannot read {path} ({exc.strerror}); check its permissions") from None
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
    for path in excluded_dirs(config):
        path.mkdir(parents=True, exist_ok=True)

    conf_text = render_nginx_conf(config)
    validate_nginx_conf(config, binary, conf_text)
    write_if_changed(config.nginx_conf_path, conf_text)
    write_if_changed(config.procfile_path, render_procfile(config, binary))
    return Prepared(config.procfile_path, config.nginx_conf_path, binary)


def validate_nginx_conf(config: DevConfig, binary: Path, text: str) -> None:
    """Run `nginx -t` on rendered text through a temporary file beside nginx.conf."""
    nginx.prepare_dirs(config)
    candidate = config.nginx_dir / "nginx.conf.candidate"
    write_if_changed(candidate, text)
    try:
        nginx.validate_config(binary, candidate, config.nginx_dir)
    finally:
        candidate.unlink(missing_ok=True)
