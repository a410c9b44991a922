"""One test per operation on workers, worker channels, tasks and reservations,
through the official client; the recorder checks every answer against the
contract."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.contract import contract
from tests.e2e.conftest import eventually
from tests.e2e.operations.conftest import Api, World, routing_to
from tests.e2e.operations.registry import operation
from tests.e2e.operations.test_ops_configuration import _gone, _name

pytestmark = pytest.mark.e2e


def _etag(api: Api) -> str:
    etag = api.recorder.calls.latest.headers.get("etag")
    assert etag, "no ETag on a versioned object"
    return etag


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _example(schema: dict[str, Any], activity_sid: str) -> Any:
    """A valid value of a form parameter's schema."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = contract()["components"]["schemas"][name]
    if schema.get("type") == "array":
        return [_example(schema["items"], activity_sid)]
    if "enum" in schema:
        return schema["enum"][0]
    pattern = schema.get("pattern", "")
    if pattern.startswith("^WA"):
        return activity_sid
    if pattern.startswith("^CA"):
        return "CA" + "0" * 32
    return {"boolean": True, "integer": 30}.get(
        schema.get("type"),
        (
            "http://127.0.0.1:9/voice"
            if schema.get("format") == "uri"
            else "client:alice"
        ),
    )


def telephony_parameters(operation_id: str, activity_sid: str) -> dict[str, Any]:
    """Every parameter of a reservation update besides the status, instruction and
    WorkerActivitySid, with valid values, as keyword arguments of the client."""
    path = {
        "UpdateTaskReservation": "/v1/Workspaces/{WorkspaceSid}/Tasks/{TaskSid}/"
        "Reservations/{Sid}",
        "UpdateWorkerReservation": "/v1/Workspaces/{WorkspaceSid}/Workers/{WorkerSid}/"
        "Reservations/{Sid}",
    }[operation_id]
    body = contract()["paths"][path]["post"]["requestBody"]["content"]
    properties = body["application/x-www-form-urlencoded"]["schema"]["properties"]
    skip = {"ReservationStatus", "Instruction", "WorkerActivitySid"}
    keyword = {"From": "from_"}
    return {
        keyword.get(name, _snake(name)): _example(schema, activity_sid)
        for name, schema in properties.items()
        if name not in skip
    }


def delete_if_match(api: Api, url: str, etag: str) -> int:
    """DELETE with `If-Match`, sent raw: twilio-python 9.x builds the header for its
    `delete(if_match=...)` and then drops it, so the client never sends it."""
    response = api.client.request("DELETE", url, headers={"If-Match": etag})
    return response.status_code


# -- workers ---------------------------------------------------------------------
@operation("CreateWorker")
def test_create_worker(api: Api, world: World):
    worker = world.ws.workers.create(
        friendly_name=_name("Ann"),
        attributes=json.dumps({"skills": ["en"]}),
        activity_sid=world.available.sid,
    )
    assert worker.activity_name == "Available" and worker.available is True
    assert json.loads(worker.attributes) == {"skills": ["en"]}
    assert _etag(api)


@operation("FetchWorker")
def test_fetch_worker(api: Api, world: World):
    fetched = world.ws.workers(world.reserved.worker.sid).fetch()
    assert fetched.friendly_name == world.reserved.worker.friendly_name
    assert _etag(api)


@operation("UpdateWorker")
def test_update_worker(api: Api, world: World):
    worker = world.ws.workers.create(friendly_name=_name("Ben"))
    world.ws.workers(worker.sid).fetch()
    updated = world.ws.workers(worker.sid).update(
        if_match=_etag(api),
        friendly_name=_name("Benjamin"),
        attributes=json.dumps({"skills": ["de"]}),
        activity_sid=world.offline.sid,
        reject_pending_reservations=True,
    )
    assert updated.friendly_name.startswith("Benjamin") and updated.available is False
    assert json.loads(updated.attributes) == {"skills": ["de"]}


