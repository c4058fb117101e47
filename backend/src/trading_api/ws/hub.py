"""Topics and producers of one module's WebSocket streams."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from trading_api.ws.client import ClientConnection, SendText
from trading_api.ws.protocol import (
    ACTIONS,
    SUBSCRIBE,
    SubscriptionResponse,
    describe_validation_error,
    encode_error,
    encode_message,
    encode_update,
    make_topic,
)
from trading_api.ws.route import StreamRoute

logger = logging.getLogger(__name__)


@dataclass
class Topic:
    """A route with fixed parameters, fed by one producer task shared by its subscribers."""

    name: str
    route: StreamRoute
    params: BaseModel
    subscribers: set[ClientConnection] = field(default_factory=set)
    task: asyncio.Task[None] | None = None

    def publish(self, update: BaseModel) -> None:
        """Queue an update for every subscriber, serializing it only once."""
        text = encode_update(self.route.name, self.name, update)
        for client in list(self.subscribers):
            client.enqueue(text)


class StreamStats(BaseModel):
    """Counters of a module's WebSocket streams."""

    clients: int
    topics: int
    dropped_messages: int


class StreamHub:
    """Routes client messages of one module to topics and runs one producer per topic.

    A topic's producer starts with its first subscriber and is cancelled when the last
    one unsubscribes or disconnects. All methods run on the event loop thread.
    """

    def __init__(self, module: str, routes: Sequence[StreamRoute], service: Any, queue_size: int) -> None:
        self.module = module
        self.routes = {route.name: route for route in routes}
        self.service = service
        self.queue_size = queue_size
        self.topics: dict[str, Topic] = {}
        self.clients: set[ClientConnection] = set()
        self._client_ids = itertools.count(1)
        # Messages dropped for clients that have disconnected. Live clients keep their own count.
        self._dropped_by_closed_clients = 0

    @property
    def message_types(self) -> list[str]:
        """Message types that clients may send."""
        return [f"{name}.{action}" for name in self.routes for action in ACTIONS]

    def stats(self) -> StreamStats:
        """Return the current client, topic and dropped-message counts."""
        dropped = self._dropped_by_closed_clients + sum(client.dropped for client in self.clients)
        return StreamStats(clients=len(self.clients), topics=len(self.topics), dropped_messages=dropped)

    def connect(self, send_text: SendText, peer: str = "") -> ClientConnection:
        """Register a new client that receives messages through `send_text`."""
        client = ClientConnection(f"{self.module}-{next(self._client_ids)}", send_text, self.queue_size)
        self.clients.add(client)
        peer = peer or "unknown"
        if self.routes:
            logger.info("client %s connected to %s streams (peer %s)", client.client_id, self.module, peer)
        else:
            # For example the combined endpoint of a core-only server.
            logger.info(
                "client %s connected (peer %s), but this server runs no module streams "
                "and replies to every subscribe with an error",
                client.client_id,
                peer,
            )
        return client

    def disconnect(self, client: ClientConnection) -> None:
        """Remove a client from all its topics, stopping producers left without subscribers."""
        for topic_name in list(client.topics):
            self._remove_subscriber(client, topic_name)
        client.close()
        if client in self.clients:
            self.clients.discard(client)
            self._dropped_by_closed_clients += client.dropped
            logger.info("client %s disconnected (dropped messages: %d)", client.client_id, client.dropped)

    def handle_text(self, client: ClientConnection, text: str) -> None:
        """Handle one text message from a client and queue the reply, an `error` for an invalid message."""
        try:
            message = json.loads(text)
        except json.JSONDecodeError as exc:
            client.enqueue(encode_error(f"invalid JSON: {exc}"))
            return

        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            client.enqueue(
                encode_error('invalid message: expected a JSON object with a string "type" and an object "payload"')
            )
            return

        message_type = message["type"]
        route_name, _, action = message_type.rpartition(".")
        route = self.routes.get(route_name)
        if route is None or action not in ACTIONS:
            if self.message_types:
                expected = f"expected one of: {', '.join(self.message_types)}"
            else:
                expected = "this server runs no module with WebSocket routes; check which server the route is sent to"
            client.enqueue(encode_error(f"unknown message type {message_type!r}; {expected}"))
            return

        payload = message.get("payload", {})
        if not isinstance(payload, dict):
            self._respond(
                client, message_type, "error", "invalid payload: expected a JSON object of route parameters", None
            )
            return

        try:
            params = route.params_model.model_validate(payload)
        except ValidationError as exc:
            self._respond(client, message_type, "error", f"invalid parameters: {describe_validation_error(exc)}", None)
            return

        if action == SUBSCRIBE:
            self._subscribe(client, route, params)
        else:
            self._unsubscribe(client, route, params)

    async def close(self) -> None:
        """Cancel every producer and forget all topics, at server shutdown."""
        tasks = [topic.task for topic in self.topics.values() if topic.task is not None]
        self.topics.clear()
        for client in self.clients:
            client.topics.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _respond(self, client: ClientConnection, request_type: str, status: str, text: str, topic: str | None) -> None:
        response = SubscriptionResponse(status=status, message=text, topic=topic)
        client.enqueue(encode_message(f"{request_type}.response", response))

    def _subscribe(self, client: ClientConnection, route: StreamRoute, params: BaseModel) -> None:
        topic_name = make_topic(route.name, params)
        request_type = f"{route.name}.subscribe"
        if topic_name in client.topics:
            self._respond(client, request_type, "ok", "already subscribed", topic_name)
            return

        # The response is queued before the client joins the topic, so it arrives before
        # the topic's first update.
        self._respond(client, request_type, "ok", "subscribed", topic_name)
        topic = self.topics.get(topic_name)
        if topic is None:
            topic = self._start_topic(topic_name, route, params)
        topic.subscribers.add(client)
        client.topics.add(topic_name)

    def _unsubscribe(self, client: ClientConnection, route: StreamRoute, params: BaseModel) -> None:
        topic_name = make_topic(route.name, params)
        request_type = f"{route.name}.unsubscribe"
        if topic_name not in client.topics:
            self._respond(client, request_type, "error", "not subscribed to this topic", topic_name)
            return

        self._remove_subscriber(client, topic_name)
        self._respond(client, request_type, "ok", "unsubscribed", topic_name)

    def _start_topic(self, topic_name: str, route: StreamRoute, params: BaseModel) -> Topic:
        topic = Topic(name=topic_name, route=route, params=params)
        self.topics[topic_name] = topic
        topic.task = asyncio.get_running_loop().create_task(self._run_producer(topic), name=f"producer {topic_name}")
        logger.info("started producer for %s", topic_name)
        return topic

    def _remove_subscriber(self, client: ClientConnection, topic_name: str) -> None:
        client.topics.discard(topic_name)
        topic = self.topics.get(topic_name)
        if topic is None:
            return

        topic.subscribers.discard(client)
        if not topic.subscribers:
            del self.topics[topic_name]
            if topic.task is not None:
                topic.task.cancel()
            logger.info("stopped producer for %s (no subscribers left)", topic_name)

    async def _run_producer(self, topic: Topic) -> None:
        try:
            await topic.route.produce(self.service, topic.params, topic.publish)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("producer for %s failed", topic.name)
            reason = f"stream {topic.name} stopped: {type(exc).__name__}: {exc}; subscribe again to restart it"
        else:
            reason = f"stream {topic.name} ended; subscribe again to restart it"

        # The producer is gone: drop the topic so that the next subscribe starts a new one.
        if self.topics.get(topic.name) is topic:
            del self.topics[topic.name]
        error = encode_error(reason)
        for client in topic.subscribers:
            client.topics.discard(topic.name)
            client.enqueue(error)
        topic.subscribers.clear()
