"""Check whether TCP ports are free and find the process that listens on a busy one."""

from __future__ import annotations

import errno
import socket
import time
from dataclasses import dataclass

import psutil

PORT_POLL_INTERVAL_S = 0.1


@dataclass(frozen=True)
class PortHolder:
    """A process that listens on a port; pid and name are None when the OS hides them."""

    port: int
    pid: int | None
    name: str | None

    def describe(self) -> str:
        """Return "pid 4121 (nginx)", or a placeholder when the holder is hidden."""
        if self.pid is None:
            return "a process this user cannot see"
        return f"pid {self.pid} ({self.name or 'unknown name'})"


def is_port_free(host: str, port: int) -> bool:
    """Return whether a server could bind host:port now.

    `host` is resolved like uvicorn does, taking the first address. The probe socket sets SO_REUSEADDR like uvicorn and nginx do, so a port
    whose old connections linger in TIME_WAIT counts as free.
    """
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def find_port_holder(port: int) -> PortHolder:
    """Return the process that listens on a TCP port, as far as psutil can see it.

    Several processes can share one listening socket (an nginx master and its
    workers, a uvicorn reloader and its server process), but psutil reports only
    one of them. This returns the topmost process that shares it, because that is the one to stop.
    """
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return PortHolder(port=port, pid=None, name=None)

    for connection in connections:
        if connection.status != psutil.CONN_LISTEN or not connection.laddr:
            continue
        if connection.laddr.port != port or connection.pid is None:
            continue
        try:
            process = _topmost_listener(psutil.Process(connection.pid), port)
            return PortHolder(port=port, pid=process.pid, name=process.name())
        except psutil.NoSuchProcess:
            continue
        except psutil.AccessDenied:
            return PortHolder(port=port, pid=connection.pid, name=None)
    return PortHolder(port=port, pid=None, name=None)


def _topmost_listener(process: psutil.Process, port: int) -> psutil.Process:
    """Walk up from `process` while the parent listens on `port` too."""
    while True:
        parent = process.parent()
        if parent is None:
            return process
        try:
            listens = any(
                connection.status == psutil.CONN_LISTEN and connection.laddr and connection.laddr.port == port
                for connection in parent.net_connections(kind="tcp")
            )
        except (psutil.AccessDenied, psutil.NoSuchProcess):
            return process
        if not listens:
            return process
        process = parent


def find_busy_ports(host: str, ports: list[int]) -> list[PortHolder]:
    """Return a holder for each port in `ports` that cannot be bound now, in the given order."""
    return [find_port_holder(port) for port in ports if not is_port_free(host, port)]


def wait_for_ports_free(host: str, ports: list[int], timeout_s: float) -> list[int]:
    """Wait until every port is free or the timeout passes; return the ports still busy."""
    deadline = time.monotonic() + timeout_s
    busy = [port for port in ports if not is_port_free(host, port)]
    while busy and time.monotonic() < deadline:
        time.sleep(PORT_POLL_INTERVAL_S)
        busy = [port for port in busy if not is_port_free(host, port)]
    return busy
