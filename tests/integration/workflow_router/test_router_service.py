"""The workflow-router against real NATS and a real store, with a controlled clock.

The queue-dispatcher is played by the test: it answers `task.route` and
`task.remove` commands on the real bus and records them, so each test decides
whether a step reserves a worker, waits, or is skipped.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from services.workflow_router.app import build
from services.workflow_router.settings import RouterSettings
from shared.errors import UnavailableError
from shared.events import Event, make_event, task_data
from shared.models import Task, TaskQueue, Workflow, Workspace
from shared.runtime import ServiceRuntime
from shared.settings import load
from shared.sids import SidPrefix, new_sid
from shared.storage import collections as c
from shared.subjects import QUEUE_DISPATCHER
from shared.workflow_routing import workflow_version

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class FakeDispatcher:
    """Answers routing commands on the bus; `outcomes` decides each answer."""

    def __init__(self) -> None:
        self.commands: asyncio.Queue[dict] = asyncio.Queue()
        self.reserved: set[str] = set()

    def answer(self, body: dict) -> dict:
        if body.get("defer_if_reserved") and body["task_sid"] in self.reserved:
            return {"outcome": "deferred"}
        if body["action"] == "task.remove":
            return {"outcome": "removed"}
        return {"outcome": "waiting"}

    async def next(self) -> dict:
        return await asyncio.wait_for(self.commands.get(), 10)


@pytest.fixture
async def world(isolated_env):
    settings = load(RouterSettings, isolated_env)
    clock = Clock()
    dispatcher = FakeDispatcher()
    peer = ServiceRuntime("test-peer", settings)

    for action in ("task.route", "task.remove"):
        @peer.broker.subscriber(peer.subjects.command_listener(QUEUE_DISPATCHER, action))
        async def on_command(body: dict) -> bytes:
            await dispatcher.commands.put(body)
            return orjson.dumps({"ok": True, "result": dispatcher.answer(body)})

    await peer.start()
    runtime, router = build(settings, clock)
    await runtime.start()
    yield settings, clock, dispatcher, peer, runtime, router
    await runtime.stop()
    await peer.stop()


async def _seed(db, steps: list[dict]) -> tuple[Workspace, Workflow, list[TaskQueue]]:
    account = new_sid(SidPrefix.ACCOUNT)
    workspace = Workspace(sid=new_sid(SidPrefix.WORKSPACE), account_sid=account, friendly_name="W")
    queues = [
        TaskQueue(sid=new_sid(SidPrefix.TASK_QUEUE), account_sid=account, workspace_sid=workspace.sid, friendly_name=f"Q{i}")
        for i in range(3)
    ]
    targets = [{**step, "queue": queues[step.pop("q")].sid} for step in steps]
    config = {"task_routing": {"filters": [{"expression": "type == 'support'", "targets": targets}],
                               "default_filter": {"queue": queues[2].sid}}}
    workflow = Workflow(sid=new_sid(SidPrefix.WORKFLOW), account_sid=account, workspace_sid=workspace.sid,
                        friendly_name="WF", configuration=json.dumps(config))
    await db[c.WORKSPACES].insert_one(workspace.to_document())
    await db[c.TASK_QUEUES].insert_many([q.to_document() for q in queues])
    await db[c.WORKFLOWS].insert_one(workflow.to_document())
    return workspace, workflow, queues


def _created(workspace: Workspace, task: Task, **extra: str) -> Event:
    return make_event("task.created", account_sid=workspace.account_sid, workspace_sid=workspace.sid,
                      resource_type="task", resource_sid=task.sid, at=T0, data={**task_data(task, T0), **extra})


async def _create_task(
    peer: ServiceRuntime, workspace: Workspace, workflow: Workflow, attributes: dict,
    queue_sid: str | None = None, chosen_with: datetime | None = None,
) -> Task:
    """`task.created`; `queue_sid` as when the dispatcher took the first step itself,
    with the workflow version `chosen_with` (default: the workflow as seeded)."""
    task = Task(sid=new_sid(SidPrefix.TASK), account_sid=workspace.account_sid, workspace_sid=workspace.sid,
                attributes=json.dumps(attributes), workflow_sid=workflow.sid, date_created=T0,
                task_queue_sid=queue_sid)
    extra = {}
    if queue_sid is not None:
        extra["workflow_date_updated"] = str(workflow_version(chosen_with or workflow.date_updated))
    await peer.committer.commit([], [_created(workspace, task, **extra)])
    return task


async def _recorded(router, task_sid: str, seconds: float = 10):
    deadline = asyncio.get_running_loop().time() + seconds
    while task_sid not in router.records:
        assert asyncio.get_running_loop().time() < deadline, f"no position for {task_sid}"
        await asyncio.sleep(0.02)
    return router.records[task_sid]


async def test_task_escalates_on_timeouts_measured_on_task_age(world):
    settings, clock, dispatcher, peer, runtime, router = world
    workspace, workflow, queues = await _seed(runtime.db, [{"q": 0, "timeout": 30, "priority": 5}, {"q": 1, "timeout": 90}])
    task = await _create_task(peer, workspace, workflow, {"type": "support"})

    first = await dispatcher.next()
    assert (first["queue_sid"], first["priority"], first["seq"]) == (queues[0].sid, 5, 1)

    clock.now = T0 + timedelta(seconds=30)
    assert await router.timers.fire_due() == 1
    second = await dispatcher.next()
    assert (second["queue_sid"], second["seq"], second["defer_if_reserved"]) == (queues[1].sid, 2, True)

    clock.now = T0 + timedelta(seconds=90)  # task age 90: the second step's timeout
    await router.timers.fire_due()
    removal = await dispatcher.next()
    assert removal["action"] == "task.remove"
    assert removal["reason"] == "Task canceled on Workflow timeout"
    assert await runtime.db[c.ROUTING_POSITIONS].find_one({"_id": task.sid}) is None


async def test_step_timeout_waits_for_a_pending_reservation(world):
    settings, clock, dispatcher, peer, runtime, router = world
    workspace, workflow, queues = await _seed(runtime.db, [{"q": 0, "timeout": 10}, {"q": 1}])
    task = await _create_task(peer, workspace, workflow, {"type": "support"})
    await dispatcher.next()
    dispatcher.reserved.add(task.sid)

    clock.now = T0 + timedelta(seconds=11)
    await router.timers.fire_due()
    deferred = await dispatcher.next()
    assert deferred["defer_if_reserved"] is True
    stored = await runtime.db[c.ROUTING_POSITIONS].find_one({"_id": task.sid})
    assert stored["overdue"] is True and stored["step_index"] == 0

    dispatcher.reserved.discard(task.sid)
    rejected = make_event("reservation.rejected", account_sid=workspace.account_sid, workspace_sid=workspace.sid,
                          resource_type="reservation", resource_sid=new_sid(SidPrefix.RESERVATION), at=clock.now,
                          data={"task_sid": task.sid})
    await peer.committer.commit([], [rejected])
    moved = await dispatcher.next()
    assert moved["queue_sid"] == queues[1].sid and moved["seq"] == 2


async def test_deadline_survives_a_router_restart(world, isolated_env):
    settings, clock, dispatcher, peer, runtime, router = world
    workspace, workflow, queues = await _seed(runtime.db, [{"q": 0, "timeout": 60}, {"q": 1}])
    task = await _create_task(peer, workspace, workflow, {"type": "support"})
    await dispatcher.next()
    await runtime.stop()

    runtime2, router2 = build(settings, clock)
    await runtime2.start()
    try:
        resent = await dispatcher.next()  # start-up re-sends the current step
        assert resent["seq"] == 1 and resent["queue_sid"] == queues[0].sid
        assert router2.timers.due_at(task.sid) == T0 + timedelta(seconds=60)
        clock.now = T0 + timedelta(seconds=60)
        await router2.timers.fire_due()
        moved = await dispatcher.next()
        assert moved["queue_sid"] == queues[1].sid
    finally:
        await runtime2.stop()


async def test_unmatched_task_goes_to_default_filter(world):
    settings, clock, dispatcher, peer, runtime, router = world
    workspace, workflow, queues = await _seed(runtime.db, [{"q": 0, "timeout": 10}])
    await _create_task(peer, workspace, workflow, {"type": "sales"})
    routed = await dispatcher.next()
    assert routed["queue_sid"] == queues[2].sid


async def test_a_position_recorded_elsewhere_is_continued_not_entered_twice(world):
    """A first position already in the store (written by the replica that owned the
    workspace before) is picked up where it stands: no second entry, same step."""
    settings, clock, dispatcher, peer, runtime, router = world
    workspace, workflow, queues = await _seed(runtime.db, [{"q": 0, "timeout": 30}, {"q": 1, "timeout": 90}])
    task_sid = new_sid(SidPrefix.TASK)
    await runtime.db[c.ROUTING_POSITIONS].insert_one({
        "_id": task_sid, "task_sid": task_sid, "account_sid": workspace.account_sid,
        "workspace_sid": workspace.sid, "workflow_sid": workflow.sid,
        "task_attributes": json.dumps({"type": "support"}), "task_created_at": T0,
        "seq": 2, "filter_index": 0, "step_index": 1, "step_entered_at": T0 + timedelta(seconds=30),
        "queue_sid": queues[1].sid, "deadline": T0 + timedelta(seconds=90),
    })
    task = Task(sid=task_sid, account_sid=workspace.account_sid, workspace_sid=workspace.sid,
                attributes=json.dumps({"type": "support"}), workflow_sid=workflow.sid, date_created=T0)
    event = make_event("task.created", account_sid=workspace.account_sid, workspace_sid=workspace.sid,
                       resource_type="task", resource_sid=task.sid, at=T0, data=task_data(task, T0))
    await peer.committer.commit([], [event])

    command = await dispatcher.next()
    assert (command["queue_sid"], command["seq"]) == (queues[1].sid, 2)
    assert router.records[task_sid].step_index == 1
    assert dispatcher.commands.empty()  # no entry at step 0 was sent
    stored = await runtime.db[c.ROUTING_POSITIONS].find_one({"_id": task_sid})
    assert (stored["seq"], stored["step_index"]) == (2, 1)


async def test_a_first_step_taken_at_creation_is_adopted_without_a_command(world):
    settings, clock, dispatcher, peer, runtime, router = world
    workspace, workflow, queues = await _seed(runtime.db, [{"q": 0, "timeout": 30}, {"q": 1}])
    task = await _create_task(peer, workspace, workflow, {"type": "support"}, queue_sid=queues[0].sid)

    position = await _recorded(router, task.sid)
    assert (position.seq, position.filter_index, position.step_index) == (1, 0, 0)
    assert position.queue_sid == queues[0].sid
    assert position.deadline == T0 + timedelta(seconds=30)
    stored = await runtime.db[c.ROUTING_POSITIONS].find_one({"_id": task.sid})
    assert (stored["seq"], stored["step_index"]) == (1, 0)
    assert dispatcher.commands.empty()  # the dispatcher already placed the task

    clock.now = T0 + timedelta(seconds=30)
    assert await router.timers.fire_due() == 1
    moved = await dispatcher.next()
    assert (moved["queue_sid"], moved["seq"]) == (queues[1].sid, 2)


async def test_a_first_step_chosen_with_another_workflow_version_is_re_evaluated(world):
    """The dispatcher chose with a copy of the workflow older than the router's (an
    update reached it late): even with the same queue, the step's other settings
    may differ, so the task is re-evaluated, waiting for a pending reservation."""
    settings, clock, dispatcher, peer, runtime, router = world
    workspace, workflow, queues = await _seed(runtime.db, [{"q": 0, "timeout": 30}, {"q": 1}])
    older = workflow.date_updated - timedelta(seconds=1)
    task = await _create_task(peer, workspace, workflow, {"type": "support"}, queue_sid=queues[0].sid,
                              chosen_with=older)

    command = await dispatcher.next()
    assert (command["queue_sid"], command["seq"], command["defer_if_reserved"]) == (queues[0].sid, 2, True)
    stored = await _stored_when(runtime, task.sid, lambda doc: doc["seq"] == 2)
    assert (stored["step_index"], stored["queue_sid"], stored["overdue"]) == (0, queues[0].sid, False)


async def test_a_deferred_re_evaluation_enters_the_workflow_again_when_the_reservation_ends(world):
    settings, clock, dispatcher, peer, runtime, router = world
    workspace, workflow, queues = await _seed(runtime.db, [{"q": 0, "timeout": 30}, {"q": 1}])
    sid = new_sid(SidPrefix.TASK)
    dispatcher.reserved.add(sid)  # reserved in the same decision that created it
    task = Task(sid=sid, account_sid=workspace.account_sid, workspace_sid=workspace.sid,
                attributes=json.dumps({"type": "support"}), workflow_sid=workflow.sid, date_created=T0,
                task_queue_sid=queues[2].sid)
    await peer.committer.commit([], [_created(workspace, task, workflow_date_updated="0")])

    deferred = await dispatcher.next()
    assert (deferred["queue_sid"], deferred["seq"], deferred["defer_if_reserved"]) == (queues[0].sid, 2, True)
    stored = await _stored_when(runtime, sid, lambda doc: doc.get("overdue"))
    assert stored["reenter"] is True and stored["queue_sid"] == queues[2].sid

    dispatcher.reserved.discard(sid)
    rejected = make_event("reservation.rejected", account_sid=workspace.account_sid, workspace_sid=workspace.sid,
                          resource_type="reservation", resource_sid=new_sid(SidPrefix.RESERVATION), at=T0,
                          data={"task_sid": sid})
    await peer.committer.commit([], [rejected])
    moved = await dispatcher.next()
    # The first step of the current configuration, not the step after a timeout.
    assert (moved["queue_sid"], moved["seq"]) == (queues[0].sid, 2)


async def _adopted_then_completed(world) -> tuple[Workspace, Workflow, Task]:
    """A task whose first step the router adopted, then completed."""
    settings, clock, dispatcher, peer, runtime, router = world
    workspace, workflow, queues = await _seed(runtime.db, [{"q": 0}])
    task = await _create_task(peer, workspace, workflow, {"type": "support"}, queue_sid=queues[0].sid)
    await _recorded(router, task.sid)
    completed = make_event("task.completed", account_sid=workspace.account_sid, workspace_sid=workspace.sid,
                           resource_type="task", resource_sid=task.sid, at=T0, data=task_data(task, T0))
    await router.on_event(completed.model_dump())
    return workspace, workflow, task


async def test_a_late_task_created_of_a_finished_task_records_nothing(world):
    settings, clock, dispatcher, peer, runtime, router = world
    workspace, workflow, task = await _adopted_then_completed(world)
    assert task.sid not in router.records

    redelivered = _created(workspace, task, workflow_date_updated=str(workflow_version(workflow.date_updated)))
    await router.on_event(redelivered.model_dump())

    assert task.sid not in router.records
    assert await runtime.db[c.ROUTING_POSITIONS].find_one({"_id": task.sid}) is None
    assert dispatcher.commands.empty()


async def _stored_when(runtime: ServiceRuntime, task_sid: str, check, seconds: float = 10) -> dict:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        doc = await runtime.db[c.ROUTING_POSITIONS].find_one({"_id": task_sid})
        if doc is not None and check(doc):
            return doc
        assert asyncio.get_running_loop().time() < deadline, f"position of {task_sid} not as expected"
        await asyncio.sleep(0.02)


def _flaky_once(runtime: ServiceRuntime) -> None:
    """The next command to the dispatcher fails as if it were restarting."""
    real = runtime.commands.request
    calls = 0

    async def request(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise UnavailableError("queue-dispatcher did not answer 'task.route' in time")
        return await real(*args, **kwargs)

    runtime.commands.request = request


async def _until_waiting(lock: asyncio.Lock, waiters: int) -> None:
    """Let other coroutines run until `waiters` of them wait for `lock`."""
    deadline = asyncio.get_running_loop().time() + 10
    while len(getattr(lock, "_waiters", None) or ()) < waiters:
        assert asyncio.get_running_loop().time() < deadline, "nobody waits for the lock"
        await asyncio.sleep(0)


async def test_a_deadline_firing_during_a_deferred_re_evaluation_keeps_the_re_entry(world):
    """The timer takes the deadline and waits for the task's lock while a
    re-evaluation (new attributes) holds it and is deferred: the late deadline
    must not turn the pending re-entry into a move on timeout."""
    settings, clock, dispatcher, peer, runtime, router = world
    workspace, workflow, queues = await _seed(runtime.db, [{"q": 0, "timeout": 30}, {"q": 1}])
    task = await _create_task(peer, workspace, workflow, {"type": "support"})
    await dispatcher.next()
    await _recorded(router, task.sid)
    dispatcher.reserved.add(task.sid)

    clock.now = T0 + timedelta(seconds=30)
    updated = make_event("task.updated", account_sid=workspace.account_sid, workspace_sid=workspace.sid,
                         resource_type="task", resource_sid=task.sid, at=clock.now,
                         data={"task_sid": task.sid, "task_attributes": json.dumps({"type": "sales"})})
    lock = router._lock(task.sid)
    await lock.acquire()
    update = asyncio.create_task(router.on_event(updated.model_dump()))
    await _until_waiting(lock, 1)
    fire = asyncio.create_task(router.timers.fire_due())
    await _until_waiting(lock, 2)
    lock.release()
    await update
    assert await fire == 1
    stored = await runtime.db[c.ROUTING_POSITIONS].find_one({"_id": task.sid})
    assert (stored["overdue"], stored["reenter"]) == (True, True)

    while not dispatcher.commands.empty():
        dispatcher.commands.get_nowait()
    dispatcher.reserved.discard(task.sid)
    rejected = make_event("reservation.rejected", account_sid=workspace.account_sid, workspace_sid=workspace.sid,
                          resource_type="reservation", resource_sid=new_sid(SidPrefix.RESERVATION),
                          at=clock.now, data={"task_sid": task.sid})
    await router.on_event(rejected.model_dump())
    moved = await dispatcher.next()
    assert moved["queue_sid"] == queues[2].sid  # "sales" enters again: the default filter


async def test_a_re_evaluation_of_an_adopted_step_survives_a_failed_send(world):
    settings, clock, dispatcher, peer, runtime, router = world
    workspace, workflow, queues = await _seed(runtime.db, [{"q": 0, "timeout": 30}, {"q": 1}])
    task = Task(sid=new_sid(SidPrefix.TASK), account_sid=workspace.account_sid, workspace_sid=workspace.sid,
                attributes=json.dumps({"type": "support"}), workflow_sid=workflow.sid, date_created=T0,
                task_queue_sid=queues[0].sid)
    older = str(workflow_version(workflow.date_updated - timedelta(seconds=1)))
    created = _created(workspace, task, workflow_date_updated=older).model_dump()

    _flaky_once(runtime)
    with pytest.raises(UnavailableError):
        await router.on_event(created)
    await router.on_event(created)  # the redelivery

    position = router.records[task.sid]
    assert (position.seq, position.filter_index, position.step_index) == (2, 0, 0)
    assert position.deadline == T0 + timedelta(seconds=30)


async def test_a_re_evaluation_after_new_attributes_survives_a_failed_send(world):
    settings, clock, dispatcher, peer, runtime, router = world
    workspace, workflow, queues = await _seed(runtime.db, [{"q": 0, "timeout": 30}, {"q": 1}])
    task = await _create_task(peer, workspace, workflow, {"type": "support"})
    await dispatcher.next()
    await _recorded(router, task.sid)
    updated = make_event("task.updated", account_sid=workspace.account_sid, workspace_sid=workspace.sid,
                         resource_type="task", resource_sid=task.sid, at=T0,
                         data={"task_sid": task.sid, "task_attributes": json.dumps({"type": "sales"})})

    _flaky_once(runtime)
    with pytest.raises(UnavailableError):
        await router.on_event(updated.model_dump())
    await router.on_event(updated.model_dump())  # the redelivery

    moved = await dispatcher.next()
    assert moved["queue_sid"] == queues[2].sid


async def test_a_late_task_created_after_a_router_restart_is_checked_with_the_dispatcher(world):
    """A redelivery after a restart is not caught by the in-memory list of finished
    tasks; arriving late, it is checked with the dispatcher, which answers "gone"."""
    settings, clock, dispatcher, peer, runtime, router = world
    workspace, workflow, task = await _adopted_then_completed(world)
    await runtime.stop()

    runtime2, router2 = build(settings, clock)
    await runtime2.start()
    try:
        clock.now = T0 + timedelta(seconds=60)  # JetStream redelivers after its ack wait
        dispatcher.answer = lambda body: {"outcome": "gone"}
        redelivered = _created(workspace, task, workflow_date_updated=str(workflow_version(workflow.date_updated)))
        await router2.on_event(redelivered.model_dump())

        assert (await dispatcher.next())["seq"] == 1
        assert task.sid not in router2.records
        assert await runtime2.db[c.ROUTING_POSITIONS].find_one({"_id": task.sid}) is None
    finally:
        await runtime2.stop()
