"""Tests for devenv.render: the Procfile and nginx.conf, read back with honcho, shlex and crossplane."""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import crossplane
import pytest
from honcho.environ import parse_procfile
from uvicorn.config import Config as UvicornConfig
from uvicorn.supervisors.watchfilesreload import FileFilter

from devenv import cli, nginx, render
from devenv.config import DevConfig, load_config, parse_config
from devenv.errors import DevenvError

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIGS = sorted((REPO_ROOT / "config").glob("*.yaml"))
FAKE_NGINX = Path("/opt/nginx/sbin/nginx")
MODULES_ROOT = Path("backend/src/trading_api/modules")
# nginx's default proxy_read_timeout; an idle WebSocket needs longer.
NGINX_DEFAULT_TIMEOUT_S = 60


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project tree like the repository's: backend/src with two module folders."""
    for module in ("broker", "datafeed"):
        (tmp_path / MODULES_ROOT / module).mkdir(parents=True)
    return tmp_path


def make_config(root: Path, **changes: Any) -> DevConfig:
    data: dict[str, Any] = {
        "servers": {
            "broker": {"port": 8001, "modules": ["broker"]},
            "datafeed": {"port": 8002, "modules": ["datafeed"]},
            "core": {"port": 8003},
        }
    }
    data.update(changes)
    return parse_config(data, root / "dev-config.yaml")


def with_state_dir(config: DevConfig, state_dir: Path) -> DevConfig:
    return config.model_copy(update={"state_dir": state_dir})


# nginx.conf, parsed with crossplane


def parse_nginx(text: str, tmp_path: Path) -> list[dict]:
    path = tmp_path / "parsed-nginx.conf"
    path.write_text(text)
    payload = crossplane.parse(str(path), single=True, comments=False)
    assert payload["status"] == "ok", payload["errors"]
    return payload["config"][0]["parsed"]


def directives(block: list[dict], name: str) -> list[dict]:
    return [directive for directive in block if directive["directive"] == name]


def only(block: list[dict], name: str) -> dict:
    found = directives(block, name)
    assert len(found) == 1, f"expected one {name}, found {len(found)}"
    return found[0]


def args_of(block: list[dict], name: str) -> list[str]:
    return only(block, name)["args"]


def server_block(parsed: list[dict]) -> list[dict]:
    return only(only(parsed, "http")["block"], "server")["block"]


def locations(parsed: list[dict]) -> dict[str, list[dict]]:
    """Map each location's arguments, joined by a space, to its block."""
    return {" ".join(location["args"]): location["block"] for location in directives(server_block(parsed), "location")}


def upstreams(parsed: list[dict]) -> dict[str, list[dict]]:
    return {upstream["args"][0]: upstream["block"] for upstream in directives(only(parsed, "http")["block"], "upstream")}


def test_nginx_main_context(project, tmp_path):
    config = make_config(project)

    parsed = parse_nginx(render.render_nginx_conf(config), tmp_path)

    assert args_of(parsed, "daemon") == ["off"]
    assert args_of(parsed, "worker_processes") == ["1"]
    assert args_of(parsed, "pid") == [str(config.state_dir / "nginx" / "nginx.pid")]
    assert args_of(parsed, "error_log") == ["stderr", "warn"]
    assert args_of(only(parsed, "events")["block"], "worker_connections") == ["1024"]


def test_nginx_worker_user_only_as_root(project, tmp_path):
    parsed = parse_nginx(render.render_nginx_conf(make_config(project)), tmp_path)

    if os.geteuid() == 0:
        assert args_of(parsed, "user") == ["root"]
    else:
        assert directives(parsed, "user") == []


def test_nginx_paths_inside_state_dir(project, tmp_path):
    config = make_config(project, state_dir="run/state")
    state_dir = project / "run" / "state"

    http = only(parse_nginx(render.render_nginx_conf(config), tmp_path), "http")["block"]

    assert args_of(http, "access_log") == [str(state_dir / "logs" / "nginx-access.log"), "gateway"]
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        assert args_of(http, f"{kind}_temp_path") == [str(state_dir / "nginx" / "temp" / kind)]


