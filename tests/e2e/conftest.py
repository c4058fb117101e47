"""Fixtures that run the real stack through the devenv CLI: `make_stack` and `stack`.

`make_stack(...)` writes a config with free ports into tmp_path and returns an
e2e_stack.Stack. Every stack is stopped at teardown, and the test fails if any
process it started is still running or any of its ports is busy.
"""

from __future__ import annotations

import os
import uuid

import pytest
from e2e_stack import (
    DEFAULT_SERVERS,
    HOST,
    PORT_RELEASE_TIMEOUT_S,
    STACK_MARKER_ENV,
    Stack,
    kill_quietly,
    write_stack_config,
)

from devenv import ports as devenv_ports


@pytest.fixture
def make_stack(tmp_path, free_port_block):
    """Return a factory of test stacks; each one is stopped and checked for leftovers at teardown.

    `servers` maps server names to their settings without `port` (ports are
    picked free); servers run with `reload: false` unless their settings set
    `reload`. `overrides` replaces top-level config keys.
    """
    stacks: list[Stack] = []

    def make(servers: dict[str, dict] | None = None, overrides: dict | None = None, env: dict | None = None) -> Stack:
        servers = servers if servers is not None else DEFAULT_SERVERS
        directory = tmp_path / f"stack{len(stacks)}"
        directory.mkdir()
        gateway_port = free_port_block(1)[0]
        server_ports = {name: free_port_block(settings.get("instances", 1))[0] for name, settings in servers.items()}
        config_path = write_stack_config(directory, gateway_port, server_ports, servers, overrides)
        instance_ports = {
            f"{name}-{index}": server_ports[name] + index
            for name, settings in servers.items()
            for index in range(settings.get("instances", 1))
        }
        marker = uuid.uuid4().hex
        stack = Stack(
            config_path=config_path,
            state_dir=directory / "state",
            gateway_port=gateway_port,
            instance_ports=instance_ports,
            marker=marker,
            env={**os.environ, **(env or {}), STACK_MARKER_ENV: marker},
        )
        stacks.append(stack)
        return stack

    yield make

    problems = []
    for stack in stacks:
        result = stack.stop()
        if result.returncode != 0:
            problems.append(f"devenv stop failed at teardown: {result.stderr.strip()}")
        leftovers = stack.live_processes()
        for process in leftovers:
            problems.append(f"process left running: pid {process.pid} {' '.join(process.cmdline())}")
            kill_quietly(process)
        busy = devenv_ports.wait_for_ports_free(HOST, stack.ports, PORT_RELEASE_TIMEOUT_S)
        if busy:
            problems.append(f"ports still busy after teardown: {busy}")
    assert not problems, "\n".join(problems)


@pytest.fixture
def stack(make_stack) -> Stack:
    """A stack of the default servers (core, broker, datafeed) running the config's default app."""
    return make_stack()
