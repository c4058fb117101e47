"""One WebSocket client: its state, its subscriptions and its bounded send queue."""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable

from starlette.websockets import WebSocketDisconnect

logger = logging.getLogger(__name__)

# Log a client's dropped messages at the first drop, then once per this many drops.
DROP_LOG_EVERY = 100

SendText = Callable[[str], Awaitable[None]]


class ClientState(enum.Enum):
    """Lifecycle state of a client connection, which only moves from OPEN to CLOSED."""

    OPEN = "open"
    CLOSED = "closed"


class ClientConnection:
    """A connected client whose messages go through a bounded queue to a sender task.

    Producers call `enqueue`, which never waits. When the queue is full, it drops and
    counts the oldest message, so a slow client loses old updates instead of delaying
    the producer and the other clients.
    """

    def __init__(self, client_id: str, send_text: SendText, queue_size: int) -> None:
        self.client_id = client_id
        self.state = ClientState.OPEN
        self.topics: set[str] = set()
        self.dropped = 0
        self._send_text = send_text
        self._queue: asyncio.Queue[str] = asyncio.Queue(maxsize=queue_size)

    @property
    def queued(self) -> int:
        """Number of messages waiting to be sent."""
        return self._queue.qsize()

    def enqueue(self, text: str) -> None:
        """Queue a message for sending, dropping the oldest queued message if the queue is full."""
        if self.state is not ClientState.OPEN:
            return

        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % DROP_LOG_EVERY == 0:
                logger.warning(
                    "client %s is slow: dropped %d message(s) so far (queue size %d)",
                    self.client_id,
                    self.dropped,
                    self._queue.maxsize,
                )
        self._queue.put_nowait(text)

    async def run_sender(self) -> None:
        """Send queued messages until the client disconnects or the task is cancelled."""
        try:
            while True:
                text = await self._queue.get()
                await self._send_text(text)
        except (WebSocketDisconnect, OSError):
            # The client went away while a message was in flight. The receive loop gets
            # the disconnect and cleans up, so this is not an error.
            logger.debug("client %s disconnected while sending", self.client_id)
        finally:
            self.close()

    def close(self) -> None:
        """Mark the connection closed and discard what is still queued."""
        self.state = ClientState.CLOSED
        while not self._queue.empty():
            self._queue.get_nowait()