@operation("DeleteWorker")
def test_delete_worker(api: Api, world: World):
    worker = world.ws.workers.create(friendly_name=_name("Cleo"))
    world.ws.workers(worker.sid).fetch()
    assert delete_if_match(api, worker.url, _etag(api)) == 204
    _gone(world.ws.workers(worker.sid).fetch)
    other = world.ws.workers.create(friendly_name=_name("Dan"))
    assert world.ws.workers(other.sid).delete() is True


@operation("ListWorker")
def test_list_workers(api: Api, world: World):
    tag = uuid.uuid4().hex[:10]
    queue = world.ws.task_queues.create(
        friendly_name=_name("Team"), target_workers=f"team == '{tag}'"
    )
    made = [
        world.ws.workers.create(
            friendly_name=f"{tag} {n}",
            attributes=json.dumps({"team": tag, "n": n}),
            activity_sid=world.available.sid if n else world.offline.sid,
        )
        for n in range(3)
    ]
    sids = [w.sid for w in made]

    def listed(**filters: Any) -> list[str]:
        return [w.sid for w in world.ws.workers.list(**filters) if w.sid in sids]

    assert listed(task_queue_sid=queue.sid, page_size=2) == sids
    assert listed(task_queue_name=queue.friendly_name) == sids
    assert listed(target_workers_expression=f"team == '{tag}' AND n > 0") == sids[1:]
    assert listed(activity_sid=world.offline.sid) == sids[:1]
    assert listed(activity_name="Available", task_queue_sid=queue.sid) == sids[1:]
    assert listed(available="true", task_queue_sid=queue.sid) == sids[1:]
    assert listed(available="false", task_queue_sid=queue.sid) == sids[:1]
    assert listed(friendly_name=f"{tag} 2") == sids[2:]
    assert listed(ordering="DateCreated:desc", task_queue_sid=queue.sid) == sids[::-1]


# -- worker channels -------------------------------------------------------------
@operation("ListWorkerChannel")
def test_list_worker_channels(api: Api, world: World):
    channels = world.ws.workers(world.reserved.worker.sid).worker_channels.list(
        page_size=2
    )
    assert {"default", "voice", "chat", "sms", "video"} <= {
        c.task_channel_unique_name for c in channels
    }


@operation("FetchWorkerChannel")
def test_fetch_worker_channel(api: Api, world: World):
    worker = world.ws.workers(world.reserved.worker.sid)
    listed = next(
        c for c in worker.worker_channels.list() if c.task_channel_unique_name == "chat"
    )
    fetched = worker.worker_channels(listed.sid).fetch()
    assert (fetched.sid, fetched.configured_capacity) == (
        listed.sid,
        listed.configured_capacity,
    )


@operation("UpdateWorkerChannel")
def test_update_worker_channel(api: Api, world: World):
    worker = world.ws.workers.create(friendly_name=_name("Dora"))
    channel = next(
        c
        for c in world.ws.workers(worker.sid).worker_channels.list()
        if c.task_channel_unique_name == "chat"
    )
    updated = (
        world.ws.workers(worker.sid)
        .worker_channels(channel.sid)
        .update(capacity=3, available=False)
    )
    assert (updated.configured_capacity, updated.available) == (3, False)
    fetched = world.ws.workers(worker.sid).worker_channels(channel.sid).fetch()
    assert fetched.configured_capacity == 3


# -- tasks -----------------------------------------------------------------------
@operation("CreateTask")
def test_create_task(api: Api, world: World):
    waiting = world.ws.task_queues.create(
        friendly_name=_name("Nobody"), target_workers="1==0"
    )
    workflow = world.ws.workflows.create(
        friendly_name=_name("Hold"), configuration=routing_to(waiting.sid)
    )
    started = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    task = world.ws.tasks.create(
        workflow_sid=workflow.sid,
        attributes=json.dumps({"type": "sale"}),
        priority=7,
        timeout=600,
        task_channel="chat",
        virtual_start_time=started,
    )
    assert (task.priority, task.timeout, task.task_channel_unique_name) == (
        7,
        600,
        "chat",
    )
    assert task.virtual_start_time == started and _etag(api)
    worker = world.ws.workers.create(friendly_name=_name("Direct"))
    direct = world.ws.tasks.create(
        routing_target=worker.sid, ignore_capacity=True, workflow_sid=workflow.sid
    )
    assert direct.routing_target == worker.sid and direct.ignore_capacity
    queued = world.ws.tasks.create(
        task_queue_sid=waiting.sid, workflow_sid=workflow.sid
    )
    assert (
        eventually(lambda: world.ws.tasks(queued.sid).fetch().task_queue_sid)
        == waiting.sid
    )


