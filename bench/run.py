"""Benchmarks of the running stack: gateway overhead and time to healthy.

Each figure is measured side by side with its baseline in the same run, so a
noisy machine shifts both:

- gateway: requests per second to `GET {api}/health` through nginx versus
  straight to the core instance, with the same client, and their ratio.
- start: seconds for `devenv start` to return with every process healthy
  versus one bare `uvicorn` process answering its health check, and their ratio.

Everything listens on free ports of 127.0.0.1. Run with `make bench`.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
API = "/api/v1"
REQUESTS_PER_CLIENT = 400
CLIENTS = 4
START_ROUNDS = 3
HEALTH_TIMEOUT_S = 60.0


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            probe = socket.socket()
            probe.bind((HOST, 0))
            sockets.append(probe)
        return [probe.getsockname()[1] for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


def write_config(directory: Path) -> tuple[Path, int, int]:
    """Write a three-server config without reload; return its path, the gateway port and core's port."""
    directory.mkdir(parents=True, exist_ok=True)
    gateway, broker, datafeed, core = free_ports(4)
    config = {
        "root": str(REPO_ROOT),
        "state_dir": str(directory / "state"),
        "gateway": {"port": gateway},
        "servers": {
            "broker": {"port": broker, "modules": ["broker"], "reload": False},
            "datafeed": {"port": datafeed, "modules": ["datafeed"], "reload": False},
            "core": {"port": core, "reload": False},
        },
    }
    path = directory / "bench-config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path, gateway, core


def devenv(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "devenv", *args], cwd=REPO_ROOT, check=True, capture_output=True, text=True)


def measure_throughput(url: str) -> float:
    """Return requests per second of CLIENTS keep-alive clients, each sending REQUESTS_PER_CLIENT requests."""

    def run_client() -> None:
        with httpx.Client(timeout=5) as client:
            for _ in range(REQUESTS_PER_CLIENT):
                client.get(url).raise_for_status()

    with httpx.Client(timeout=5) as warmup:
        for _ in range(20):
            warmup.get(url).raise_for_status()
    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        for future in [pool.submit(run_client) for _ in range(CLIENTS)]:
            future.result()
    return CLIENTS * REQUESTS_PER_CLIENT / (time.perf_counter() - started)


def bench_gateway(directory: Path) -> None:
    config, gateway, core = write_config(directory)
    devenv("start", str(config))
    try:
        direct, through = [], []
        # Alternate the two so drift in machine load affects both equally.
        for _ in range(3):
            direct.append(measure_throughput(f"http://{HOST}:{core}{API}/health"))
            through.append(measure_throughput(f"http://{HOST}:{gateway}{API}/health"))
    finally:
        devenv("stop", str(config))
    direct_rps, gateway_rps = statistics.median(direct), statistics.median(through)
    print(f"gateway: direct {direct_rps:8.0f} req/s, through nginx {gateway_rps:8.0f} req/s, "
          f"ratio {gateway_rps / direct_rps:.2f} (baseline: direct to core-0)")


def wait_healthy(url: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise SystemExit(f"bench: {url} did not become healthy within {HEALTH_TIMEOUT_S} s")


def time_bare_uvicorn() -> float:
    (port,) = free_ports(1)
    command = [sys.executable, "-m", "uvicorn", "trading_api.main:app", "--host", HOST, "--port", str(port), "--no-access-log"]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO_ROOT, env={**os.environ, "ENABLED_MODULES": "all"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(f"http://{HOST}:{port}{API}/health", time.monotonic() + HEALTH_TIMEOUT_S)
        return time.perf_counter() - started
    finally:
        process.terminate()
        process.wait(timeout=10)


def time_devenv_start(directory: Path) -> float:
    config, _, _ = write_config(directory)
    started = time.perf_counter()
    devenv("start", str(config))
    elapsed = time.perf_counter() - started
    devenv("stop", str(config))
    return elapsed


def bench_start(directory: Path) -> None:
    bare, managed = [], []
    for round_index in range(START_ROUNDS):
        bare.append(time_bare_uvicorn())
        managed.append(time_devenv_start(directory / f"start{round_index}"))
    bare_s, managed_s = statistics.median(bare), statistics.median(managed)
    print(f"start:   bare uvicorn {bare_s:6.2f} s, devenv start (4 processes, healthy) {managed_s:6.2f} s, "
          f"ratio {managed_s / bare_s:.2f} (baseline: one bare uvicorn)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["gateway", "start"], help="run only this benchmark")
    only = parser.parse_args().only
    selected = [only] if only else ["gateway", "start"]
    with tempfile.TemporaryDirectory(prefix="devenv-bench-") as temp:
        directory = Path(temp)
        if "gateway" in selected:
            bench_gateway(directory / "gateway")
        if "start" in selected:
            bench_start(directory / "start")


if __name__ == "__main__":
    main()