def test_nginx_upstreams(project, tmp_path):
    config = make_config(
        project,
        servers={
            "broker": {"port": 8001, "instances": 2, "modules": ["broker"], "balance": "least_conn"},
            "datafeed": {"port": 8011, "instances": 3, "modules": ["datafeed"], "balance": "ip_hash"},
            "core": {"port": 8021},
        },
    )

    found = upstreams(parse_nginx(render.render_nginx_conf(config), tmp_path))

    assert list(found) == ["broker", "datafeed", "core"]
    assert [d["args"][0] for d in directives(found["broker"], "server")] == ["127.0.0.1:8001", "127.0.0.1:8002"]
    assert [d["args"][0] for d in directives(found["datafeed"], "server")] == [
        "127.0.0.1:8011",
        "127.0.0.1:8012",
        "127.0.0.1:8013",
    ]
    assert [d["args"][0] for d in directives(found["core"], "server")] == ["127.0.0.1:8021"]
    assert directives(found["broker"], "least_conn") != []
    assert directives(found["datafeed"], "ip_hash") != []
    assert [d["directive"] for d in found["core"]] == ["server", "keepalive"]
    for block in found.values():
        assert args_of(block, "keepalive") == [str(render.KEEPALIVE_CONNECTIONS)]


def test_nginx_down_instance(project, tmp_path):
    config = with_state_dir(
        make_config(
            project,
            servers={
                "broker": {"port": 8001, "instances": 2, "modules": ["broker"], "balance": "ip_hash"},
                "datafeed": {"port": 8011, "modules": ["datafeed"]},
                "core": {"port": 8021},
            },
        ),
        tmp_path / "state",
    )

    text = render.render_nginx_conf(config, down_instances={"broker-1"})

    found = upstreams(parse_nginx(text, tmp_path))
    servers = {d["args"][0]: d["args"][1:] for block in found.values() for d in directives(block, "server")}
    assert servers == {
        "127.0.0.1:8001": ["max_fails=0"],
        "127.0.0.1:8002": ["max_fails=0", "down"],
        "127.0.0.1:8011": ["max_fails=0"],
        "127.0.0.1:8021": ["max_fails=0"],
    }
    render.validate_nginx_conf(config, nginx.find_nginx(config), text)


def test_nginx_no_down_instances_unchanged(project, tmp_path):
    config = make_config(project)

    text = render.render_nginx_conf(config, down_instances=())

    assert text == render.render_nginx_conf(config)
    assert " down;" not in text
    every_instance = [instance.name for instance in config.instances()]
    assert render.render_nginx_conf(config, every_instance).count(" down;") == len(every_instance)


def test_write_valid_nginx_conf_keeps_working_file(project, tmp_path):
    config = with_state_dir(make_config(project), tmp_path / "state")
    binary = nginx.find_nginx(config)
    working = render.render_nginx_conf(config)
    assert render.write_valid_nginx_conf(config, binary, working)

    with pytest.raises(DevenvError, match="nginx rejected"):
        render.write_valid_nginx_conf(config, binary, working.replace("daemon off;", "daemon off;\nno_such_directive on;"))

    assert config.nginx_conf_path.read_text() == working
    down = render.render_nginx_conf(config, {"core-0"})
    assert render.write_valid_nginx_conf(config, binary, down)
    assert config.nginx_conf_path.read_text() == down


def test_nginx_balance_before_keepalive(project, tmp_path):
    config = make_config(
        project,
        servers={"broker": {"port": 8001, "modules": ["broker"], "balance": "ip_hash"}, "core": {"port": 8003}},
    )

    found = upstreams(parse_nginx(render.render_nginx_conf(config), tmp_path))

    order = [d["directive"] for d in found["broker"]]
    assert order.index("ip_hash") < order.index("keepalive")