@operation("FetchTask")
def test_fetch_task(api: Api, world: World):
    fetched = world.ws.tasks(world.reserved.task.sid).fetch()
    assert fetched.assignment_status == "reserved"
    assert fetched.task_queue_sid == world.reserved.queue.sid and _etag(api)


@operation("UpdateTask")
def test_update_task(api: Api, world: World):
    waiting = world.ws.task_queues.create(
        friendly_name=_name("Nobody"), target_workers="1==0"
    )
    workflow = world.ws.workflows.create(
        friendly_name=_name("Hold"), configuration=routing_to(waiting.sid)
    )
    task = world.ws.tasks.create(workflow_sid=workflow.sid)
    # Routing changes the task's version: take the ETag once it sits in the queue.
    eventually(lambda: world.ws.tasks(task.sid).fetch().task_queue_sid)
    started = (datetime.now(UTC) - timedelta(minutes=5)).replace(microsecond=0)
    updated = world.ws.tasks(task.sid).update(
        if_match=_etag(api),
        attributes=json.dumps({"vip": True}),
        priority=9,
        task_channel="sms",
        virtual_start_time=started,
    )
    assert (updated.priority, updated.task_channel_unique_name) == (9, "sms")
    assert updated.virtual_start_time == started
    canceled = world.ws.tasks(task.sid).update(
        assignment_status="canceled", reason="spam"
    )
    assert (canceled.assignment_status, canceled.reason) == ("canceled", "spam")


@operation("DeleteTask")
def test_delete_task(api: Api, world: World):
    waiting = world.ws.task_queues.create(
        friendly_name=_name("Nobody"), target_workers="1==0"
    )
    task = world.ws.tasks.create(task_queue_sid=waiting.sid, task_channel="video")
    eventually(lambda: world.ws.tasks(task.sid).fetch().task_queue_sid)
    assert delete_if_match(api, task.url, _etag(api)) == 204
    _gone(world.ws.tasks(task.sid).fetch)
    other = world.ws.tasks.create(task_queue_sid=waiting.sid)
    assert world.ws.tasks(other.sid).delete() is True


@operation("ListTask")
def test_list_tasks(api: Api, world: World):
    waiting = world.ws.task_queues.create(
        friendly_name=_name("Nobody"), target_workers="1==0"
    )
    workflow = world.ws.workflows.create(
        friendly_name=_name("Listing"), configuration=routing_to(waiting.sid)
    )
    high = world.ws.tasks.create(
        workflow_sid=workflow.sid, priority=5, attributes=json.dumps({"kind": "a"})
    )
    low = world.ws.tasks.create(
        workflow_sid=workflow.sid, priority=1, attributes=json.dumps({"kind": "b"})
    )
    gone = world.ws.tasks.create(workflow_sid=workflow.sid)
    world.ws.tasks(gone.sid).update(assignment_status="canceled")
    direct = world.ws.tasks.create(
        routing_target=waiting.sid, workflow_sid=workflow.sid
    )
    open_sids = [high.sid, low.sid]

    def listed(**filters: Any) -> list[str]:
        return [
            t.sid for t in world.ws.tasks.list(workflow_sid=workflow.sid, **filters)
        ]

    every = [high.sid, low.sid, gone.sid, direct.sid]
    assert listed(page_size=1) == every
    # The first workflow step is taken at creation, and a canceled task keeps
    # the queue it was in.
    assert listed(task_queue_sid=waiting.sid) == every
    assert listed(task_queue_name=waiting.friendly_name) == every
    assert [
        t.sid for t in world.ws.tasks.list(workflow_name=workflow.friendly_name)
    ] == [high.sid, low.sid, gone.sid, direct.sid]
    assert listed(assignment_status=["pending", "canceled"]) == [
        high.sid,
        low.sid,
        gone.sid,
        direct.sid,
    ]
    assert listed(assignment_status="reserved,canceled") == [gone.sid]
    assert listed(
        assignment_status="pending", evaluate_task_attributes="kind == 'a'"
    ) == [high.sid]
    assert listed(priority=1) == [low.sid]
    assert (
        listed(ordering="Priority:desc", assignment_status="pending")[:2] == open_sids
    )
    assert listed(routing_target=waiting.sid) == [direct.sid]
    assert listed(has_addons="false", assignment_status="pending")[:2] == open_sids
    assert listed(has_addons="true") == []


