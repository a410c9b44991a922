"""Event consumers against a real JetStream: order per key, redelivery, poison events."""

from __future__ import annotations

import asyncio

import nats
import orjson
import pytest

from shared.consumer import (
    MAX_DELIVERIES,
    EventConsumer,
    KeyedEventConsumer,
    is_transient,
    retry_delay,
)
from shared.errors import UnavailableError
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


async def test_a_transient_failure_is_retried_past_the_poison_limit_in_order(isolated_env):
    """The store answering "not now" for longer than MAX_DELIVERIES attempts loses nothing.

    This is what a process killed inside a store transaction causes: the documents
    it held conflict until the store reaps the transaction, up to a minute later.
    """
    settings = load(CommonSettings, isolated_env)
    await ensure_event_stream(settings)
    handled: list[tuple[str, int]] = []
    failures = {"left": MAX_DELIVERIES + 3}

    async def handle(body: dict) -> None:
        if body["task"] == "WTheld" and failures["left"] > 0:
            failures["left"] -= 1
            raise UnavailableError("the store failed: OperationFailure")
        handled.append((body["task"], body["n"]))

    subjects = Subjects(settings.subject_prefix)
    consumer = KeyedEventConsumer(
        settings.nats_url, handler=handle, key_of=lambda b: b["task"],
        stream=subjects.event_stream, filter_subject=subjects.events_matching(),
        durable="transient-probe", retry_delay=0.01, max_retry_delay=0.05,
    )
    await consumer.start()
    try:
        await _publish(settings, [{"task": t, "n": n} for n in range(3) for t in ("WTheld", "WTfree")])
        await _until(lambda: len(handled) == 6, seconds=30)
    finally:
        await consumer.stop()

    assert failures["left"] == 0
    assert [n for t, n in handled if t == "WTheld"] == [0, 1, 2]
    assert [n for t, n in handled if t == "WTfree"] == [0, 1, 2]