def test_nginx_upgrade_map(project, tmp_path):
    http = only(parse_nginx(render.render_nginx_conf(make_config(project)), tmp_path), "http")["block"]

    upgrade_map = only(http, "map")
    assert upgrade_map["args"] == ["$http_upgrade", "$connection_upgrade"]
    assert {d["directive"]: d["args"] for d in upgrade_map["block"]} == {"default": ["upgrade"], "": [""]}


def test_nginx_server_headers(project, tmp_path):
    config = make_config(project, gateway={"port": 9000})

    server = server_block(parse_nginx(render.render_nginx_conf(config), tmp_path))

    assert args_of(server, "listen") == ["127.0.0.1:9000"]
    assert args_of(server, "proxy_http_version") == ["1.1"]
    headers = {d["args"][0]: d["args"][1] for d in directives(server, "proxy_set_header")}
    assert headers == {
        "Host": "$http_host",
        "X-Real-IP": "$remote_addr",
        "X-Forwarded-For": "$proxy_add_x_forwarded_for",
        "X-Forwarded-Proto": "$scheme",
        "Upgrade": "$http_upgrade",
        "Connection": "$connection_upgrade",
    }


def test_nginx_locations_path_strategy(project, tmp_path):
    found = locations(parse_nginx(render.render_nginx_conf(make_config(project)), tmp_path))

    assert [key for key in found if not key.startswith("@")] == [
        "= /api/v1/broker/ws",
        "/api/v1/broker/",
        "= /api/v1/datafeed/ws",
        "/api/v1/datafeed/",
        f"= {render.GATEWAY_HEALTH_PATH}",
        "/",
    ]
    assert args_of(found["/api/v1/broker/"], "proxy_pass") == ["http://broker"]
    assert args_of(found["/api/v1/datafeed/"], "proxy_pass") == ["http://datafeed"]
    assert args_of(found["/"], "proxy_pass") == ["http://core"]
    assert directives(found["/"], "proxy_read_timeout") == []


@pytest.mark.parametrize("module", ["broker", "datafeed"])
def test_nginx_websocket_location(module, project, tmp_path):
    found = locations(parse_nginx(render.render_nginx_conf(make_config(project)), tmp_path))
    websocket = found[f"= /api/v1/{module}/ws"]

    assert args_of(websocket, "proxy_pass") == [f"http://{module}"]
    for timeout in ("proxy_read_timeout", "proxy_send_timeout"):
        (value,) = args_of(websocket, timeout)
        assert value.endswith("s")
        assert int(value[:-1]) > NGINX_DEFAULT_TIMEOUT_S


def test_nginx_query_param_strategy(project, tmp_path):
    config = make_config(
        project,
        websocket={"routing_strategy": "query_param", "query_param_name": "stream"},
        websocket_routes={"bars": "datafeed", "orders": "broker", "default": "broker"},
    )

    parsed = parse_nginx(render.render_nginx_conf(config), tmp_path)

    route_map = directives(only(parsed, "http")["block"], "map")[1]
    assert route_map["args"] == ["$arg_stream", "$websocket_upstream"]
    # A route spelt like the map keyword `default` is escaped, so it stays a route.
    assert [(d["directive"], d["args"]) for d in route_map["block"]] == [
        ("default", ["core"]),
        ("bars", ["datafeed"]),
        ("orders", ["broker"]),
        ("\\default", ["broker"]),
    ]
    websocket = locations(parsed)["= /api/v1/ws"]
    assert args_of(websocket, "proxy_pass") == ["http://$websocket_upstream"]
    assert int(args_of(websocket, "proxy_read_timeout")[0][:-1]) > NGINX_DEFAULT_TIMEOUT_S
    assert "= /api/v1/broker/ws" in locations(parsed)


def test_nginx_gateway_health_location(project, tmp_path):
    config = make_config(project)

    found = locations(parse_nginx(render.render_nginx_conf(config), tmp_path))

    block = found[f"= {render.GATEWAY_HEALTH_PATH}"]
    assert directives(block, "proxy_pass") == []
    assert args_of(block, "return")[0] == "200"
    assert args_of(block, "default_type") == ["application/json"]


