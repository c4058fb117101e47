"""Helpers for the trading_api tests: settings with fast ticks, clocks and WebSocket helpers."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from trading_api.modules import MODULE_NAMES
from trading_api.settings import Settings

# A fixed Unix time 30 s into a minute, so minute bars around it are predictable.
FIXED_NOW = 1_700_000_010.0
SEED = 7
# Fast ticks keep stream and fill tests short.
TEST_INTERVAL_S = 0.01
MAX_MESSAGES = 500


def fixed_clock() -> float:
    """Return FIXED_NOW, so prices stay constant and fills and quotes are predictable."""
    return FIXED_NOW


class FastClock:
    """Clock that runs `speed` times faster than real time, reading `start` at its first call."""

    def __init__(self, start: float, speed: float) -> None:
        self.start = start
        self.speed = speed
        self._origin: float | None = None

    def __call__(self) -> float:
        now = time.monotonic()
        if self._origin is None:
            self._origin = now
        return self.start + (now - self._origin) * self.speed


def make_settings(modules: tuple[str, ...] = MODULE_NAMES, **overrides: Any) -> Settings:
    """Return test settings: all modules, SEED and TEST_INTERVAL_S unless overridden."""
    values: dict[str, Any] = {"enabled_modules": modules, "seed": SEED, "update_interval_s": TEST_INTERVAL_S}
    values.update(overrides)
    return Settings(**values)


def send(ws: Any, message_type: str, payload: Any = None) -> None:
    """Send a `{type, payload}` message, with an empty object when payload is None."""
    ws.send_text(json.dumps({"type": message_type, "payload": {} if payload is None else payload}))


def receive_type(ws: Any, message_type: str, max_messages: int = MAX_MESSAGES) -> dict[str, Any]:
    """Return the next message of `message_type`, skipping others, and fail after max_messages."""
    seen = []
    for _ in range(max_messages):
        message = ws.receive_json()
        if message["type"] == message_type:
            return message
        seen.append(message["type"])
    raise AssertionError(f"no {message_type} message among {max_messages} received: {sorted(set(seen))}")


def subscribe(ws: Any, route: str, params: dict[str, Any] | None = None) -> str:
    """Subscribe to a route, assert that it succeeded and return the topic."""
    send(ws, f"{route}.subscribe", params)
    response = receive_type(ws, f"{route}.subscribe.response")["payload"]
    assert response["status"] == "ok", response
    return response["topic"]


def wait_for(condition: Callable[[], Any], timeout_s: float = 5.0, interval_s: float = 0.01) -> Any:
    """Poll `condition` until it returns a truthy value and return that value, failing after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(interval_s)
