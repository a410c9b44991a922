"""Workflow escalation end to end with the `twilio` client, and across a router crash.

A task waits in a Tier 1 queue nobody available can serve; at task age 3 s the
workflow's step timeout moves it to Tier 2, where a worker takes it.
"""

from __future__ import annotations

import json

import pytest
from pymongo import MongoClient

from shared.storage import collections as c
from tests.e2e.conftest import RunningSystem, eventually

pytestmark = pytest.mark.e2e

STEP_TIMEOUT = 3


def _escalating_workspace(system: RunningSystem):
    tr = system.client().taskrouter.v1
    workspace = tr.workspaces.create(friendly_name="Escalation")
    ws = tr.workspaces(workspace.sid)
    available = next(a.sid for a in ws.activities.list() if a.friendly_name == "Available")
    tier1 = ws.task_queues.create(friendly_name="Tier 1", target_workers="level >= 2")
    tier2 = ws.task_queues.create(friendly_name="Tier 2", target_workers="1 == 1")
    config = {"task_routing": {"filters": [{
        "filter_friendly_name": "Support",
        "expression": "type == 'support'",
        "targets": [{"queue": tier1.sid, "timeout": STEP_TIMEOUT}, {"queue": tier2.sid}],
    }]}}
    workflow = ws.workflows.create(friendly_name="Tiers", configuration=json.dumps(config))
    junior = ws.workers.create(friendly_name="Junior", attributes=json.dumps({"level": 1}))
    ws.workers(junior.sid).update(activity_sid=available)
    return ws, workflow, tier1, tier2, junior


def test_task_escalates_to_the_next_queue_on_step_timeout(system: RunningSystem):
    ws, workflow, tier1, tier2, junior = _escalating_workspace(system)
    task = ws.tasks.create(attributes=json.dumps({"type": "support"}), workflow_sid=workflow.sid)

    assert eventually(lambda: ws.tasks(task.sid).fetch().task_queue_sid == tier1.sid)
    assert ws.tasks(task.sid).reservations.list() == []

    reservation = eventually(lambda: ws.tasks(task.sid).reservations.list(), timeout=20)[0]
    assert reservation.worker_sid == junior.sid
    moved = ws.tasks(task.sid).fetch()
    assert moved.task_queue_sid == tier2.sid
    waited = (moved.task_queue_entered_date - moved.date_created).total_seconds()
    assert waited >= STEP_TIMEOUT - 1  # dates have whole-second precision

    expected = ["workflow.entered", "task-queue.entered", "task-queue.timeout",
                "task-queue.moved", "reservation.created"]

    def routing_events() -> bool:
        types = [e.event_type for e in ws.events.list(task_sid=task.sid)]
        assert set(expected) <= set(types), types
        assert types.count("workflow.target-matched") == 2
        return True

    eventually(routing_events)


def test_escalation_deadline_survives_a_router_crash(system: RunningSystem):
    ws, workflow, tier1, tier2, junior = _escalating_workspace(system)
    task = ws.tasks.create(attributes=json.dumps({"type": "support"}), workflow_sid=workflow.sid)
    assert ws.tasks(task.sid).fetch().task_queue_sid == tier1.sid  # taken at creation
    # The router records the step and arms its deadline when it handles
    # task.created; kill it after that, not inside that write's transaction
    # (the store holds a killed transaction's documents for 60 s).
    with MongoClient(system.env["MONGODB_URL"]) as store:
        positions = store[system.env["MONGODB_DATABASE"]][c.ROUTING_POSITIONS]
        eventually(lambda: positions.find_one({"_id": task.sid}))

    system.restart("workflow_router")  # SIGKILL while the step timer is armed

    reservation = eventually(lambda: ws.tasks(task.sid).reservations.list(), timeout=30)[0]
    assert reservation.worker_sid == junior.sid
    assert ws.tasks(task.sid).fetch().task_queue_sid == tier2.sid


def test_re_evaluate_tasks_moves_waiting_tasks_to_the_new_configuration(system: RunningSystem):
    ws, workflow, tier1, tier2, junior = _escalating_workspace(system)
    only_tier1 = {"task_routing": {"filters": [], "default_filter": {"queue": tier1.sid}}}
    ws.workflows(workflow.sid).update(configuration=json.dumps(only_tier1))
    task = ws.tasks.create(attributes=json.dumps({"type": "billing"}), workflow_sid=workflow.sid)
    assert eventually(lambda: ws.tasks(task.sid).fetch().task_queue_sid == tier1.sid)

    only_tier2 = {"task_routing": {"filters": [], "default_filter": {"queue": tier2.sid}}}
    ws.workflows(workflow.sid).update(configuration=json.dumps(only_tier2), re_evaluate_tasks="true")

    reservation = eventually(lambda: ws.tasks(task.sid).reservations.list(), timeout=20)[0]
    assert reservation.worker_sid == junior.sid
    assert ws.tasks(task.sid).fetch().task_queue_sid == tier2.sid

    def entered_twice() -> bool:
        # Re-evaluation starts the walk again: workflows.md §3 emits workflow.entered.
        types = [e.event_type for e in ws.events.list(task_sid=task.sid)]
        assert types.count("workflow.entered") == 2, types
        assert "task-queue.moved" in types, types
        return True

    eventually(entered_twice)


def test_reservation_timeout_armed_before_a_dispatcher_crash_still_fires(system: RunningSystem):
    tr = system.client().taskrouter.v1
    workspace = tr.workspaces.create(friendly_name="Reservation timer", template="FIFO")
    ws = tr.workspaces(workspace.sid)
    available = next(a.sid for a in ws.activities.list() if a.friendly_name == "Available")
    workflow = ws.workflows.list()[0]
    ws.workflows(workflow.sid).update(task_reservation_timeout=3)
    worker = ws.workers.create(friendly_name="Sleepy")
    ws.workers(worker.sid).update(activity_sid=available)
    task = ws.tasks.create(attributes="{}", workflow_sid=workflow.sid)
    reservation = eventually(lambda: ws.tasks(task.sid).reservations.list())[0]

    system.restart("queue_dispatcher")  # SIGKILL with the reservation timer armed

    def timed_out() -> bool:
        return ws.tasks(task.sid).reservations(reservation.sid).fetch().reservation_status == "timeout"

    eventually(timed_out, timeout=30)
    assert ws.workers(worker.sid).fetch().activity_name == "Offline"
    assert ws.tasks(task.sid).fetch().assignment_status == "pending"