def test_nginx_error_pages_json(project, tmp_path):
    config = make_config(project, servers={
        "broker": {"port": 8001, "instances": 2, "modules": ["broker"]},
        "core": {"port": 8003},
    })

    found = locations(parse_nginx(render.render_nginx_conf(config), tmp_path))

    pages = {tuple(d["args"]) for d in directives(found["/api/v1/broker/"], "error_page")}
    assert pages == {("502", "503", "=", "@broker_unavailable"), ("504", "=", "@broker_timeout")}
    unavailable = found["@broker_unavailable"]
    assert args_of(unavailable, "default_type") == ["application/json"]
    status, body = args_of(unavailable, "return")
    assert status == "502"
    # crossplane keeps nginx's escape sequences, so the body ends in a literal backslash and n.
    assert body.endswith("\\n")
    assert json.loads(body.removesuffix("\\n")) == {
        "detail": "server broker is not running or not accepting connections on port 8001, port 8002; check devenv status",
        "server": "broker",
    }
    status, body = args_of(found["@core_timeout"], "return")
    assert status == "504"
    assert json.loads(body.removesuffix("\\n"))["server"] == "core"


def test_nginx_hostile_state_dir(tmp_path):
    """A state_dir with spaces, quotes and nginx syntax stays one quoted argument."""
    root = tmp_path / "my project; {x} #1 \"q\" 'a' back\\slash"
    (root / "src").mkdir(parents=True)
    config = parse_config({"watch": {"dirs": ["src"]}, "servers": {"core": {"port": 8003}}}, root / "c.yaml")

    text = render.render_nginx_conf(config)
    parsed = parse_nginx(text, tmp_path)
    render.validate_nginx_conf(config, nginx.find_nginx(config), text)

    # crossplane unquotes the argument but keeps the escaped backslash.
    pid_path = str(root / ".local" / "nginx" / "nginx.pid").replace("\\", "\\\\")
    assert args_of(parsed, "pid") == [pid_path]


def test_nginx_ipv6_and_wildcard_hosts(project, tmp_path):
    for host, listen, upstream in [
        ("0.0.0.0", "0.0.0.0:8000", "127.0.0.1:8003"),
        ("::", "[::]:8000", "[::1]:8003"),
        ("::1", "[::1]:8000", "[::1]:8003"),
        ("localhost", "127.0.0.1:8000", "127.0.0.1:8003"),
    ]:
        config = make_config(project, host=host, servers={"core": {"port": 8003}})
        parsed = parse_nginx(render.render_nginx_conf(config), tmp_path)
        assert args_of(server_block(parsed), "listen") == [listen], host
        assert args_of(upstreams(parsed)["core"], "server")[0] == upstream, host


@pytest.mark.parametrize("path", EXAMPLE_CONFIGS, ids=lambda path: path.name)
def test_example_config_passes_nginx_test(path, tmp_path):
    config = with_state_dir(load_config(path), tmp_path / "state")
    text = render.render_nginx_conf(config)

    render.validate_nginx_conf(config, nginx.find_nginx(config), text)

    assert locations(parse_nginx(text, tmp_path))["/"][0]["args"] == [f"http://{config.core_server}"]


def test_scaled_example_config(tmp_path):
    config = load_config(REPO_ROOT / "config" / "scaled.yaml")

    found = upstreams(parse_nginx(render.render_nginx_conf(config), tmp_path))

    assert len(directives(found["broker"], "server")) == 2
    assert directives(found["broker"], "ip_hash") != []
    assert directives(found["datafeed"], "least_conn") != []


# The Procfile, parsed with honcho and shlex


def procfile_lines(config: DevConfig, python: str = "/venv/bin/python") -> dict[str, list[str]]:
    """Render the Procfile and split each process's command into shell words."""
    text = render.render_procfile(config, FAKE_NGINX, python=python)
    return {name: shlex.split(command) for name, command in parse_procfile(text).processes.items()}


def option_values(words: list[str], option: str) -> list[str]:
    return [words[i + 1] for i, word in enumerate(words) if word == option]


