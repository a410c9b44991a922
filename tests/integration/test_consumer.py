"""Event consumers against a real JetStream: order per key, redelivery, poison events."""

from __future__ import annotations

import asyncio

import nats
import orjson
import pytest

from shared.consumer import MAX_DELIVERIES, EventConsumer, KeyedEventConsumer
from shared.runtime import ensure_event_stream
from shared.settings import CommonSettings, load
from shared.subjects import Subjects

pytestmark = pytest.mark.integration


async def _publish(settings: CommonSettings, bodies: list[dict]) -> None:
    subjects = Subjects(settings.subject_prefix)
    connection = await nats.connect(settings.nats_url)
    js = connection.jetstream()
    for body in bodies:
        subject = subjects.event("AC1", "WS1", body["task"], "task.updated")
        await js.publish(subject, orjson.dumps(body), stream=subjects.event_stream)
    await connection.close()


async def _until(condition, seconds: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_keyed_consumer_keeps_order_per_key_and_drops_a_poison_event(isolated_env):
    settings = load(CommonSettings, isolated_env)
    await ensure_event_stream(settings)
    handled: list[tuple[str, int]] = []
    attempts = {"poison": 0}

    async def handle(body: dict) -> None:
        if body["task"] == "WTpoison":
            attempts["poison"] += 1
            raise RuntimeError("this event always fails")
        handled.append((body["task"], body["n"]))

    consumer = KeyedEventConsumer(
        settings.nats_url, handler=handle, key_of=lambda b: b["task"],
        stream=Subjects(settings.subject_prefix).event_stream,
        filter_subject=Subjects(settings.subject_prefix).events_matching(),
        durable="probe", retry_delay=0.01,
    )
    await consumer.start()
    try:
        await _publish(settings, [{"task": t, "n": n} for n in range(5) for t in ("WTa", "WTb", "WTpoison")])
        await _until(lambda: len(handled) == 10 and attempts["poison"] >= MAX_DELIVERIES)
    finally:
        await consumer.stop()

    assert [n for t, n in handled if t == "WTa"] == [0, 1, 2, 3, 4]
    assert [n for t, n in handled if t == "WTb"] == [0, 1, 2, 3, 4]


async def test_batch_consumer_isolates_the_failing_event(isolated_env):
    settings = load(CommonSettings, isolated_env)
    await ensure_event_stream(settings)
    counted: list[int] = []

    async def count(bodies: list[dict]) -> None:
        if any(b["task"] == "WTpoison" for b in bodies):
            raise RuntimeError("batch holds a poison event")
        counted.extend(b["n"] for b in bodies)

    subjects = Subjects(settings.subject_prefix)
    consumer = EventConsumer(
        settings.nats_url, handler=count, stream=subjects.event_stream,
        filter_subject=subjects.events_matching(), durable="batch-probe", retry_delay=0.01,
    )
    await consumer.start()
    try:
        await _publish(settings, [{"task": "WTpoison" if n == 3 else "WTok", "n": n} for n in range(8)])
        await _until(lambda: sorted(counted) == [0, 1, 2, 4, 5, 6, 7])
    finally:
        await consumer.stop()


async def test_a_barrier_event_waits_for_earlier_events_and_holds_back_later_ones(isolated_env):
    settings = load(CommonSettings, isolated_env)
    await ensure_event_stream(settings)
    order: list[str] = []

    async def handle(body: dict) -> None:
        if body["task"] == "WTslow":
            await asyncio.sleep(0.2)  # an earlier event that takes a while
        order.append(body["task"])

    subjects = Subjects(settings.subject_prefix)
    consumer = KeyedEventConsumer(
        settings.nats_url, handler=handle, key_of=lambda b: b["task"],
        is_barrier=lambda b: b["task"] == "WTbarrier",
        stream=subjects.event_stream, filter_subject=subjects.events_matching(),
        durable="barrier-probe", retry_delay=0.01,
    )
    await _publish(settings, [{"task": t, "n": 0} for t in ("WTslow", "WTbarrier", "WTafter")])
    await consumer.start()
    try:
        await _until(lambda: len(order) == 3)
    finally:
        await consumer.stop()
    assert order == ["WTslow", "WTbarrier", "WTafter"]
