"""Fixtures shared by every test package: free TCP ports on 127.0.0.1."""

from __future__ import annotations

import socket

import pytest

HOST = "127.0.0.1"
PORT_SEARCH_ATTEMPTS = 50


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def find_free_port_block(count: int, exclude: set[int] | None = None) -> list[int]:
    """Return `count` consecutive ports that are free now, none of them in `exclude`.

    The first port comes from binding port 0, so parallel test workers get
    different ports from the kernel; the following ones are probed by binding.
    """
    exclude = exclude or set()
    for _ in range(PORT_SEARCH_ATTEMPTS):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as anchor:
            anchor.bind((HOST, 0))
            first = anchor.getsockname()[1]
        block = list(range(first, first + count))
        if block[-1] > 65535 or exclude.intersection(block):
            continue
        if all(_bindable(port) for port in block):
            return block
    raise RuntimeError(f"found no {count} consecutive free ports on {HOST} in {PORT_SEARCH_ATTEMPTS} attempts")


@pytest.fixture
def free_port_block():
    """Return a function that picks consecutive free ports, distinct from those it returned before."""
    returned_ports: set[int] = set()

    def pick(count: int = 1) -> list[int]:
        block = find_free_port_block(count, returned_ports)
        returned_ports.update(block)
        return block

    return pick