def test_procfile_process_names(project):
    config = make_config(project, servers={
        "broker": {"port": 8001, "modules": ["broker"]},
        "datafeed": {"port": 8002, "instances": 2, "modules": ["datafeed"]},
        "core": {"port": 8004},
    })

    assert list(procfile_lines(config)) == ["nginx", "broker-0", "datafeed-0", "datafeed-1", "core-0"]


def test_procfile_nginx_line(project):
    config = make_config(project)

    words = procfile_lines(config)["nginx"]

    assert words == [
        "exec", str(FAKE_NGINX),
        "-p", f"{config.state_dir}/nginx/",
        "-c", str(config.state_dir / "nginx" / "nginx.conf"),
        "-e", "stderr",
    ]


def test_procfile_uvicorn_line(project):
    config = make_config(project)

    words = procfile_lines(config)["datafeed-0"]

    assert words[:8] == [
        "ENABLED_MODULES=datafeed",
        "PYTHONUNBUFFERED=1",
        "exec",
        "/venv/bin/python",
        "-m",
        "uvicorn",
        "trading_api.main:app",
        "--host",
    ]
    assert option_values(words, "--host") == ["127.0.0.1"]
    assert option_values(words, "--port") == ["8002"]
    assert "--proxy-headers" in words
    assert option_values(words, "--forwarded-allow-ips") == ["127.0.0.1"]
    assert "--no-access-log" in words
    assert "--reload" in words
    assert option_values(words, "--reload-dir") == [str(project / "backend" / "src")]


def test_procfile_wildcard_host_trusts_loopback(project):
    words = procfile_lines(make_config(project, host="0.0.0.0"))["core-0"]

    assert option_values(words, "--host") == ["0.0.0.0"]
    assert option_values(words, "--forwarded-allow-ips") == ["127.0.0.1"]


def test_procfile_core_has_empty_modules(project):
    words = procfile_lines(make_config(project))["core-0"]

    assert words[0] == "ENABLED_MODULES="


def test_procfile_custom_modules_env_and_app(project):
    config = make_config(project, modules_env="APP_MODULES", app="service.asgi:application")

    words = procfile_lines(config)["broker-0"]

    assert words[0] == "APP_MODULES=broker"
    assert words[6] == "service.asgi:application"


def test_procfile_access_log_and_no_reload(project):
    config = make_config(project, servers={
        "broker": {"port": 8001, "modules": ["broker"], "access_log": True, "reload": False},
        "core": {"port": 8003},
    })

    words = procfile_lines(config)["broker-0"]

    assert "--no-access-log" not in words
    assert "--reload" not in words
    assert option_values(words, "--reload-dir") == []
    assert option_values(words, "--reload-exclude") == []


def test_procfile_reload_excludes(project):
    config = make_config(project, watch={"exclude": ["backend/src/trading_api/openapi.json", "backend/src/generated"]})
    (project / "backend" / "src" / "generated").mkdir()
    render.create_excluded_dirs(config)
    modules = project / MODULES_ROOT
    common = {
        str(project / ".local"),
        str(project / "backend" / "src" / "trading_api" / "clients"),
        str(project / "scripts"),
        str(project / "backend" / "src" / "generated"),
        # A path that is not a directory is passed relative to root, as a pattern.
        "backend/src/trading_api/openapi.json",
    }

    lines = procfile_lines(config)

    assert set(option_values(lines["broker-0"], "--reload-exclude")) == common | {
        str(modules / "broker" / "specs"),
        str(modules / "datafeed"),
    }
    assert set(option_values(lines["datafeed-0"], "--reload-exclude")) == common | {
        str(modules / "datafeed" / "specs"),
        str(modules / "broker"),
    }
    assert set(option_values(lines["core-0"], "--reload-exclude")) == common | {
        str(modules / "broker"),
        str(modules / "datafeed"),
    }


