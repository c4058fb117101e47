"""Tests of devenv.health against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import http.server
import socket
import threading
import time

import pytest

from devenv import health

HOST = "127.0.0.1"


class HealthHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        status = 200 if self.path == "/health" else 500
        body = b'{"status":"ok"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


def serve_http(port: int = 0) -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer((HOST, port), HealthHandler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


@pytest.fixture
def http_server():
    server = serve_http()
    yield server
    server.shutdown()
    server.server_close()


def url_of(server: http.server.HTTPServer, path: str) -> str:
    return f"http://{HOST}:{server.server_address[1]}{path}"


def test_check_health_ok(http_server):
    result = health.check_health(url_of(http_server, "/health"))
    assert result.healthy is True
    assert result.status_code == 200
    assert result.error is None
    assert 0 <= result.elapsed_s < 1
    assert result.describe().startswith("HTTP 200 in ")


def test_check_health_server_error(http_server):
    result = health.check_health(url_of(http_server, "/broken"))
    assert result.healthy is False
    assert result.status_code == 500


def test_check_health_connection_refused(free_port_block):
    port = free_port_block(1)[0]
    result = health.check_health(f"http://{HOST}:{port}/health", timeout_s=1)
    assert result.healthy is False
    assert result.status_code is None
    assert result.error == "connection refused or reset"


def test_check_health_times_out():
    # A listening socket that never accepts: the TCP handshake completes, no response comes.
    silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    silent.bind((HOST, 0))
    silent.listen()
    started = time.monotonic()
    try:
        result = health.check_health(f"http://{HOST}:{silent.getsockname()[1]}/health", timeout_s=0.3)
    finally:
        silent.close()
    assert result.healthy is False
    assert result.error == "timed out"
    assert time.monotonic() - started < 2


def test_check_health_ignores_proxy_variables(http_server, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "")
    assert health.check_health(url_of(http_server, "/health")).healthy is True


def test_wait_until_healthy_waits_for_server(free_port_block):
    port = free_port_block(1)[0]
    servers = []
    starter = threading.Timer(0.5, lambda: servers.append(serve_http(port)))
    starter.start()
    try:
        results = health.wait_until_healthy([f"http://{HOST}:{port}/health"], timeout_s=10)
    finally:
        starter.join()
        for server in servers:
            server.shutdown()
            server.server_close()
    assert results[f"http://{HOST}:{port}/health"].healthy is True


def test_wait_until_healthy_times_out(http_server):
    ok_url = url_of(http_server, "/health")
    bad_url = url_of(http_server, "/broken")
    started = time.monotonic()
    results = health.wait_until_healthy([ok_url, bad_url], timeout_s=0.6)
    elapsed = time.monotonic() - started
    assert results[ok_url].healthy is True
    assert results[bad_url].healthy is False
    assert results[bad_url].status_code == 500
    assert 0.6 <= elapsed < 2


def test_wait_until_healthy_stops_on_request(http_server):
    started = time.monotonic()
    results = health.wait_until_healthy([url_of(http_server, "/broken")], timeout_s=30, should_stop=lambda: True)
    assert time.monotonic() - started < 2
    assert results[url_of(http_server, "/broken")].healthy is False


def test_check_all_probes_in_parallel(http_server):
    silent_sockets = []
    for _ in range(3):
        silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        silent.bind((HOST, 0))
        silent.listen()
        silent_sockets.append(silent)
    silent_urls = [f"http://{HOST}:{silent.getsockname()[1]}/health" for silent in silent_sockets]
    ok_url = url_of(http_server, "/health")

    started = time.monotonic()
    try:
        results = health.check_all([*silent_urls, ok_url, ok_url], timeout_s=0.5)
    finally:
        for silent in silent_sockets:
            silent.close()
    elapsed = time.monotonic() - started

    assert list(results) == [*silent_urls, ok_url]
    assert all(results[url].error == "timed out" for url in silent_urls)
    assert results[ok_url].healthy is True
    assert elapsed < 1.2
