"""Tests of the shared WebSocket machinery: topics, producers and bounded client queues."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from trading_api.ws import ClientConnection, ClientState, Emit, StreamHub, StreamRoute, StreamStats, make_topic

pytestmark = pytest.mark.timeout(30)

TICK_S = 0.001


class TickerParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    step: int = 1


class Tick(BaseModel):
    sequence: int


async def produce_ticks(service: Any, params: TickerParams, emit: Emit) -> None:
    sequence = 0
    while True:
        sequence += params.step
        emit(Tick(sequence=sequence))
        await asyncio.sleep(TICK_S)


async def produce_then_fail(service: Any, params: TickerParams, emit: Emit) -> None:
    emit(Tick(sequence=1))
    await asyncio.sleep(TICK_S)
    raise RuntimeError("feed lost")


ROUTES = [
    StreamRoute("ticks", "Counter updates.", TickerParams, Tick, produce_ticks),
    StreamRoute("flaky", "Fails after one update.", TickerParams, Tick, produce_then_fail),
]


def subscribe_text(route: str, **params: Any) -> str:
    return json.dumps({"type": f"{route}.subscribe", "payload": params})


class RecordingTransport:
    """Stands in for a WebSocket's send_text and records what was sent."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def send_text(self, text: str) -> None:
        self.messages.append(json.loads(text))

    def updates(self) -> list[int]:
        return [
            message["payload"]["payload"]["sequence"]
            for message in self.messages
            if message["type"].endswith(".update")
        ]


