"""The queue-dispatcher together with the real workflow-router, in one process.

Checks the contract between them: `task.created` → router → `task.route` →
reservation; a step timeout while reserved is deferred, and the router moves
the task on once the reservation is rejected.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import orjson
import pytest
from test_dispatcher_service import T0, Clock, Config

from services.queue_dispatcher.app import build as build_dispatcher
from services.queue_dispatcher.settings import DispatcherSettings
from services.workflow_router.app import build as build_router
from services.workflow_router.settings import RouterSettings
from shared.models import TaskQueue
from shared.settings import load
from shared.sids import SidPrefix, new_sid
from shared.storage import collections as c
from shared.storage.mongo import open_client
from shared.subjects import QUEUE_DISPATCHER

pytestmark = pytest.mark.integration


async def _wait_for(probe, what: str, seconds: float = 10):
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        value = await probe()
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, (
            f"timed out waiting for {what}"
        )
        await asyncio.sleep(0.05)


@pytest.fixture
async def system(isolated_env):
    config = Config()
    second_queue = new_sid(SidPrefix.TASK_QUEUE)
    client = open_client(isolated_env["MONGODB_URL"])
    db = client[isolated_env["MONGODB_DATABASE"]]
    await config.seed(db)
    await db[c.TASK_QUEUES].insert_one(
        TaskQueue(
            sid=second_queue,
            account_sid=config.account,
            workspace_sid=config.workspace,
            friendly_name="overflow",
        ).to_document()
    )
    routing = {
        "task_routing": {
            "filters": [
                {
                    "filter_friendly_name": "all",
                    "expression": "1==1",
                    "targets": [
                        {"queue": config.queue, "timeout": 30},
                        {"queue": second_queue},
                    ],
                }
            ]
        }
    }
    await db[c.WORKFLOWS].update_one(
        {"_id": config.workflow},
        {"$set": {"configuration": orjson.dumps(routing).decode()}},
    )
    await client.close()

    clock = Clock()
    dispatcher_runtime, dispatcher = build_dispatcher(
        load(DispatcherSettings, isolated_env), clock
    )
    router_runtime, router = build_router(load(RouterSettings, isolated_env), clock)
    await dispatcher_runtime.start()
    await router_runtime.start()
    yield config, second_queue, clock, dispatcher_runtime, dispatcher, router
    await router_runtime.stop()
    await dispatcher_runtime.stop()


async def test_created_task_is_routed_and_reserved(system):
    config, second_queue, clock, runtime, dispatcher, router = system
    db = runtime.db

    async def send(action, **payload):
        body = {
            "account_sid": config.account,
            "workspace_sid": config.workspace,
            **payload,
        }
        return await runtime.commands.request(
            QUEUE_DISPATCHER, action, body, workspace_sid=config.workspace
        )

    worker = await send(
        "worker.create", friendly_name="alice", activity_sid=config.available
    )
    task = await send("task.create", workflow_sid=config.workflow, attributes="{}")

    async def reservation_of_task():
        return await db[c.RESERVATIONS].find_one(
            {"task_sid": task["sid"], "reservation_status": "pending"}
        )

    # The dispatcher took the first step while creating the task.
    assert task["task_queue_sid"] == config.queue
    reservation = await _wait_for(reservation_of_task, "the first reservation")
    assert reservation["worker_sid"] == worker["sid"]
    assert reservation["task_queue_sid"] == config.queue

    async def position_recorded():
        return router.records.get(task["sid"])

    # The router adopts that step (and arms its deadline) when it reads task.created.
    position = await _wait_for(position_recorded, "the router's position")
    assert (position.seq, position.filter_index, position.step_index) == (1, 0, 0)
    assert position.deadline == T0 + timedelta(seconds=30)

    # The step times out while the task is reserved: the router is told to wait.
    clock.now = T0 + timedelta(seconds=31)
    await router.timers.fire_due()
    stored = await db[c.TASKS].find_one({"_id": task["sid"]})
    assert stored["routing_overdue"] is True
    assert stored["task_queue_sid"] == config.queue

    # Rejected into Offline: the router moves the task to the overflow queue.
    await send(
        "reservation.update",
        reservation_sid=reservation["_id"],
        reservation_status="rejected",
        worker_activity_sid=config.offline,
    )

    async def moved():
        doc = await db[c.TASKS].find_one({"_id": task["sid"]})
        return doc if doc["task_queue_sid"] == second_queue else None

    doc = await _wait_for(moved, "the move to the overflow queue")
    assert doc["assignment_status"] == "pending"
    assert doc["routing_overdue"] is False
