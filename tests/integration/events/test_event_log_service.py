"""The events service stores every event of the stream exactly once."""

from __future__ import annotations

import pytest
from events_support import WORKSPACE, eventually, seed_configuration, task_event

from shared.storage import collections as c

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


async def test_event_log_has_ttl_and_filter_indexes(start_events_service):
    service = await start_events_service()

    info = await service.runtime.db[c.EVENTS].index_information()

    assert info["ttl_event_date"]["expireAfterSeconds"] == 30 * 24 * 3600
    for name in (
        "by_workspace",
        "by_event_type",
        "by_event_data_task_sid",
        "by_event_data_task_channel_unique_name",
    ):
        assert name in info
