"""Keep the running gateway's upstreams in step with the instances that can serve.

A uvicorn reloader whose server process exited (an app that fails to import,
for example) keeps its listening socket open. The kernel accepts connections
to it that no process serves, so nginx waits for proxy_read_timeout (60 s by
default) and then responds with 504. The manager therefore marks such an instance
`down` in nginx.conf and reloads nginx with SIGHUP. nginx sends a `down`
instance no requests. When every instance of an upstream is down, nginx
responds with 502 at once, and the upstream's JSON error page replaces nginx's own.

NOTE: requests that reach the instance before nginx's reload are already queued
on the reloader's socket. That window is about a second: the grace period of the
server process check, the manager's poll and the reload itself. Those requests
still wait up to 60 s, or until the app is fixed and a new server process accepts them.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Iterable
from pathlib import Path

import psutil

from devenv import render
from devenv.config import DevConfig
from devenv.errors import DevenvError
from devenv.processes import Supervisor
from devenv.topology import GATEWAY_NAME

logger = logging.getLogger(__name__)

# How long the nginx master may take to start its new workers and tell the old
# ones to shut down after SIGHUP before the reload counts as failed. nginx
# usually does both within milliseconds once it has read the new nginx.conf.
RELOAD_CONFIRM_S = 2.0
RELOAD_POLL_INTERVAL_S = 0.05
# NOTE: nginx (checked with 1.31) sets this process title on a worker that got
# the graceful shutdown, just before it closes its listening sockets. Until
# then an old worker may still accept a connection and proxy it with the
# previous config. If nginx changes the title, every reload counts as failed.
SHUTTING_DOWN_TITLE = "worker process is shutting down"


class GatewayDownMarks:
    """The instances marked `down` in the running gateway's nginx.conf.

    `update` re-renders nginx.conf when the set changes, validates it with
    `nginx -t`, writes it and sends SIGHUP to the nginx master. On SIGHUP the
    master starts new workers and lets the old ones finish their open
    connections, WebSocket streams included, before they exit. So an old
    worker runs until its last stream closes.
    """

    def __init__(self, config: DevConfig, nginx_binary: Path, supervisor: Supervisor) -> None:
        self.config = config
        self.nginx_binary = nginx_binary
        self.supervisor = supervisor
        # The set last requested, whether or not the reload for it succeeded. A
        # failed reload is logged once and retried with the next change.
        self._down: frozenset[str] = frozenset()

    def update(self, lost_server_processes: Iterable[str]) -> None:
        """Mark down the instances without a server process and restore the others; reload nginx on a change.

        An instance whose reloader has exited stays down: its port no longer
        accepts connections, and only the next start brings it back.
        """
        running = set(self.supervisor.running_names())
        requested = frozenset(lost_server_processes) | (self._down - running)
        if requested == self._down:
            return
        marked = sorted(requested - self._down)
        restored = sorted(self._down - requested)
        self._down = requested

        nginx_pid = self.supervisor.running_pid(GATEWAY_NAME)
        if nginx_pid is None:
            logger.warning(
                "cannot update the gateway for %s: nginx is not running; run devenv restart to start it again",
                ", ".join(marked + restored),
            )
            return
        try:
            self._reload(nginx_pid)
        except (DevenvError, OSError, psutil.Error) as error:
            logger.warning(
                "cannot update the gateway for %s: %s; requests to an instance without a server process "
                "may still wait for nginx's proxy_read_timeout",
                ", ".join(marked + restored),
                error,
            )
            return
        for name in marked:
            logger.warning(
                "marked %s down in the gateway (nginx pid %d reloaded): nginx sends it no requests until "
                "its server process is back, and responds with 502 while no instance of its server is left",
                name,
                nginx_pid,
            )
        for name in restored:
            logger.info("%s is back in the gateway (nginx pid %d reloaded)", name, nginx_pid)

    def _reload(self, nginx_pid: int) -> None:
        """Write nginx.conf for the current set and reload nginx; raise DevenvError when nginx does not reload."""
        text = render.render_nginx_conf(self.config, self._down)
        render.write_valid_nginx_conf(self.config, self.nginx_binary, text)
        workers_before = worker_pids(nginx_pid)
        if not self.supervisor.send_signal(GATEWAY_NAME, signal.SIGHUP):
            raise DevenvError(f"nginx (pid {nginx_pid}) exited before it got SIGHUP")
        deadline = time.monotonic() + RELOAD_CONFIRM_S
        while not is_reload_done(nginx_pid, workers_before):
            if time.monotonic() >= deadline:
                raise DevenvError(
                    f"nginx (pid {nginx_pid}) did not replace its workers within {RELOAD_CONFIRM_S:g} s after "
                    f"SIGHUP, so it may still run the previous config; see {self.config.logs_dir / 'nginx.log'}"
                )
            time.sleep(RELOAD_POLL_INTERVAL_S)


def is_reload_done(master_pid: int, workers_before: set[int]) -> bool:
    """Return whether the nginx master runs a new worker and every worker from `workers_before` is shutting down."""
    workers = worker_titles(master_pid)
    if not set(workers) - workers_before:
        return False
    return all(SHUTTING_DOWN_TITLE in workers[pid] for pid in workers_before & set(workers))


def worker_pids(master_pid: int) -> set[int]:
    """Return the pids of the nginx master's live child processes (its workers).

    Raises psutil.NoSuchProcess when the master is gone.
    """
    return set(worker_titles(master_pid))


def worker_titles(master_pid: int) -> dict[int, str]:
    """Map the pid of each live child process of the nginx master to its process title.

    Raises psutil.NoSuchProcess when the master is gone.
    """
    titles = {}
    for child in psutil.Process(master_pid).children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                titles[child.pid] = " ".join(child.cmdline())
        except psutil.NoSuchProcess:
            continue
    return titles
