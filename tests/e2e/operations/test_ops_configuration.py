"""One test per configuration operation (workspaces, activities, task channels,
task queues, workflows) through the official client; the recorder checks every
answer against the contract."""

from __future__ import annotations

import json
import uuid

import pytest
from twilio.base.exceptions import TwilioRestException

from tests.e2e.operations.conftest import Api, World, routing_to
from tests.e2e.operations.registry import operation

pytestmark = pytest.mark.e2e


def _name(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


def _gone(fetch) -> None:
    with pytest.raises(TwilioRestException) as refused:
        fetch()
    assert refused.value.status == 404 and refused.value.code == 20404


# -- workspaces ------------------------------------------------------------------
@operation("CreateWorkspace")
def test_create_workspace(api: Api):
    name = _name("Created")
    workspace = api.v1.workspaces.create(
        friendly_name=name,
        event_callback_url="http://127.0.0.1:9/events",
        events_filter="task.created,task.canceled",
        multi_task_enabled=True,
        template="FIFO",
        prioritize_queue_order="LIFO",
    )
    assert api.last_body()["friendly_name"] == name
    assert (workspace.event_callback_url, workspace.events_filter) == (
        "http://127.0.0.1:9/events",
        "task.created,task.canceled",
    )
    assert (
        workspace.multi_task_enabled is True
        and workspace.prioritize_queue_order == "LIFO"
    )
    ws = api.v1.workspaces(workspace.sid)
    assert {a.friendly_name for a in ws.activities.list()} == {
        "Offline",
        "Available",
        "Unavailable",
    }
    assert [q.friendly_name for q in ws.task_queues.list()] == ["Sample Queue"]
    ws.delete()


@operation("FetchWorkspace")
def test_fetch_workspace(api: Api, world: World):
    fetched = world.ws.fetch()
    assert fetched.sid == world.workspace.sid
    assert fetched.default_activity_name == "Offline"
    assert api.last_body()["links"]["activities"].endswith(
        f"{world.workspace.sid}/Activities"
    )


@operation("UpdateWorkspace")
def test_update_workspace(api: Api):
    workspace = api.v1.workspaces.create(
        friendly_name=_name("To update"), multi_task_enabled=False
    )
    ws = api.v1.workspaces(workspace.sid)
    available = next(a for a in ws.activities.list() if a.friendly_name == "Available")
    updated = ws.update(
        friendly_name="Updated",
        default_activity_sid=available.sid,
        timeout_activity_sid=available.sid,
        event_callback_url="http://127.0.0.1:9/hook",
        events_filter="worker.activity.update",
        multi_task_enabled=True,
        prioritize_queue_order="LIFO",
    )
    assert updated.friendly_name == "Updated"
    assert updated.default_activity_sid == updated.timeout_activity_sid == available.sid
    assert updated.default_activity_name == "Available"
    assert (
        updated.multi_task_enabled is True and updated.prioritize_queue_order == "LIFO"
    )
    assert ws.fetch().events_filter == "worker.activity.update"
    ws.delete()


@operation("DeleteWorkspace")
def test_delete_workspace(api: Api):
    workspace = api.v1.workspaces.create(
        friendly_name=_name("To delete"), template="FIFO"
    )
    assert api.v1.workspaces(workspace.sid).delete() is True
    _gone(api.v1.workspaces(workspace.sid).fetch)
    assert workspace.sid not in {w.sid for w in api.v1.workspaces.list()}


@operation("ListWorkspace")
def test_list_workspaces(api: Api):
    name = _name("Listed")
    sids = {api.v1.workspaces.create(friendly_name=name).sid for _ in range(3)}
    found = api.v1.workspaces.list(friendly_name=name, page_size=2)
    assert {w.sid for w in found} == sids
    assert api.last_body()["meta"]["page"] == 1
    for sid in sids:
        api.v1.workspaces(sid).delete()


# -- activities ------------------------------------------------------------------
@operation("CreateActivity")
def test_create_activity(api: Api, world: World):
    activity = world.ws.activities.create(friendly_name=_name("Lunch"), available=True)
    assert activity.available is True
    assert api.last_body()["links"]["workspace"].endswith(world.workspace.sid)


@operation("FetchActivity")
def test_fetch_activity(api: Api, world: World):
    fetched = world.ws.activities(world.available.sid).fetch()
    assert (fetched.friendly_name, fetched.available) == ("Available", True)


@operation("UpdateActivity")
def test_update_activity(api: Api, world: World):
    activity = world.ws.activities.create(friendly_name=_name("Break"))
    updated = world.ws.activities(activity.sid).update(friendly_name="Long break")
    assert updated.friendly_name == "Long break" and updated.available is False
    assert world.ws.activities(activity.sid).fetch().friendly_name == "Long break"


@operation("DeleteActivity")
def test_delete_activity(api: Api, world: World):
    activity = world.ws.activities.create(friendly_name=_name("Gone"))
    assert world.ws.activities(activity.sid).delete() is True
    _gone(world.ws.activities(activity.sid).fetch)


@operation("ListActivity")
def test_list_activities(api: Api, world: World):
    name = _name("Listed")
    sids = {
        world.ws.activities.create(friendly_name=name, available=True).sid
        for _ in range(3)
    }
    assert {
        a.sid for a in world.ws.activities.list(friendly_name=name, page_size=2)
    } == sids
    available = world.ws.activities.list(available="true")
    assert all(a.available for a in available)
    assert world.available.sid in {a.sid for a in available}
    assert world.offline.sid in {
        a.sid for a in world.ws.activities.list(available="false")
    }


# -- task channels ---------------------------------------------------------------
@operation("CreateTaskChannel")
def test_create_task_channel(api: Api, world: World):
    unique = f"email{uuid.uuid4().hex[:8]}"
    channel = world.ws.task_channels.create(
        friendly_name="Email", unique_name=unique, channel_optimized_routing=True
    )
    assert (channel.unique_name, channel.channel_optimized_routing) == (unique, True)


@operation("FetchTaskChannel")
def test_fetch_task_channel(api: Api, world: World):
    by_name = world.ws.task_channels("voice").fetch()
    assert by_name.unique_name == "voice"
    assert world.ws.task_channels(by_name.sid).fetch().sid == by_name.sid


@operation("UpdateTaskChannel")
def test_update_task_channel(api: Api, world: World):
    channel = world.ws.task_channels.create(
        friendly_name="Fax", unique_name=f"fax{uuid.uuid4().hex[:8]}"
    )
    updated = world.ws.task_channels(channel.sid).update(
        friendly_name="Telefax", channel_optimized_routing=True
    )
    assert (updated.friendly_name, updated.channel_optimized_routing) == (
        "Telefax",
        True,
    )


@operation("DeleteTaskChannel")
def test_delete_task_channel(api: Api, world: World):
    channel = world.ws.task_channels.create(
        friendly_name="Pager", unique_name=f"pager{uuid.uuid4().hex[:8]}"
    )
    assert world.ws.task_channels(channel.sid).delete() is True
    _gone(world.ws.task_channels(channel.sid).fetch)


@operation("ListTaskChannel")
def test_list_task_channels(api: Api, world: World):
    channels = world.ws.task_channels.list(page_size=2)
    assert {"default", "voice", "chat", "sms", "video"} <= {
        c.unique_name for c in channels
    }
    assert len(channels) == len({c.sid for c in channels})


# -- task queues -----------------------------------------------------------------
@operation("CreateTaskQueue")
def test_create_task_queue(api: Api, world: World):
    queue = world.ws.task_queues.create(
        friendly_name=_name("Support"),
        target_workers="languages HAS 'en'",
        max_reserved_workers=3,
        task_order="LIFO",
        reservation_activity_sid=world.offline.sid,
        assignment_activity_sid=world.offline.sid,
    )
    assert (
        queue.target_workers == "languages HAS 'en'" and queue.max_reserved_workers == 3
    )
    assert queue.task_order == "LIFO" and queue.reservation_activity_name == "Offline"
    assert api.last_body()["links"]["assignment_activity"].endswith(world.offline.sid)


@operation("FetchTaskQueue")
def test_fetch_task_queue(api: Api, world: World):
    fetched = world.ws.task_queues(world.queue.sid).fetch()
    assert (fetched.friendly_name, fetched.target_workers) == ("Sample Queue", "1==1")


@operation("UpdateTaskQueue")
def test_update_task_queue(api: Api, world: World):
    queue = world.ws.task_queues.create(friendly_name=_name("Sales"))
    updated = world.ws.task_queues(queue.sid).update(
        friendly_name="Sales EMEA",
        target_workers="region == 'emea'",
        reservation_activity_sid=world.offline.sid,
        assignment_activity_sid=world.offline.sid,
        max_reserved_workers=5,
        task_order="LIFO",
    )
    assert (updated.friendly_name, updated.target_workers) == (
        "Sales EMEA",
        "region == 'emea'",
    )
    assert (updated.max_reserved_workers, updated.task_order) == (5, "LIFO")
    assert updated.assignment_activity_sid == world.offline.sid


@operation("DeleteTaskQueue")
def test_delete_task_queue(api: Api, world: World):
    queue = world.ws.task_queues.create(friendly_name=_name("Temporary"))
    assert world.ws.task_queues(queue.sid).delete() is True
    _gone(world.ws.task_queues(queue.sid).fetch)


@operation("ListTaskQueue")
def test_list_task_queues(api: Api, world: World):
    name = _name("Listed")
    french = world.ws.task_queues.create(
        friendly_name=name, target_workers="lang == 'fr'"
    )
    german = world.ws.task_queues.create(
        friendly_name=name, target_workers="lang == 'de'"
    )
    both = world.ws.task_queues.list(friendly_name=name, page_size=1)
    assert [q.sid for q in both] == [french.sid, german.sid]
    newest_first = world.ws.task_queues.list(
        friendly_name=name, ordering="DateCreated:desc"
    )
    assert [q.sid for q in newest_first] == [german.sid, french.sid]
    for_french = world.ws.task_queues.list(
        evaluate_worker_attributes=json.dumps({"lang": "fr"})
    )
    assert french.sid in {q.sid for q in for_french}
    assert german.sid not in {q.sid for q in for_french}
    worker = world.ws.workers.create(
        friendly_name=_name("Germaine"), attributes=json.dumps({"lang": "de"})
    )
    for_worker = {q.sid for q in world.ws.task_queues.list(worker_sid=worker.sid)}
    assert german.sid in for_worker and french.sid not in for_worker
    assert world.queue.sid in for_worker  # Sample Queue takes everyone (1==1)


# -- workflows -------------------------------------------------------------------
@operation("CreateWorkflow")
def test_create_workflow(api: Api, world: World):
    configuration = routing_to(world.queue.sid)
    workflow = world.ws.workflows.create(
        friendly_name=_name("Routing"),
        configuration=configuration,
        assignment_callback_url="http://127.0.0.1:9/assign",
        fallback_assignment_callback_url="http://127.0.0.1:9/fallback",
        task_reservation_timeout=60,
    )
    assert workflow.configuration == configuration
    assert workflow.task_reservation_timeout == 60
    assert workflow.assignment_callback_url == "http://127.0.0.1:9/assign"
    assert workflow.fallback_assignment_callback_url == "http://127.0.0.1:9/fallback"


@operation("FetchWorkflow")
def test_fetch_workflow(api: Api, world: World):
    fetched = world.ws.workflows(world.workflow.sid).fetch()
    assert fetched.friendly_name == "Default Fifo Workflow"
    assert json.loads(fetched.configuration)["task_routing"]


@operation("UpdateWorkflow")
def test_update_workflow(api: Api, world: World):
    workflow = world.ws.workflows.create(
        friendly_name=_name("Before"), configuration=routing_to(world.queue.sid)
    )
    other = world.ws.task_queues.create(friendly_name=_name("Other"))
    updated = world.ws.workflows(workflow.sid).update(
        friendly_name="After",
        configuration=routing_to(other.sid),
        assignment_callback_url="http://127.0.0.1:9/a",
        fallback_assignment_callback_url="http://127.0.0.1:9/b",
        task_reservation_timeout=30,
        re_evaluate_tasks="true",
    )
    assert (updated.friendly_name, updated.task_reservation_timeout) == ("After", 30)
    assert other.sid in updated.configuration


@operation("DeleteWorkflow")
def test_delete_workflow(api: Api, world: World):
    workflow = world.ws.workflows.create(
        friendly_name=_name("Doomed"), configuration=routing_to(world.queue.sid)
    )
    assert world.ws.workflows(workflow.sid).delete() is True
    _gone(world.ws.workflows(workflow.sid).fetch)


@operation("ListWorkflow")
def test_list_workflows(api: Api, world: World):
    name = _name("Listed")
    sids = [
        world.ws.workflows.create(
            friendly_name=name, configuration=routing_to(world.queue.sid)
        ).sid
        for _ in range(3)
    ]
    assert [
        w.sid for w in world.ws.workflows.list(friendly_name=name, page_size=2)
    ] == sids
