"""Declaration of one WebSocket stream route."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
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


def bind_service(route: StreamRoute, service: Any) -> StreamRoute:
    """Return a copy of `route` whose producer gets `service`, whatever the service of the hub that runs it."""

    async def produce(_hub_service: Any, params: Any, emit: Emit) -> None:
        await route.produce(service, params, emit)

    return replace(route, produce=produce)


async def wait_until_cancelled() -> None:
    """Block until the calling task is cancelled, for producers driven by callbacks."""
    await asyncio.get_running_loop().create_future()
