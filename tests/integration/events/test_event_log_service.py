"""The events service stores every event of the stream exactly once."""

from __future__ import annotations

import pytest
from events_support import WORKSPACE, eventually, seed_configuration, task_event
from pymongo import IndexModel

from shared.storage import collections as c
from shared.storage.event_log import KEYS_INDEX, TTL_INDEX, event_keys

pytestmark = pytest.mark.integration


async def test_committed_events_land_in_the_event_log(start_events_service, probe):
    service = await start_events_service()
    events = [task_event(task_sid=f"WT{i:032d}") for i in range(5)]

    await probe.committer.commit([], events)

    log = service.runtime.db[c.EVENTS]

    async def stored():
        return await log.count_documents({"workspace_sid": WORKSPACE}) == 5

    await eventually(stored)
    doc = await log.find_one({"_id": events[0].sid})
    assert doc["event_type"] == "task.created"
    assert doc["event_data"]["task_sid"] == events[0].resource_sid
    assert doc["event_date"] == events[0].event_date


async def test_redelivered_event_is_stored_once(start_events_service, probe):
    service = await start_events_service()
    event = task_event()
    marker = task_event(task_sid="WT" + "9" * 32)
    subject = probe.subjects.event(
        event.account_sid, event.workspace_sid, event.resource_sid, event.event_type
    )

    await probe.committer.commit([], [event])
    # The same event again under another message id: the stream keeps both copies,
    # so the consumer really sees it twice (as after a publish retried by the relay).
    await probe.broker.publish(
        event.to_payload(),
        subject,
        headers={"Nats-Msg-Id": "other"},
        stream=probe.subjects.event_stream,
    )
    await probe.committer.commit([], [marker])

    log = service.runtime.db[c.EVENTS]

    async def marker_stored():
        return await log.find_one({"_id": marker.sid})

    await eventually(marker_stored)
    assert await log.count_documents({"_id": event.sid}) == 1
    assert await log.count_documents({}) == 2


async def test_handler_is_idempotent_for_a_whole_batch(start_events_service, receiver):
    service = await start_events_service()
    await seed_configuration(
        service.runtime, event_callback_url=receiver.base_url + "/ev"
    )
    bodies = [dict(task_event(task_sid=f"WT{i:032d}").model_dump()) for i in range(3)]

    await service.handlers.on_events(bodies)
    await service.handlers.on_events(bodies)

    assert await service.runtime.db[c.EVENTS].count_documents({}) == 3
    assert await service.runtime.db[c.WEBHOOK_DELIVERIES].count_documents({}) == 3
    sids = {(await receiver.next()).form["Sid"] for _ in range(3)}
    assert sids == {body["sid"] for body in bodies}


async def test_event_log_has_ttl_and_one_filter_index(start_events_service):
    service = await start_events_service()

    info = await service.runtime.db[c.EVENTS].index_information()

    assert info[TTL_INDEX]["expireAfterSeconds"] == 30 * 24 * 3600
    assert sorted(info) == sorted(["_id_", TTL_INDEX, KEYS_INDEX])


async def test_stored_events_carry_their_filter_keys(start_events_service, probe):
    service = await start_events_service()
    event = task_event(worker_sid="WK" + "3" * 32)

    await probe.committer.commit([], [event])

    async def stored():
        return await service.runtime.db[c.EVENTS].find_one({"_id": event.sid})

    doc = await eventually(stored)
    assert doc["keys"] == event_keys(event.to_document())


async def test_a_log_of_an_earlier_version_is_migrated_at_start(start_events_service, probe):
    log = probe.db[c.EVENTS]
    await log.create_indexes([
        IndexModel([("workspace_sid", 1), ("event_date_ms", -1), ("_id", -1)],
                   name="by_workspace"),
        IndexModel([("workspace_sid", 1), ("event_data.task_sid", 1)],
                   name="by_event_data_task_sid"),
    ])
    old = [task_event(task_sid=f"WT{i:032d}") for i in range(3)]
    await log.insert_many([e.to_document() for e in old])

    await start_events_service()

    info = await log.index_information()
    assert "by_workspace" not in info and "by_event_data_task_sid" not in info
    for event in old:
        doc = await log.find_one({"_id": event.sid})
        assert doc["keys"] == event_keys(event.to_document())


async def test_window_bounds_are_inclusive_to_the_millisecond(start_events_service):
    """StartDate and EndDate are inclusive (events.md §1), on the store's index too."""
    from datetime import UTC, datetime, timedelta

    from shared.storage.event_log import ALL_KEY, epoch_ms, list_filter

    service = await start_events_service()
    log = service.runtime.db[c.EVENTS]
    at = datetime(2026, 12, 4, 9, 19, 10, 579000, tzinfo=UTC)
    offsets = [-2, -1, 0, 0, 1, 2]
    await log.insert_many([
        {"_id": f"EV{i:032d}", "workspace_sid": WORKSPACE, "keys": [ALL_KEY],
         "event_date_ms": epoch_ms(at) + ms, "event_date": at + timedelta(milliseconds=ms)}
        for i, ms in enumerate(offsets)
    ])

    async def count(start: datetime, end: datetime) -> int:
        return await log.count_documents(list_filter(WORKSPACE, [], start, end))

    assert await count(at, at) == 2
    assert await count(at, at + timedelta(milliseconds=2)) == 4
    assert await count(at - timedelta(milliseconds=2), at) == 4
