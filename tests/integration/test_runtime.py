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


@pytest.fixture(params=["one command", "per collection"])
async def committer(request, runtime: ServiceRuntime):
    """A committer in each of its two write modes (the second is MongoDB before 8.0)."""
    from shared.storage.committer import Committer

    published: list[str] = []

    async def record(event) -> None:
        published.append(event.sid)

    committer = Committer(runtime.client, runtime.db, record, outbox="outbox_modes")
    await committer.start()
    if request.param == "per collection":
        committer._one_command = False
    else:
        assert committer._one_command, "the local store and MongoDB 8 take bulkWrite"
    committer.published_sids = published
    yield committer
    await committer.stop()


async def test_a_large_batch_writes_per_collection_and_cleans_up_earlier_outbox_documents(
    committer, runtime: ServiceRuntime
):
    from shared.storage.committer import ONE_COMMAND_MAX_WRITES

    outbox = runtime.db["outbox_modes"]
    await committer.commit([Write("things_l", InsertOne({"_id": "first"}))], [_created("WT0")])
    many = ONE_COMMAND_MAX_WRITES + 2
    # Queued together, these are one batch: above the threshold, one bulk write per collection.
    await asyncio.gather(*(
        committer.commit([Write("things_l", InsertOne({"_id": f"n{i}"}))], [_created(f"WT{i + 1}")])
        for i in range(many)
    ))
    assert await runtime.db["things_l"].count_documents({}) == many + 1
    # The first batch was published before the second began, so the second's
    # transaction deleted its outbox document; only the second's may remain.
    assert await outbox.count_documents({}) <= 1
    deadline = asyncio.get_running_loop().time() + 10
    while len(committer.published_sids) < many + 1:
        assert asyncio.get_running_loop().time() < deadline, "events not published within 10 s"
        await asyncio.sleep(0.02)  # the pause between two polls
    assert len(set(committer.published_sids)) == len(committer.published_sids) == many + 1


def _created(sid: str):
    return make_event("task.created", account_sid="AC1", workspace_sid="WS1",
                      resource_type="task", resource_sid=sid, at=utcnow())


async def test_a_batch_across_collections_is_written_with_its_events(committer, runtime: ServiceRuntime):
    from pymongo import ReplaceOne

    await runtime.db["tasks_m"].insert_one({"_id": "WT1", "version": 1})
    writes = [
        Write("tasks_m", ReplaceOne({"_id": "WT1", "version": 1}, {"version": 2}), must_match=True),
        Write("reservations_m", InsertOne({"_id": "WR1"})),
    ]
    event = _created("WT1")
    await committer.commit(writes, [event])

    assert await runtime.db["tasks_m"].find_one({"_id": "WT1"}) == {"_id": "WT1", "version": 2}
    assert await runtime.db["reservations_m"].find_one({"_id": "WR1"}) == {"_id": "WR1"}
    assert committer.published_sids == [event.sid]


async def test_a_versioned_write_that_matches_nothing_is_a_conflict_and_writes_nothing(
    committer, runtime: ServiceRuntime
):
    from pymongo import ReplaceOne

    from shared.errors import ConflictError

    await runtime.db["tasks_m"].insert_one({"_id": "WT1", "version": 3})
    writes = [
        Write("reservations_m", InsertOne({"_id": "WR2"})),
        Write("tasks_m", ReplaceOne({"_id": "WT1", "version": 1}, {"version": 2}), must_match=True),
    ]
    with pytest.raises(ConflictError):
        await committer.commit(writes, [_created("WT1")])

    assert await runtime.db["reservations_m"].find_one({"_id": "WR2"}) is None
    assert committer.published_sids == []


async def test_a_duplicate_key_is_a_conflict(committer, runtime: ServiceRuntime):
    from shared.errors import ConflictError

    await runtime.db["tasks_m"].insert_one({"_id": "WT7"})
    with pytest.raises(ConflictError):
        await committer.commit([Write("tasks_m", InsertOne({"_id": "WT7"}))], [_created("WT7")])


async def test_published_outbox_documents_are_gone_after_the_next_commit_or_the_relay(
    committer, runtime: ServiceRuntime
):
    from datetime import timedelta

    outbox = runtime.db["outbox_modes"]
    await committer.commit([Write("things_m", InsertOne({"_id": "A"}))], [_created("WTa")])
    await committer.commit([Write("things_m", InsertOne({"_id": "B"}))], [_created("WTb")])
    # commit() returns once the batch is durable; its events may still be on their
    # way out. A relay running meanwhile must not publish them a second time.
    assert await committer.relay_outbox(older_than=timedelta(0)) == 0
    assert await outbox.count_documents({}) <= 1

    async def outbox_empty() -> bool:
        await committer.relay_outbox(older_than=timedelta(0))
        return await outbox.count_documents({}) == 0

    deadline = asyncio.get_running_loop().time() + 10
    while not await outbox_empty():
        assert asyncio.get_running_loop().time() < deadline, "outbox not emptied within 10 s"
        await asyncio.sleep(0.02)  # the pause between two polls
    assert len(set(committer.published_sids)) == len(committer.published_sids) == 2  # each event once


async def test_a_request_waits_out_a_restart_of_the_service_it_asks(runtime: ServiceRuntime, monkeypatch):
    """Nobody subscribed ("no responders"): the request is sent again until someone answers."""
    from nats.errors import NoRespondersError

    commands = runtime.commands
    monkeypatch.setattr(commands, "_restart_wait", 10.0)  # the test env sets 0
    refused = asyncio.Event()
    send = commands._broker.request

    async def observed(*args, **kwargs):
        try:
            return await send(*args, **kwargs)
        except NoRespondersError:
            refused.set()
            raise

    monkeypatch.setattr(commands._broker, "request", observed)
    asking = asyncio.create_task(commands.request("late", "thing.get", {"sid": "WT5"}))
    await asyncio.wait_for(refused.wait(), 5)  # the service is not there yet

    nc = await nats.connect(runtime.settings.nats_url)

    async def answer(message) -> None:
        await message.respond(orjson.dumps({"ok": True, "result": {"sid": "WT5"}}))

    await nc.subscribe(commands.subject("late", "thing.get"), cb=answer)
    assert await asyncio.wait_for(asking, 10) == {"sid": "WT5"}
    await nc.close()


async def test_a_request_nobody_ever_answers_is_unavailable(runtime: ServiceRuntime):
    from shared.errors import UnavailableError

    with pytest.raises(UnavailableError):
        await runtime.commands.request("absent", "thing.get", {"sid": "WT5"}, timeout=0.5)


async def test_a_read_that_may_not_wait_for_a_restart_asks_once(runtime: ServiceRuntime, monkeypatch):
    """`restart_wait=0`: one "no responders" answer is final (the caller falls back)."""
    from nats.errors import NoRespondersError

    from shared.errors import UnavailableError

    commands = runtime.commands
    monkeypatch.setattr(commands, "_restart_wait", 600.0)
    attempts = []
    send = commands._broker.request

    async def counted(*args, **kwargs):
        attempts.append(args[1] if len(args) > 1 else kwargs.get("subject"))
        return await send(*args, **kwargs)

    monkeypatch.setattr(commands._broker, "request", counted)
    with pytest.raises(UnavailableError) as refused:
        await commands.request("absent", "thing.get", {"sid": "WT5"}, restart_wait=0)
    assert isinstance(refused.value.__cause__, NoRespondersError)
    assert len(attempts) == 1