def test_procfile_leaves_out_missing_dirs(project):
    """uvicorn fails at startup on an absolute exclude path that is not a directory."""
    config = make_config(project, servers={
        "broker": {"port": 8001, "modules": ["broker", "reports"]},
        "core": {"port": 8003},
    })

    excludes = option_values(procfile_lines(config)["core-0"], "--reload-exclude")

    assert excludes == [str(project / MODULES_ROOT / "broker")]


def uvicorn_file_filter(words: list[str]) -> FileFilter:
    """Build uvicorn's own reload filter from a Procfile line's options."""
    config = UvicornConfig(
        app="trading_api.main:app",
        reload=True,
        reload_dirs=option_values(words, "--reload-dir"),
        reload_excludes=option_values(words, "--reload-exclude"),
    )
    return FileFilter(config)


def test_reload_filter_per_server(project):
    """uvicorn's filter, fed the rendered options, reloads a server for its own code only."""
    config = make_config(project, watch={"exclude": ["backend/src/trading_api/generated.py"]})
    render.create_excluded_dirs(config)
    src = project / "backend" / "src" / "trading_api"
    lines = procfile_lines(config)

    broker = uvicorn_file_filter(lines["broker-0"])
    core = uvicorn_file_filter(lines["core-0"])

    assert broker(src / "modules" / "broker" / "deep" / "er" / "router.py")
    assert not broker(src / "modules" / "datafeed" / "deep" / "er" / "router.py")
    assert broker(src / "core" / "router.py")
    assert not core(src / "modules" / "broker" / "router.py")
    assert core(src / "main.py")
    for server_filter in (broker, core):
        assert not server_filter(src / "clients" / "a" / "b" / "client.py")
        assert not server_filter(src / "generated.py")


def test_procfile_quotes_hostile_paths(tmp_path):
    """Paths with shell syntax reach the program as the exact arguments, through /bin/sh."""
    root = tmp_path / "it's `x` \"dir\" \\ ;&|"
    watched = root / "src" / "$(touch pwned)"
    watched.mkdir(parents=True)
    config = parse_config(
        {
            "watch": {"dirs": ["src/$(touch pwned)"]},
            "servers": {"core": {"port": 8003}, "broker": {"port": 8001, "modules": ["broker"]}},
        },
        root / "c.yaml",
    )
    report = tmp_path / "report.json"
    fake_python = tmp_path / "fake-python"
    fake_python.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"json.dump({{'argv': sys.argv[1:], 'modules': os.environ.get('ENABLED_MODULES'),"
        f" 'unbuffered': os.environ.get('PYTHONUNBUFFERED')}}, open({str(report)!r}, 'w'))\n"
    )
    fake_python.chmod(fake_python.stat().st_mode | stat.S_IXUSR)
    text = render.render_procfile(config, FAKE_NGINX, python=str(fake_python))
    command = parse_procfile(text).processes["broker-0"]

    subprocess.run(["/bin/sh", "-c", command], check=True, cwd=tmp_path, env={"PATH": "/usr/bin:/bin"}, timeout=30)

    result = json.loads(report.read_text())
    assert result["modules"] == "broker"
    assert result["unbuffered"] == "1"
    assert result["argv"] == shlex.split(command)[4:]
    assert option_values(result["argv"], "--reload-dir") == [str(watched)]
    assert not (tmp_path / "pwned").exists()
    assert not (root / "pwned").exists()


def test_procfile_comment_stays_one_line(tmp_path):
    config_dir = tmp_path / "conf\nweb: exec evil"
    (tmp_path / "src").mkdir()
    config_dir.mkdir()
    config = parse_config(
        {"root": "..", "watch": {"dirs": ["src"]}, "servers": {"core": {"port": 8003}}}, config_dir / "c.yaml"
    )

    text = render.render_procfile(config, FAKE_NGINX)

    assert list(parse_procfile(text).processes) == ["nginx", "core-0"]
    assert text.splitlines()[0].startswith("# Generated by devenv from ")


