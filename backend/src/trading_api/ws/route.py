"""Declaration of one WebSocket stream route."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

# Sends an update to every subscriber of the producer's topic without waiting for them.
Emit = Callable[[BaseModel], None]
# A producer runs until it is cancelled, calling emit for each update. It receives the
# module's service and the validated route parameters.
Producer = Callable[[Any, Any, Emit], Awaitable[None]]


@dataclass(frozen=True)
class StreamRoute:
    """A stream that clients subscribe to with parameters of `params_model`."""

    name: str
    summary: str
    params_model: type[BaseModel]
    update_model: type[BaseModel]
    produce: Producer


async def wait_until_cancelled() -> None:
    """Block until the calling task is cancelled, for producers driven by callbacks."""
    await asyncio.get_running_loop().create_future()
