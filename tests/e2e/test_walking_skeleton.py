"""The main job end to end with the official `twilio` client (issue: walking skeleton).

Create a FIFO workspace, two workers, make one available, create a task, see the
reservation go to the matching available worker, accept, complete; then check
the events through the Events API and on the NATS event subjects.
"""

from __future__ import annotations

import asyncio
import json

import nats
import pytest

from tests.e2e.conftest import RunningSystem, eventually

pytestmark = pytest.mark.e2e


def _available_activity(workspace) -> str:
    return next(a.sid for a in workspace.activities.list() if a.friendly_name == "Available")


async def _stream_subjects(nats_url: str, subject_filter: str) -> list[tuple[str, dict]]:
    """Every message the event stream holds under `subject_filter`."""
    connection = await nats.connect(nats_url)
    try:
        js = connection.jetstream()
        subscription = await js.pull_subscribe(subject_filter, durable=None)
        found: list[tuple[str, dict]] = []
        while True:
            try:
                batch = await subscription.fetch(256, timeout=1)
            except (nats.errors.TimeoutError, TimeoutError):
                return found
            found.extend((m.subject, json.loads(m.data)) for m in batch)
    finally:
        await connection.close()


def test_task_routes_from_creation_to_completion(system: RunningSystem):
    client = system.client()
    workspace = client.taskrouter.v1.workspaces.create(friendly_name="Skeleton", template="FIFO")
    ws = client.taskrouter.v1.workspaces(workspace.sid)
    assert [q.friendly_name for q in ws.task_queues.list()] == ["Sample Queue"]
    workflow = ws.workflows.list()[0]
    assert workflow.friendly_name == "Default Fifo Workflow"

    alice = ws.workers.create(friendly_name="Alice", attributes=json.dumps({"skills": ["en"]}))
    bob = ws.workers.create(friendly_name="Bob", attributes=json.dumps({"skills": ["es"]}))
    assert alice.available is False and bob.available is False
    ws.workers(alice.sid).update(activity_sid=_available_activity(ws))

    task = ws.tasks.create(attributes=json.dumps({"type": "support"}), workflow_sid=workflow.sid)
    assert task.assignment_status == "pending"

    reservation = eventually(lambda: ws.tasks(task.sid).reservations.list())[0]
    assert reservation.worker_sid == alice.sid
    assert reservation.reservation_status == "pending"
    assert ws.tasks(task.sid).fetch().assignment_status == "reserved"

    accepted = ws.tasks(task.sid).reservations(reservation.sid).update(reservation_status="accepted")
    assert accepted.reservation_status == "accepted"
    assert ws.tasks(task.sid).fetch().assignment_status == "assigned"

    done = ws.tasks(task.sid).update(assignment_status="completed", reason="resolved")
    assert done.assignment_status == "completed"
    assert ws.tasks(task.sid).fetch().reason == "resolved"

    expected = {
        "task.created", "task-queue.entered", "workflow.entered", "workflow.target-matched",
        "reservation.created", "reservation.accepted", "task.completed", "reservation.completed",
    }

    def logged_types() -> set[str]:
        types = {e.event_type for e in ws.events.list(task_sid=task.sid)}
        assert expected <= types, f"missing {expected - types}"
        return types

    eventually(logged_types)

    subject = f"{system.env['TASKROUTER_SUBJECT_PREFIX']}.events.{system.account_sid}.{workspace.sid}.>"
    published = asyncio.run(_stream_subjects(system.env["NATS_URL"], subject))
    on_bus = {body["event_type"] for _, body in published if body["event_data"].get("task_sid") == task.sid}
    assert expected <= on_bus
    subject_of = {body["event_type"]: s for s, body in published}
    assert subject_of["reservation.created"].endswith(f".{reservation.sid}.reservation.created")