class BlockedTransport:
    """A client that stopped reading: each send waits until `release` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.sent = 0

    async def send_text(self, text: str) -> None:
        await self.release.wait()
        self.sent += 1


async def wait_until(condition, timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() >= deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(TICK_S)


def connect_log(hub: StreamHub, caplog: pytest.LogCaptureFixture, peer: str) -> list[str]:
    """Connect a client to `hub` and return the log messages of the connection."""
    with caplog.at_level(logging.INFO, logger="trading_api.ws.hub"):
        hub.connect(RecordingTransport().send_text, peer)
    return [record.getMessage() for record in caplog.records]


def test_connect_log_names_streams(caplog: pytest.LogCaptureFixture) -> None:
    hub = StreamHub("test", ROUTES, service=None, queue_size=4)

    assert connect_log(hub, caplog, "203.0.113.7:50000") == [
        "client test-1 connected to test streams (peer 203.0.113.7:50000)"
    ]


def test_connect_log_unknown_peer(caplog: pytest.LogCaptureFixture) -> None:
    hub = StreamHub("test", ROUTES, service=None, queue_size=4)

    assert connect_log(hub, caplog, "") == ["client test-1 connected to test streams (peer unknown)"]


def test_connect_log_without_streams(caplog: pytest.LogCaptureFixture) -> None:
    hub = StreamHub("all", [], service=None, queue_size=4)

    assert connect_log(hub, caplog, "203.0.113.7") == [
        (
            "client all-1 connected (peer 203.0.113.7), but this server runs no module streams "
            "and replies to every subscribe with an error"
        )
    ]


def test_make_topic_sorts_keys_compactly() -> None:
    assert make_topic("ticks", TickerParams(step=2, name="a b")) == 'ticks:{"name":"a b","step":2}'


def test_slow_client_does_not_delay_fast_client() -> None:
    async def scenario() -> tuple[list[int], ClientConnection, StreamHub, StreamStats]:
        hub = StreamHub("test", ROUTES, service=None, queue_size=8)
        fast_transport = RecordingTransport()
        slow_transport = BlockedTransport()
        fast = hub.connect(fast_transport.send_text)
        slow = hub.connect(slow_transport.send_text)
        senders = [asyncio.create_task(fast.run_sender()), asyncio.create_task(slow.run_sender())]

        hub.handle_text(slow, subscribe_text("ticks", name="shared"))
        hub.handle_text(fast, subscribe_text("ticks", name="shared"))
        await wait_until(lambda: len(fast_transport.updates()) >= 200)

        assert len(hub.topics) == 1
        assert slow_transport.sent == 0
        assert slow.queued == 8
        stats = hub.stats()

        hub.disconnect(fast)
        hub.disconnect(slow)
        for task in senders:
            task.cancel()
        await asyncio.gather(*senders, return_exceptions=True)
        return fast_transport.updates(), slow, hub, stats

    updates, slow, hub, stats = asyncio.run(scenario())

    # The fast client got every update in order, although the slow one never read.
    assert updates == list(range(updates[0], updates[0] + len(updates)))
    assert slow.dropped >= 150
    assert stats.dropped_messages == slow.dropped
    assert stats.clients == 2
    assert hub.stats().dropped_messages == slow.dropped
    assert hub.stats().clients == 0
    assert slow.state is ClientState.CLOSED


def test_one_producer_per_topic() -> None:
    async def scenario() -> tuple[int, int, int, int]:
        hub = StreamHub("test", ROUTES, service=None, queue_size=100)
        clients = [hub.connect(RecordingTransport().send_text) for _ in range(3)]
        hub.handle_text(clients[0], subscribe_text("ticks", name="a"))
        hub.handle_text(clients[1], subscribe_text("ticks", name="a"))
        hub.handle_text(clients[2], subscribe_text("ticks", name="b"))
        topics = len(hub.topics)
        tasks = {id(topic.task) for topic in hub.topics.values()}

        hub.disconnect(clients[0])
        after_first_left = len(hub.topics)
        hub.disconnect(clients[1])
        hub.disconnect(clients[2])
        await asyncio.sleep(0)
        return topics, len(tasks), after_first_left, len(hub.topics)

    topics, tasks, after_first_left, after_all_left = asyncio.run(scenario())

    assert topics == 2
    assert tasks == 2
    assert after_first_left == 2
    assert after_all_left == 0


def test_producer_stops_after_last_subscriber_leaves() -> None:
    async def scenario() -> tuple[bool, bool]:
        hub = StreamHub("test", ROUTES, service=None, queue_size=100)
        client = hub.connect(RecordingTransport().send_text)
        hub.handle_text(client, subscribe_text("ticks", name="a"))
        task = next(iter(hub.topics.values())).task
        await asyncio.sleep(TICK_S * 5)
        running_before = not task.done()

        hub.handle_text(client, json.dumps({"type": "ticks.unsubscribe", "payload": {"name": "a"}}))
        await asyncio.sleep(TICK_S * 5)
        return running_before, task.cancelled()

    running_before, cancelled_after = asyncio.run(scenario())

    assert running_before
    assert cancelled_after


def test_failed_producer_notifies_subscribers_and_restarts() -> None:
    async def scenario() -> tuple[list[dict[str, Any]], int, int]:
        hub = StreamHub("test", ROUTES, service=None, queue_size=100)
        transport = RecordingTransport()
        client = hub.connect(transport.send_text)
        sender = asyncio.create_task(client.run_sender())

        hub.handle_text(client, subscribe_text("flaky", name="x"))
        await wait_until(lambda: any(message["type"] == "error" for message in transport.messages))
        topics_after_failure = len(hub.topics)
        hub.handle_text(client, subscribe_text("flaky", name="x"))
        topics_after_resubscribe = len(hub.topics)

        hub.disconnect(client)
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        return transport.messages, topics_after_failure, topics_after_resubscribe

    messages, topics_after_failure, topics_after_resubscribe = asyncio.run(scenario())

    topic = 'flaky:{"name":"x","step":1}'
    assert [message["type"] for message in messages] == ["flaky.subscribe.response", "flaky.update", "error"]
    assert messages[2]["payload"] == {
        "message": f"stream {topic} stopped: RuntimeError: feed lost; subscribe again to restart it"
    }
    assert topics_after_failure == 0
    assert topics_after_resubscribe == 1


def test_close_cancels_all_producers() -> None:
    async def scenario() -> tuple[list[bool], int]:
        hub = StreamHub("test", ROUTES, service=None, queue_size=100)
        client = hub.connect(RecordingTransport().send_text)
        hub.handle_text(client, subscribe_text("ticks", name="a"))
        hub.handle_text(client, subscribe_text("ticks", name="b"))
        tasks = [topic.task for topic in hub.topics.values()]

        await hub.close()
        return [task.cancelled() for task in tasks], len(hub.topics)

    cancelled, topics = asyncio.run(scenario())

    assert cancelled == [True, True]
    assert topics == 0


def test_enqueue_after_close_is_ignored() -> None:
    async def scenario() -> int:
        client = ClientConnection("test-1", RecordingTransport().send_text, queue_size=4)
        client.close()
        client.enqueue("late")
        return client.queued

    assert asyncio.run(scenario()) == 0
