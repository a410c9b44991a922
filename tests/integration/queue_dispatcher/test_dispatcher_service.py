"""The queue-dispatcher in-process against real NATS and a real store.

The test plays the gateway (it seeds configuration documents and sends worker
and task commands) and the workflow-router (it sends `task.route`), and checks
stored documents and published events. Time is a controlled clock; timers are
fired with `dispatcher.timers.fire_due()` after moving it.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import nats
import orjson
import pytest

from services.queue_dispatcher.app import build
from services.queue_dispatcher.settings import DispatcherSettings
from shared.errors import ConflictError, InvalidTransitionError, NotFoundError
from shared.events import make_event
from shared.models import TaskQueue, Workflow
from shared.settings import load
from shared.sids import SidPrefix, new_sid
from shared.storage import collections as c
from tests.seeding import seed_workspace
from shared.subjects import QUEUE_DISPATCHER

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Config:
    """Seeded configuration of one workspace."""

    def __init__(self) -> None:
        self.account = new_sid(SidPrefix.ACCOUNT)
        self.workspace = new_sid(SidPrefix.WORKSPACE)
        self.available = new_sid(SidPrefix.ACTIVITY)
        self.offline = new_sid(SidPrefix.ACTIVITY)
        self.channel = new_sid(SidPrefix.TASK_CHANNEL)
        self.queue = new_sid(SidPrefix.TASK_QUEUE)
        self.workflow = new_sid(SidPrefix.WORKFLOW)

    async def seed(self, db: Any, target_workers: str = "1==1") -> None:
        common = {"account_sid": self.account, "workspace_sid": self.workspace}
        await seed_workspace(
            db,
            account=self.account,
            workspace=self.workspace,
            available=self.available,
            offline=self.offline,
            channel=self.channel,
        )
        await db[c.TASK_QUEUES].insert_one(
            TaskQueue(
                sid=self.queue,
                friendly_name="q",
                target_workers=target_workers,
                **common,
            ).to_document()
        )
        await db[c.WORKFLOWS].insert_one(
            Workflow(
                sid=self.workflow,
                friendly_name="flow",
                configuration="{}",
                task_reservation_timeout=120,
                **common,
            ).to_document()
        )


class Harness:
    """Runs the service; sends commands as the gateway and router would."""

    def __init__(self, env: dict[str, str], config: Config) -> None:
        self.settings = load(DispatcherSettings, env)
        self.config = config
        self.clock = Clock()
        self.events: list[dict] = []
        self.runtime = None
        self.dispatcher = None
        self._nc = None

    async def start(self) -> None:
        self.runtime, self.dispatcher = build(self.settings, self.clock)
        await self.runtime.start()
        if self._nc is None:
            self._nc = await nats.connect(self.settings.nats_url)

            async def collect(message: Any) -> None:
                self.events.append(orjson.loads(message.data))

            await self._nc.subscribe(
                self.runtime.subjects.events_matching(), cb=collect
            )

    async def stop(self) -> None:
        await self.runtime.stop()

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.close()

    @property
    def db(self) -> Any:
        return self.runtime.db

    async def send(self, action: str, **payload: Any) -> Any:
        body = {
            "account_sid": self.config.account,
            "workspace_sid": self.config.workspace,
            **payload,
        }
        return await self.runtime.commands.request(
            QUEUE_DISPATCHER, action, body, workspace_sid=self.config.workspace
        )

    async def worker(self, name: str, available: bool = True, **fields: Any) -> dict:
        activity = self.config.available if available else self.config.offline
        return await self.send(
            "worker.create", friendly_name=name, activity_sid=activity, **fields
        )

    async def task(self, route: bool = True, **fields: Any) -> tuple[dict, str | None]:
        task = await self.send(
            "task.create", workflow_sid=self.config.workflow, **fields
        )
        if not route:
            return task, None
        outcome = await self.route(task["sid"], seq=1)
        return task, outcome

    async def route(self, task_sid: str, seq: int, **fields: Any) -> str:
        result = await self.send(
            "task.route",
            task_sid=task_sid,
            workflow_sid=self.config.workflow,
            step_key=f"{task_sid}:{seq}",
            seq=seq,
            queue_sid=self.config.queue,
            **fields,
        )
        return result["outcome"]

    async def doc(self, collection: str, sid: str) -> dict | None:
        return await self.db[collection].find_one({"_id": sid})

    async def events_of(self, resource_sid: str, count: int) -> list[str]:
        """Event types published about one resource, waiting until `count` arrived."""
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            found = [
                e["event_type"]
                for e in self.events
                if e["resource_sid"] == resource_sid
            ]
            if len(found) >= count or asyncio.get_running_loop().time() > deadline:
                return found
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running_harness(env: dict[str, str]):
    """A seeded workspace and a started dispatcher, stopped and closed on exit."""
    config = Config()
    h = Harness(env, config)
    from shared.storage.mongo import open_client

    client = open_client(env["MONGODB_URL"])
    await config.seed(client[env["MONGODB_DATABASE"]])
    await client.close()
    await h.start()
    try:
        yield h
    finally:
        await h.stop()
        await h.close()


@pytest.fixture
async def harness(isolated_env):
    async with running_harness(isolated_env) as h:
        yield h


async def test_task_flows_from_creation_to_completion(harness: Harness):
    worker = await harness.worker("alice")
    task, outcome = await harness.task(attributes='{"type": "support"}')
    assert outcome == "reserved"

    stored = await harness.doc(c.TASKS, task["sid"])
    assert stored["assignment_status"] == "reserved"
    assert stored["task_queue_sid"] == harness.config.queue
    reservation = await harness.db[c.RESERVATIONS].find_one({"task_sid": task["sid"]})
    assert reservation["worker_sid"] == worker["sid"]
    assert reservation["timeout_at"] == T0 + timedelta(seconds=120)

    accepted = await harness.send(
        "reservation.update",
        reservation_sid=reservation["_id"],
        task_sid=task["sid"],
        reservation_status="accepted",
    )
    assert accepted["reservation_status"] == "accepted"
    done = await harness.send(
        "task.update", task_sid=task["sid"], assignment_status="completed", reason="ok"
    )
    assert done["assignment_status"] == "completed"

    assert (await harness.doc(c.TASKS, task["sid"]))["reason"] == "ok"
    worker_doc = await harness.doc(c.WORKERS, worker["sid"])
    assert "assigned_tasks" not in worker_doc["channels"][0]  # counted, not stored
    assert _channel_loads(harness)[worker["sid"]][0][1:3] == (0, 0)
    assert worker_doc["friendly_name_lower"] == "alice"
    assert await harness.events_of(task["sid"], 3) == [
        "task.created",
        "task-queue.entered",
        "task.completed",
    ]
    assert await harness.events_of(reservation["_id"], 3) == [
        "reservation.created",
        "reservation.accepted",
        "reservation.completed",
    ]


async def test_refusals_come_back_as_domain_errors(harness: Harness):
    await harness.worker("alice")
    with pytest.raises(ConflictError):
        await harness.worker("ALICE")
    with pytest.raises(NotFoundError):
        await harness.send(
            "worker.update", worker_sid=new_sid(SidPrefix.WORKER), attributes="{}"
        )
    task, _ = await harness.task()
    reservation = await harness.db[c.RESERVATIONS].find_one({"task_sid": task["sid"]})
    await harness.send(
        "reservation.update",
        reservation_sid=reservation["_id"],
        reservation_status="accepted",
    )
    with pytest.raises(InvalidTransitionError) as caught:
        await harness.send(
            "task.update", task_sid=task["sid"], assignment_status="canceled"
        )
    assert "because it is not pending or reserved." in caught.value.message


async def test_reservation_timeout_fires_on_the_clock(harness: Harness):
    worker = await harness.worker("alice")
    task, _ = await harness.task()

    harness.clock.now = T0 + timedelta(seconds=121)
    await harness.dispatcher.timers.fire_due()

    reservation = await harness.db[c.RESERVATIONS].find_one({"task_sid": task["sid"]})
    assert reservation["reservation_status"] == "timeout"
    assert "open_key" not in reservation
    assert (await harness.doc(c.WORKERS, worker["sid"]))[
        "activity_sid"
    ] == harness.config.offline
    assert (await harness.doc(c.TASKS, task["sid"]))["assignment_status"] == "pending"
    assert await harness.events_of(worker["sid"], 2) == [
        "worker.created",
        "worker.activity.update",
    ]


async def test_queue_expression_event_rematches_waiting_tasks(harness: Harness):
    config = harness.config
    await harness.db[c.TASK_QUEUES].update_one(
        {"_id": config.queue}, {"$set": {"target_workers": "1==2"}}
    )
    await harness.dispatcher.refresh_configuration(config.workspace)
    await harness.worker("alice")
    task, outcome = await harness.task()
    assert outcome == "waiting"

    await harness.db[c.TASK_QUEUES].update_one(
        {"_id": config.queue}, {"$set": {"target_workers": "1==1"}}
    )
    event = make_event(
        "task-queue.expression.updated",
        account_sid=config.account,
        workspace_sid=config.workspace,
        resource_type="task_queue",
        resource_sid=config.queue,
        at=T0,
    )
    await harness.runtime.publish_event(event)

    deadline = asyncio.get_running_loop().time() + 10
    while (await harness.doc(c.TASKS, task["sid"]))["assignment_status"] != "reserved":
        assert asyncio.get_running_loop().time() < deadline, "task never reserved"
        await asyncio.sleep(0.05)


async def test_restart_keeps_tasks_offers_and_timers(harness: Harness):
    alice = await harness.worker("alice")
    harness.clock.now += timedelta(seconds=1)
    bob = await harness.worker("bob")
    harness.clock.now += timedelta(seconds=1)
    first, _ = await harness.task()
    harness.clock.now += timedelta(seconds=1)
    second, _ = await harness.task()
    harness.clock.now += timedelta(seconds=1)
    third, outcome = await harness.task()
    assert outcome == "waiting"
    accepted = await harness.db[c.RESERVATIONS].find_one({"task_sid": first["sid"]})
    await harness.send(
        "reservation.update",
        reservation_sid=accepted["_id"],
        reservation_status="accepted",
    )

    await harness.stop()
    await harness.start()

    state = harness.dispatcher.state(harness.config.workspace)
    assert {t.sid: str(t.status) for t in state.tasks.values()} == {
        first["sid"]: "assigned",
        second["sid"]: "reserved",
        third["sid"]: "pending",
    }
    # The pending offer of the second task times out in the new process; bob
    # (who held it) goes offline and the third task still waits.
    harness.clock.now = T0 + timedelta(seconds=124)
    await harness.dispatcher.timers.fire_due()
    second_offer = await harness.db[c.RESERVATIONS].find_one(
        {"task_sid": second["sid"]}
    )
    assert second_offer["reservation_status"] == "timeout"
    assert second_offer["worker_sid"] == bob["sid"]

    carol = await harness.worker("carol")
    carol_offers = (
        await harness.db[c.RESERVATIONS]
        .find({"worker_sid": carol["sid"]})
        .to_list(None)
    )
    assert [r["task_sid"] for r in carol_offers] == [second["sid"]]
    assert await harness.send(
        "task.route",
        task_sid=first["sid"],
        workflow_sid=harness.config.workflow,
        step_key="x",
        seq=1,
        queue_sid=harness.config.queue,
    ) == {"outcome": "gone"}
    cursor = await harness.db[c.RESERVATIONS].aggregate(
        [
            {"$match": {"reservation_status": "accepted"}},
            {"$group": {"_id": "$task_sid", "n": {"$sum": 1}}},
        ]
    )
    accepted_per_task = await cursor.to_list(None)
    assert [(d["_id"], d["n"]) for d in accepted_per_task] == [(first["sid"], 1)]
    assert _channel_loads(harness)[alice["sid"]][0][1:3] == (0, 1)


async def test_task_ttl_cancels_after_restart(harness: Harness):
    task, outcome = await harness.task(timeout=60)
    assert outcome == "waiting"

    await harness.stop()
    await harness.start()
    harness.clock.now = T0 + timedelta(seconds=61)
    await harness.dispatcher.timers.fire_due()

    stored = await harness.doc(c.TASKS, task["sid"])
    assert stored["assignment_status"] == "canceled"
    assert stored["reason"] == "Task TTL Exceeded"


async def test_workspace_deleted_drops_its_documents(harness: Harness):
    config = harness.config
    await harness.worker("alice")
    await harness.task()
    await harness.db[c.WORKSPACES].delete_one({"_id": config.workspace})
    event = make_event(
        "workspace.deleted",
        account_sid=config.account,
        workspace_sid=config.workspace,
        resource_type="workspace",
        resource_sid=config.workspace,
        at=T0,
    )
    await harness.runtime.publish_event(event)

    deadline = asyncio.get_running_loop().time() + 10
    while await harness.db[c.WORKERS].count_documents(
        {"workspace_sid": config.workspace}
    ):
        assert asyncio.get_running_loop().time() < deadline, "workers never dropped"
        await asyncio.sleep(0.05)
    assert await harness.db[c.TASKS].count_documents({}) == 0
    assert await harness.db[c.RESERVATIONS].count_documents({}) == 0
    with pytest.raises(NotFoundError):
        await harness.worker("bob")


async def test_unique_indexes_guard_names_and_live_offers(harness: Harness):
    indexes = await harness.db[c.WORKERS].index_information()
    assert any(spec.get("unique") for spec in indexes.values())
    reservation_indexes = await harness.db[c.RESERVATIONS].index_information()
    assert any(
        spec["key"] == [("open_key", 1)] and spec.get("unique")
        for spec in reservation_indexes.values()
    )


async def test_failed_commit_reloads_the_workspace_from_the_store(harness: Harness):
    worker = await harness.worker("alice")
    # Someone else (a second, misconfigured writer) changes the worker meanwhile.
    await harness.db[c.WORKERS].update_one(
        {"_id": worker["sid"]}, {"$set": {"attributes": '{"team": "x"}', "version": 7}}
    )

    with pytest.raises(ConflictError):
        await harness.send(
            "worker.update",
            worker_sid=worker["sid"],
            activity_sid=harness.config.offline,
        )
    updated = await harness.send(
        "worker.update", worker_sid=worker["sid"], activity_sid=harness.config.offline
    )

    assert updated["version"] == 8
    assert updated["attributes"] == '{"team": "x"}'
    assert updated["activity_sid"] == harness.config.offline


def _channel_loads(harness: Harness) -> dict[str, list[tuple]]:
    state = harness.dispatcher.state(harness.config.workspace)
    return {
        worker.sid: [
            (ch.task_channel_sid, ch.reserved_tasks, ch.assigned_tasks, ch.last_reserved_at)
            for ch in worker.model.channels
        ]
        for worker in state.workers.values()
    }


async def test_channel_load_and_idle_times_survive_a_restart(harness: Harness):
    """Channel counters and last offer times are not written with the worker
    (worker_load): a restart counts them from live reservations and recovers
    the idle times from the checkpoint and the reservations created since."""
    workers = [await harness.worker(name) for name in ("alice", "bob")]
    for worker in workers:
        await harness.send(
            "worker-channel.update", worker_sid=worker["sid"], channel="default", capacity=3
        )
    tasks = []
    for _ in range(3):
        harness.clock.now += timedelta(seconds=1)
        task, outcome = await harness.task()
        assert outcome == "reserved"
        tasks.append(task)
    first = await harness.db[c.RESERVATIONS].find_one({"task_sid": tasks[0]["sid"]})
    await harness.send(
        "reservation.update", reservation_sid=first["_id"], reservation_status="accepted"
    )
    assert await harness.dispatcher.checkpoint_idle() == 1
    assert await harness.dispatcher.checkpoint_idle() == 0  # nothing offered since

    # After the checkpoint: one more offer, and one whose task is deleted (its
    # reservation goes with it, so the deletion writes the checkpoint first).
    for _ in range(2):
        harness.clock.now += timedelta(seconds=1)
        task, outcome = await harness.task()
        assert outcome == "reserved"
        tasks.append(task)
    await harness.send("task.delete", task_sid=tasks[-1]["sid"])
    harness.clock.now += timedelta(seconds=1)

    before = _channel_loads(harness)
    assert sorted(
        (load[0][1], load[0][2]) for load in before.values()
    ) == [(1, 1), (2, 0)]  # four live offers: one accepted, three pending
    assert all(load[0][3] is not None for load in before.values())
    stored = await harness.doc(c.WORKERS, workers[0]["sid"])
    assert "reserved_tasks" not in stored["channels"][0]
    assert "assigned_tasks" not in stored["channels"][0]

    await harness.stop()
    await harness.start()

    assert _channel_loads(harness) == before