def test_transient_errors_back_off_exponentially_up_to_the_cap():
    assert [retry_delay(attempt, 1.0, 10.0) for attempt in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    assert is_transient(UnavailableError("the store did not answer"))
    assert is_transient(TimeoutError())
    assert not is_transient(RuntimeError("a bug"))


async def test_batch_consumer_hands_sequences_and_restarts_from_a_chosen_one(isolated_env):
    """A handler that keeps its own progress resumes at its sequence, acks or not."""
    settings = load(CommonSettings, isolated_env)
    await ensure_event_stream(settings)
    subjects = Subjects(settings.subject_prefix)
    received: list[tuple[int, int]] = []

    async def collect(pairs: list[tuple[int, dict]]) -> None:
        received.extend((sequence, body["n"]) for sequence, body in pairs)

    def consumer() -> EventConsumer:
        return EventConsumer(
            settings.nats_url, handler=collect, with_sequence=True,
            stream=subjects.event_stream, filter_subject=subjects.events_matching(),
            durable="sequence-probe", wait=0.2,
        )

    await _publish(settings, [{"task": "WTa", "n": n} for n in range(5)])
    first = consumer()
    await first.start()
    try:
        await _until(lambda: len(received) == 5)
    finally:
        await first.stop()
    assert received == [(n + 1, n) for n in range(5)]  # every one acknowledged

    received.clear()
    again = consumer()
    await again.start(from_sequence=4)
    try:
        await _until(lambda: len(received) == 2)
    finally:
        await again.stop()
    assert received == [(4, 3), (5, 4)]


def _keyed(
    settings: CommonSettings, handle, durable: str, key_of=lambda b: b["task"], **options
) -> KeyedEventConsumer:
    subjects = Subjects(settings.subject_prefix)
    return KeyedEventConsumer(
        settings.nats_url, handler=handle, key_of=key_of,
        stream=subjects.event_stream, filter_subject=subjects.events_matching(),
        durable=durable, **options,
    )


async def test_a_failed_barrier_holds_back_every_later_event_in_and_after_its_batch(isolated_env):
    """A configuration event the store refused must still come before the events after it.

    Otherwise a task created right after a workflow update is routed with the old
    configuration whenever the update's handling fails once.
    """
    settings = load(CommonSettings, isolated_env)
    await ensure_event_stream(settings)
    order: list[str] = []
    failures = {"left": 3}

    async def handle(body: dict) -> None:
        if body["task"] == "WTbarrier" and failures["left"] > 0:
            failures["left"] -= 1
            if failures["left"] == 2:  # an event published while the barrier waits
                await _publish(settings, [{"task": "WTlater", "n": 0}])
            raise UnavailableError("the store did not answer")
        order.append(body["task"])

    consumer = _keyed(
        settings, handle, "failed-barrier-probe",
        is_barrier=lambda b: b["task"] == "WTbarrier", retry_delay=0.05, max_retry_delay=0.2,
    )
    await _publish(settings, [{"task": t, "n": 0} for t in ("WTbefore", "WTbarrier", "WTafter")])
    await consumer.start()
    try:
        await _until(lambda: len(order) == 4)
    finally:
        await consumer.stop()
    assert order[:2] == ["WTbefore", "WTbarrier"]
    assert sorted(order[2:]) == ["WTafter", "WTlater"]


async def test_events_waiting_behind_a_failing_one_keep_their_own_poison_budget(isolated_env):
    """An event held back while an earlier one of its key is retried was never tried:
    its first failure of its own must not count those waits as attempts."""
    settings = load(CommonSettings, isolated_env)
    await ensure_event_stream(settings)
    handled: list[int] = []
    failures = {0: MAX_DELIVERIES + 3, 1: 1}

    async def handle(body: dict) -> None:
        n = body["n"]
        if failures.get(n, 0) > 0:
            failures[n] -= 1
            if n == 0:
                raise UnavailableError("the store failed: OperationFailure")
            raise RuntimeError("fails once for a reason of its own")
        handled.append(n)

    consumer = _keyed(settings, handle, "waiting-budget-probe", retry_delay=0.01, max_retry_delay=0.05)
    await _publish(settings, [{"task": "WTheld", "n": n} for n in range(3)])
    await consumer.start()
    try:
        await _until(lambda: len(handled) == 3, seconds=30)
    finally:
        await consumer.stop()
    assert handled == [0, 1, 2]


async def test_an_event_without_key_never_waits_for_an_unrelated_failed_one(isolated_env):
    """Events without a key need no order: one that failed holds back nothing,
    whatever position a later event takes in its batch."""
    settings = load(CommonSettings, isolated_env)
    await ensure_event_stream(settings)
    order: list[str] = []
    failures = {"left": 1}

    async def handle(body: dict) -> None:
        if body["task"] == "WTfails" and failures["left"] > 0:
            failures["left"] -= 1
            raise UnavailableError("the store did not answer")
        order.append(body["task"])

    consumer = _keyed(
        settings, handle, "keyless-probe", key_of=lambda b: None, retry_delay=3.0, wait=0.2
    )
    await _publish(settings, [{"task": "WTfails", "n": 0}])
    await consumer.start()
    try:
        await _until(lambda: failures["left"] == 0)
        await _publish(settings, [{"task": "WTunrelated", "n": 0}])
        await _until(lambda: len(order) == 2)
    finally:
        await consumer.stop()
    assert order == ["WTunrelated", "WTfails"]


async def test_an_envelope_the_key_function_cannot_read_does_not_stop_consuming(isolated_env):
    """One odd envelope (here `n` is not a number) must not end the consumer's loop."""
    settings = load(CommonSettings, isolated_env)
    await ensure_event_stream(settings)
    handled: list[object] = []

    async def handle(body: dict) -> None:
        handled.append(body["n"])

    consumer = _keyed(
        settings, handle, "odd-envelope-probe",
        key_of=lambda b: b["task"] + str(-b["n"]), is_barrier=lambda b: b["n"] < 0,
        retry_delay=0.01,
    )
    await _publish(settings, [{"task": "WTa", "n": "odd"}])
    await consumer.start()
    try:
        await _until(lambda: handled == ["odd"])
        await _publish(settings, [{"task": "WTa", "n": 1}])
        await _until(lambda: handled == ["odd", 1])
    finally:
        await consumer.stop()


async def _publish_types(settings: CommonSettings, items: list[tuple[str, int]]) -> None:
    subjects = Subjects(settings.subject_prefix)
    connection = await nats.connect(settings.nats_url)
    js = connection.jetstream()
    for event_type, n in items:
        subject = subjects.event("AC1", "WSfiltered", "WT1", event_type)
        body = {"event_type": event_type, "n": n}
        await js.publish(subject, orjson.dumps(body), stream=subjects.event_stream)
    await connection.close()


async def test_several_filter_subjects_and_a_changed_filter_keep_the_consumers_place(isolated_env):
    settings = load(CommonSettings, isolated_env)
    await ensure_event_stream(settings)
    subjects = Subjects(settings.subject_prefix)
    seen: list[tuple[str, int]] = []

    async def handle(body: dict) -> None:
        seen.append((body["event_type"], body["n"]))

    def consumer(*event_types: str) -> KeyedEventConsumer:
        return KeyedEventConsumer(
            settings.nats_url, handler=handle, key_of=lambda b: "one",
            stream=subjects.event_stream, durable="filtered",
            filter_subject=[
                subjects.events_matching(workspace_sid="WSfiltered", event_type=t) for t in event_types
            ],
        )

    first = consumer("task.>", "reservation.>")
    await first.start()
    try:
        await _publish_types(settings, [("task.created", 1), ("worker.activity.update", 2),
                                        ("reservation.created", 3)])
        await _until(lambda: len(seen) == 2)
    finally:
        await first.stop()
    assert seen == [("task.created", 1), ("reservation.created", 3)]

    # The next version narrows the filter of the same durable consumer.
    second = consumer("task.>", "reservation.accepted")
    await second.start()
    try:
        await _publish_types(settings, [("reservation.created", 4), ("task.completed", 5),
                                        ("reservation.accepted", 6)])
        await _until(lambda: len(seen) == 4)
    finally:
        await second.stop()
    # The durable kept its place (nothing delivered again) and took the new filter.
    assert seen[2:] == [("task.completed", 5), ("reservation.accepted", 6)]
    connection = await nats.connect(settings.nats_url)
    info = await connection.jetstream().consumer_info(subjects.event_stream, "filtered")
    await connection.close()
    assert sorted(info.config.filter_subjects) == sorted(
        subjects.events_matching(workspace_sid="WSfiltered", event_type=t)
        for t in ("task.>", "reservation.accepted")
    )
