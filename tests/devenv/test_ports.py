"""Tests of devenv.ports on real sockets bound to 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import psutil

from devenv import ports

HOST = "127.0.0.1"


def listen_on_free_port() -> socket.socket:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind((HOST, 0))
    server.listen()
    return server


def test_is_port_free_for_listening_socket():
    server = listen_on_free_port()
    port = server.getsockname()[1]
    try:
        assert ports.is_port_free(HOST, port) is False
    finally:
        server.close()
    assert ports.is_port_free(HOST, port) is True


def test_find_port_holder_names_this_process():
    server = listen_on_free_port()
    port = server.getsockname()[1]
    try:
        holder = ports.find_port_holder(port)
    finally:
        server.close()
    assert holder.port == port
    assert holder.pid == os.getpid()
    assert holder.name == psutil.Process().name()
    assert f"pid {os.getpid()}" in holder.describe()


def test_find_port_holder_names_topmost_sharer():
    # A parent and a child share one listening socket, like a uvicorn reloader and its
    # server process; the parent is the one to stop. The child inherits the socket.
    script = (
        "import os, socket, subprocess, sys, time\n"
        "server = socket.socket()\n"
        f"server.bind(({HOST!r}, 0))\n"
        "server.listen()\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], pass_fds=[server.fileno()])\n"
        "print(server.getsockname()[1], child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        port, child_pid = (int(value) for value in parent.stdout.readline().split())
        for pid in (parent.pid, child_pid):
            connections = psutil.Process(pid).net_connections(kind="tcp")
            assert [c.laddr.port for c in connections if c.status == psutil.CONN_LISTEN] == [port]

        holder = ports.find_port_holder(port)
    finally:
        for process in psutil.Process(parent.pid).children(recursive=True):
            process.kill()
        parent.kill()
        parent.wait()
    assert holder.pid == parent.pid


def test_find_port_holder_unknown_port(free_port_block):
    port = free_port_block(1)[0]
    holder = ports.find_port_holder(port)
    assert holder.pid is None
    assert holder.describe() == "a process this user cannot see"


def test_find_busy_ports_keeps_order(free_port_block):
    first = listen_on_free_port()
    second = listen_on_free_port()
    free = free_port_block(1)[0]
    busy_ports = [second.getsockname()[1], free, first.getsockname()[1]]
    try:
        busy = ports.find_busy_ports(HOST, busy_ports)
    finally:
        first.close()
        second.close()
    assert [holder.port for holder in busy] == [busy_ports[0], busy_ports[2]]
    assert all(holder.pid == os.getpid() for holder in busy)


def test_wait_for_ports_free_times_out():
    server = listen_on_free_port()
    port = server.getsockname()[1]
    started = time.monotonic()
    try:
        still_busy = ports.wait_for_ports_free(HOST, [port], timeout_s=0.5)
    finally:
        server.close()
    elapsed = time.monotonic() - started
    assert still_busy == [port]
    assert 0.5 <= elapsed < 1.5


def test_wait_for_ports_free_returns_on_release():
    server = listen_on_free_port()
    port = server.getsockname()[1]
    closer = threading.Timer(0.3, server.close)
    closer.start()
    started = time.monotonic()
    still_busy = ports.wait_for_ports_free(HOST, [port], timeout_s=5.0)
    elapsed = time.monotonic() - started
    closer.join()
    assert still_busy == []
    assert elapsed < 2.0


def test_port_free_after_client_connection_closed():
    # A connection closed by the server leaves its socket in TIME_WAIT. uvicorn
    # and nginx listen with SO_REUSEADDR, which lets a new server bind anyway,
    # so the port must count as free.
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((HOST, 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection((HOST, port))
    accepted, _ = server.accept()
    accepted.close()
    client.close()
    server.close()
    assert ports.is_port_free(HOST, port) is True