# -- reservations ----------------------------------------------------------------
@operation("ListTaskReservation")
def test_list_task_reservations(api: Api, world: World):
    reserved = world.reserved
    reservations = world.ws.tasks(reserved.task.sid).reservations
    both = reservations.list(reservation_status="pending", page_size=1)
    assert {r.worker_sid for r in both} == {w.sid for w in reserved.workers}
    found = reservations.list(worker_sid=reserved.worker.sid)
    assert [r.sid for r in found] == [reserved.reservation.sid]
    assert reservations.list(reservation_status="accepted") == []


@operation("FetchTaskReservation")
def test_fetch_task_reservation(api: Api, world: World):
    reserved = world.reserved
    fetched = (
        world.ws.tasks(reserved.task.sid).reservations(reserved.reservation.sid).fetch()
    )
    assert (fetched.worker_sid, fetched.reservation_status) == (
        reserved.worker.sid,
        "pending",
    )
    assert _etag(api)


@operation("UpdateTaskReservation")
def test_update_task_reservation(api: Api, world: World):
    reserved = world.reserve()
    context = world.ws.tasks(reserved.task.sid).reservations(reserved.reservation.sid)
    context.fetch()
    accepted = context.update(
        if_match=_etag(api),
        reservation_status="accepted",
        instruction="accept",
        worker_activity_sid=world.available.sid,
        **telephony_parameters("UpdateTaskReservation", world.offline.sid),
    )
    assert accepted.reservation_status == "accepted"
    assert world.ws.tasks(reserved.task.sid).fetch().assignment_status == "assigned"


@operation("ListWorkerReservation")
def test_list_worker_reservations(api: Api, world: World):
    reserved = world.reserved
    reservations = world.ws.workers(reserved.worker.sid).reservations
    found = reservations.list(reservation_status="pending", page_size=1)
    assert {r.task_sid for r in found} == {t.sid for t in reserved.tasks}
    assert api.last_body()["reservations"][0]["url"].startswith(
        f"{api.client.taskrouter.base_url}/v1/Workspaces/{world.workspace.sid}"
        f"/Workers/{reserved.worker.sid}/Reservations/WR"
    )
    assert reservations.list(reservation_status="canceled") == []


@operation("FetchWorkerReservation")
def test_fetch_worker_reservation(api: Api, world: World):
    reserved = world.reserved
    fetched = (
        world.ws.workers(reserved.worker.sid)
        .reservations(reserved.reservation.sid)
        .fetch()
    )
    assert (fetched.task_sid, fetched.reservation_status) == (
        reserved.task.sid,
        "pending",
    )


@operation("UpdateWorkerReservation")
def test_update_worker_reservation(api: Api, world: World):
    reserved = world.reserve()
    context = world.ws.workers(reserved.worker.sid).reservations(
        reserved.reservation.sid
    )
    context.fetch()
    rejected = context.update(
        if_match=_etag(api),
        reservation_status="rejected",
        instruction="reject",
        worker_activity_sid=world.offline.sid,
        **telephony_parameters("UpdateWorkerReservation", world.offline.sid),
    )
    assert rejected.reservation_status == "rejected"
    assert (
        world.ws.workers(reserved.worker.sid).fetch().activity_sid == world.offline.sid
    )