def test_honcho_check_accepts_procfile(project, tmp_path):
    procfile = tmp_path / "Procfile"
    procfile.write_text(render.render_procfile(make_config(project), FAKE_NGINX))

    result = subprocess.run(
        [sys.executable, "-m", "honcho", "-f", str(procfile), "check"], capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert "nginx, broker-0, datafeed-0, core-0" in result.stderr


# Writing


def test_write_if_changed(tmp_path):
    path = tmp_path / "sub" / "file.conf"

    assert render.write_if_changed(path, "one\n") is True
    first_mtime = path.stat().st_mtime_ns
    os.utime(path, ns=(first_mtime - 10**9, first_mtime - 10**9))
    assert render.write_if_changed(path, "one\n") is False
    assert path.stat().st_mtime_ns == first_mtime - 10**9
    assert render.write_if_changed(path, "two\n") is True
    assert path.read_text() == "two\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["file.conf"]


def test_prepare_writes_and_validates(project):
    config = make_config(project)

    prepared = render.prepare(config)

    assert prepared.procfile_path == project / "Procfile"
    assert prepared.nginx_conf_path.read_text() == render.render_nginx_conf(config)
    assert prepared.procfile_path.read_text() == render.render_procfile(config, prepared.nginx_binary)
    for path in render.excluded_dirs(config):
        assert path.is_dir()
    assert not (config.nginx_dir / "nginx.conf.candidate").exists()


def test_prepare_keeps_unchanged_files(project):
    config = make_config(project)
    prepared = render.prepare(config)
    old = prepared.procfile_path.stat().st_mtime_ns - 10**9
    for path in (prepared.procfile_path, prepared.nginx_conf_path):
        os.utime(path, ns=(old, old))

    render.prepare(config)

    assert prepared.procfile_path.stat().st_mtime_ns == old
    assert prepared.nginx_conf_path.stat().st_mtime_ns == old


# The gen and check commands


def run_devenv(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["devenv", *args])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


@pytest.fixture
def config_file(project: Path) -> Path:
    path = project / "config" / "dev.yaml"
    path.parent.mkdir()
    path.write_text(
        "root: ..\n"
        "servers:\n"
        "  broker: {port: 8001, modules: [broker]}\n"
        "  core: {port: 8003}\n"
    )
    return path


@pytest.mark.parametrize("kind", ["procfile", "nginx"])
def test_gen_prints_to_stdout(kind, config_file, monkeypatch, capsys):
    config = load_config(config_file)
    expected = {
        "procfile": lambda: render.render_procfile(config, nginx.find_nginx(config)),
        "nginx": lambda: render.render_nginx_conf(config),
    }[kind]()

    code, out, err = run_devenv(["gen", kind, str(config_file)], monkeypatch, capsys)

    assert code == 0
    assert out == expected
    assert err == ""


@pytest.mark.parametrize("kind", ["procfile", "nginx"])
def test_gen_output_written_when_changed(kind, config_file, tmp_path, monkeypatch, capsys):
    output = tmp_path / "out" / kind

    code, out, err = run_devenv(["gen", kind, str(config_file), "-o", str(output)], monkeypatch, capsys)
    old = output.stat().st_mtime_ns - 10**9
    os.utime(output, ns=(old, old))
    again = run_devenv(["gen", kind, str(config_file), "-o", str(output)], monkeypatch, capsys)

    assert (code, out, err) == (0, "", f"wrote {output}\n")
    assert again == (0, "", f"{output} is up to date\n")
    assert output.stat().st_mtime_ns == old


def test_gen_nginx_validate(config_file, monkeypatch, capsys):
    code, out, _ = run_devenv(["gen", "nginx", str(config_file), "--validate"], monkeypatch, capsys)

    assert code == 0
    assert "upstream broker {" in out


def test_check_writes_both_files(config_file, project, monkeypatch, capsys):
    code, out, _ = run_devenv(["check", str(config_file)], monkeypatch, capsys)

    assert code == 0
    assert (project / "Procfile").is_file()
    assert (project / ".local" / "nginx" / "nginx.conf").is_file()
    assert out == (
        f"{config_file}: valid; wrote {project / 'Procfile'} and "
        f"{project / '.local' / 'nginx' / 'nginx.conf'} (nginx -t passed)\n"
    )
