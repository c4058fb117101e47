"""WebSocket endpoint that connects a client to a StreamHub."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from fastapi import APIRouter, WebSocket
from starlette.datastructures import Address

from trading_api.ws.hub import StreamHub
from trading_api.ws.protocol import encode_error

STREAM_PATH = "/ws"


def describe_peer(client: Address | None) -> str:
    """Return the client address for logs: `host:port`, or only the host when the port is unknown.

    Behind the gateway, uvicorn's --proxy-headers replaces the client address with the
    host from X-Forwarded-For, which carries no port, and sets the port to 0.
    """
    if client is None:
        return ""
    if not client.port:
        return client.host
    return f"{client.host}:{client.port}"


async def serve_client(websocket: WebSocket, hub: StreamHub) -> None:
    """Accept a WebSocket and handle its messages until the client disconnects."""
    await websocket.accept()
    client = hub.connect(websocket.send_text, describe_peer(websocket.client))
    sender = asyncio.create_task(client.run_sender(), name=f"sender {client.client_id}")
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break

            text = message.get("text")
            if text is None:
                try:
                    text = (message.get("bytes") or b"").decode("utf-8")
                except UnicodeDecodeError:
                    client.enqueue(encode_error("invalid message: binary frames must contain UTF-8 encoded JSON"))
                    continue
            hub.handle_text(client, text)
    finally:
        hub.disconnect(client)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender


def add_stream_endpoint(router: APIRouter, get_hub: Callable[[WebSocket], StreamHub]) -> None:
    """Add the `/ws` stream endpoint to a module router, serving the hub that `get_hub` returns."""

    @router.websocket(STREAM_PATH)
    async def stream_updates(websocket: WebSocket) -> None:
        """Serve the module's WebSocket streams."""
        await serve_client(websocket, get_hub(websocket))
