"""The shared runtime against real NATS and a real store: commit, publish, commands."""

from __future__ import annotations

import asyncio

import nats
import orjson
import pytest
from pymongo import InsertOne

from shared.bus import command_reply
from shared.errors import NotFoundError
from shared.events import make_event
from shared.models import utcnow
from shared.runtime import ServiceRuntime
from shared.settings import CommonSettings, load
from shared.storage.committer import Write

pytestmark = pytest.mark.integration


@pytest.fixture
async def runtime(isolated_env):
    settings = load(CommonSettings, isolated_env)
    rt = ServiceRuntime("probe", settings)

    @rt.command_subscriber("thing.get")
    @command_reply
    async def get_thing(body: dict) -> dict:
        if body["sid"] != "WT1":
            raise NotFoundError("Task", body["sid"])
        return {"sid": "WT1"}

    await rt.start()
    yield rt
    await rt.stop()


async def test_commit_publishes_event_after_durable_write(runtime: ServiceRuntime):
    nc = await nats.connect(runtime.settings.nats_url)
    received: asyncio.Queue = asyncio.Queue()
    await nc.subscribe(runtime.subjects.events_matching(), cb=received.put)
    event = make_event(
        "task.created", account_sid="AC1", workspace_sid="WS1",
        resource_type="task", resource_sid="WT1", at=utcnow(),
    )

    await runtime.committer.commit([Write("things", InsertOne({"_id": "WT1"}))], [event])

    assert await runtime.db["things"].find_one({"_id": "WT1"}) == {"_id": "WT1"}
    message = await asyncio.wait_for(received.get(), 5)
    assert message.subject == "{}.events.AC1.WS1.WT1.task.created".format(runtime.subjects.prefix)
    assert orjson.loads(message.data)["sid"] == event.sid
    await nc.close()


async def test_command_reply_carries_domain_errors(runtime: ServiceRuntime):
    assert await runtime.commands.request("probe", "thing.get", {"sid": "WT1"}) == {"sid": "WT1"}
    with pytest.raises(NotFoundError) as caught:
        await runtime.commands.request("probe", "thing.get", {"sid": "WT2"})
    assert caught.value.sid == "WT2"
    assert await runtime.commands.ping("probe") is True


async def test_events_left_in_the_outbox_by_a_failed_publish_are_relayed(runtime: ServiceRuntime):
    from datetime import timedelta

    from shared.storage.committer import Committer

    async def broker_down(event) -> None:
        raise ConnectionError("NATS is down")

    stranded = Committer(runtime.client, runtime.db, broker_down, outbox="outbox_probe")
    await stranded.start()
    events = [
        make_event("task.created", account_sid="AC1", workspace_sid="WS1",
                   resource_type="task", resource_sid=f"WT{i}", at=utcnow())
        for i in range(3)
    ]
    await stranded.commit([Write("things", InsertOne({"_id": "WT9"}))], events)
    await stranded.stop()
    assert await runtime.db["outbox_probe"].count_documents({}) == 1

    published = []

    async def record(event) -> None:
        published.append(event.sid)

    relay = Committer(runtime.client, runtime.db, record, outbox="outbox_probe")
    assert await relay.relay_outbox(older_than=timedelta(0)) == 3
    assert published == [e.sid for e in events]
    assert await runtime.db["outbox_probe"].count_documents({}) == 0
