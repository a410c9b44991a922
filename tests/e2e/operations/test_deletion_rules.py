"""What may be deleted when (api-conventions.md §10): refusals answer 400/20001,
name the reason and change nothing; once the object is unused it goes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from twilio.base.exceptions import TwilioRestException

from tests.e2e.conftest import eventually
from tests.e2e.operations.conftest import Api, World, routing_to

pytestmark = pytest.mark.e2e


def _name(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


def _refused(delete: Callable[[], Any], fetch: Callable[[], Any], reason: str) -> None:
    """`delete` answers 400/20001 with `reason` in the message; the object stays."""
    with pytest.raises(TwilioRestException) as refused:
        delete()
    assert (refused.value.status, refused.value.code) == (400, 20001)
    assert reason in refused.value.msg, refused.value.msg
    assert fetch().sid


def _waiting_task(world: World, **routing: Any) -> tuple[Any, Any]:
    """A queue nobody serves, and a pending task sitting in it."""
    queue = world.ws.task_queues.create(
        friendly_name=_name("Nobody"), target_workers="1==0"
    )
    task = world.ws.tasks.create(task_queue_sid=queue.sid, **routing)
    eventually(lambda: world.ws.tasks(task.sid).fetch().task_queue_sid == queue.sid)
    return queue, task


def test_activity_in_use_cannot_be_deleted(api: Api, world: World):
    ws = world.ws
    _refused(
        ws.activities(world.offline.sid).delete,
        ws.activities(world.offline.sid).fetch,
        "default or timeout Activity",
    )
    held = ws.activities.create(friendly_name=_name("Held"))
    worker = ws.workers.create(friendly_name=_name("Holder"), activity_sid=held.sid)
    _refused(ws.activities(held.sid).delete, ws.activities(held.sid).fetch, "held by")
    ws.workers(worker.sid).update(activity_sid=world.offline.sid)
    queued = ws.activities.create(friendly_name=_name("Queued"))
    queue = ws.task_queues.create(
        friendly_name=_name("Uses"), assignment_activity_sid=queued.sid
    )
    _refused(
        ws.activities(queued.sid).delete,
        ws.activities(queued.sid).fetch,
        f"used by TaskQueue {queue.sid}",
    )
    assert ws.activities(held.sid).delete() is True


def test_task_queue_in_use_cannot_be_deleted(api: Api, world: World):
    ws = world.ws
    routed = ws.task_queues.create(friendly_name=_name("Routed"))
    workflow = ws.workflows.create(
        friendly_name=_name("To it"), configuration=routing_to(routed.sid)
    )
    _refused(
        ws.task_queues(routed.sid).delete,
        ws.task_queues(routed.sid).fetch,
        f"used by Workflow {workflow.sid}",
    )
    queue, task = _waiting_task(world)
    _refused(
        ws.task_queues(queue.sid).delete, ws.task_queues(queue.sid).fetch, "open Task"
    )
    ws.tasks(task.sid).update(assignment_status="canceled")
    assert ws.task_queues(queue.sid).delete() is True


def test_workflow_and_task_channel_with_open_tasks_cannot_be_deleted(
    api: Api, world: World
):
    ws = world.ws
    channel = ws.task_channels.create(
        friendly_name="Letters", unique_name=f"letters{uuid.uuid4().hex[:6]}"
    )
    queue = ws.task_queues.create(friendly_name=_name("Nobody"), target_workers="1==0")
    workflow = ws.workflows.create(
        friendly_name=_name("Busy"), configuration=routing_to(queue.sid)
    )
    task = ws.tasks.create(workflow_sid=workflow.sid, task_channel=channel.unique_name)
    _refused(
        ws.workflows(workflow.sid).delete, ws.workflows(workflow.sid).fetch, "open Task"
    )
    _refused(
        ws.task_channels(channel.sid).delete,
        ws.task_channels(channel.sid).fetch,
        "open Task",
    )
    ws.tasks(task.sid).update(assignment_status="canceled")
    assert ws.workflows(workflow.sid).delete() is True
    assert ws.task_channels(channel.unique_name).delete() is True


def test_worker_with_a_pending_reservation_cannot_be_deleted(api: Api, world: World):
    reserved = world.reserve()
    worker = world.ws.workers(reserved.worker.sid)
    _refused(worker.delete, worker.fetch, "reservation")
    world.ws.tasks(reserved.task.sid).reservations(reserved.reservation.sid).update(
        reservation_status="rejected", worker_activity_sid=world.offline.sid
    )
    assert worker.delete() is True


def test_tasks_are_deleted_in_any_open_or_closed_state(api: Api, world: World):
    ws = world.ws
    _, pending = _waiting_task(world)
    _, canceled = _waiting_task(world)
    ws.tasks(canceled.sid).update(assignment_status="canceled")
    reserved = world.reserve().task
    for task in (pending, canceled, reserved):
        assert ws.tasks(task.sid).delete() is True
        with pytest.raises(TwilioRestException) as gone:
            ws.tasks(task.sid).fetch()
        assert gone.value.status == 404


def test_deleting_a_workspace_removes_everything_inside(api: Api):
    workspace = api.v1.workspaces.create(friendly_name=_name("Doomed"), template="FIFO")
    ws = api.v1.workspaces(workspace.sid)
    worker = ws.workers.create(friendly_name="Inside", attributes=json.dumps({}))
    task = ws.tasks.create(workflow_sid=ws.workflows.list()[0].sid)
    queue = ws.task_queues.list()[0]
    assert ws.delete() is True
    for fetch in (
        ws.fetch,
        ws.workers(worker.sid).fetch,
        ws.tasks(task.sid).fetch,
        ws.task_queues(queue.sid).fetch,
    ):
        with pytest.raises(TwilioRestException) as gone:
            fetch()
        assert (gone.value.status, gone.value.code) == (404, 20404)
