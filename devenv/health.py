"""Probe HTTP health endpoints and wait until they respond with HTTP 200."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests

PROBE_TIMEOUT_S = 2.0
PROBE_INTERVAL_S = 0.2
MAX_PARALLEL_PROBES = 16


@dataclass(frozen=True)
class HealthResult:
    """Outcome of one GET on a health URL."""

    url: str
    healthy: bool
    status_code: int | None
    elapsed_s: float
    error: str | None = None

    def describe(self) -> str:
        """Return "HTTP 200 in 3 ms", "HTTP 502 in 1 ms" or the connection error."""
        if self.status_code is None:
            return self.error or "no response"
        return f"HTTP {self.status_code} in {self.elapsed_s * 1000:.0f} ms"


def new_session() -> requests.Session:
    """Return a session that ignores proxy variables, since probes only target local servers."""
    session = requests.Session()
    session.trust_env = False
    return session


def check_health(
    url: str, timeout_s: float = PROBE_TIMEOUT_S, session: requests.Session | None = None
) -> HealthResult:
    """GET `url` once; healthy means HTTP 200 within the timeout."""
    session = session or new_session()
    started = time.monotonic()
    try:
        response = session.get(url, timeout=timeout_s)
    except requests.RequestException as error:
        return HealthResult(
            url=url,
            healthy=False,
            status_code=None,
            elapsed_s=time.monotonic() - started,
            error=_describe_request_error(error),
        )
    return HealthResult(
        url=url,
        healthy=response.status_code == 200,
        status_code=response.status_code,
        elapsed_s=time.monotonic() - started,
    )


def check_all(urls: list[str], timeout_s: float = PROBE_TIMEOUT_S) -> dict[str, HealthResult]:
    """GET every URL once, up to MAX_PARALLEL_PROBES at a time; return each URL's result.

    With at most MAX_PARALLEL_PROBES URLs, the whole check takes about one `timeout_s` at most.
    """
    unique = list(dict.fromkeys(urls))
    if not unique:
        return {}
    # Each probe gets its own session, because a requests.Session is not safe to share between threads.
    with ThreadPoolExecutor(max_workers=min(len(unique), MAX_PARALLEL_PROBES)) as pool:
        results = pool.map(lambda url: check_health(url, timeout_s), unique)
        return dict(zip(unique, results))


def wait_until_healthy(
    urls: list[str],
    timeout_s: float,
    should_stop: Callable[[], bool] = lambda: False,
    interval_s: float = PROBE_INTERVAL_S,
) -> dict[str, HealthResult]:
    """Probe every URL until all are healthy, the timeout passes or `should_stop()` is true.

    Returns the last result for each URL. A URL that was healthy once is not probed again.
    """
    deadline = time.monotonic() + timeout_s
    session = new_session()
    results: dict[str, HealthResult] = {}
    pending = list(urls)
    while True:
        for url in list(pending):
            remaining_s = max(deadline - time.monotonic(), 0.05)
            result = check_health(url, min(PROBE_TIMEOUT_S, remaining_s), session)
            results[url] = result
            if result.healthy:
                pending.remove(url)
        if not pending or should_stop() or time.monotonic() >= deadline:
            return results
        time.sleep(interval_s)


def _describe_request_error(error: requests.RequestException) -> str:
    if isinstance(error, requests.ConnectionError) and not isinstance(error, requests.Timeout):
        return "connection refused or reset"
    if isinstance(error, requests.Timeout):
        return "timed out"
    return type(error).__name__
