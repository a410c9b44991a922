"""Configuration resources through the official twilio client, checked against the contract."""

from __future__ import annotations

import json

import pytest
from twilio.base.exceptions import TwilioRestException

from tests.contract import validate_response

pytestmark = pytest.mark.integration

LISTS = {
    "Activities": ("ListActivity", "activities"),
    "TaskChannels": ("ListTaskChannel", "channels"),
    "TaskQueues": ("ListTaskQueue", "task_queues"),
    "Workflows": ("ListWorkflow", "workflows"),
}


def _refused(call, status: int = 400, code: int = 20001) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as caught:
        call()
    assert (caught.value.status, caught.value.code) == (status, code), caught.value.msg
    return caught.value


def test_fifo_template_creates_activities_channels_queue_and_workflow(client, http):
    ws = client.taskrouter.v1.workspaces.create(friendly_name="fifo", template="FIFO")
    workspace = client.taskrouter.v1.workspaces(ws.sid)

    activities = workspace.activities.list()
    assert [(a.friendly_name, a.available) for a in activities] == [
        ("Offline", False), ("Available", True), ("Unavailable", False)
    ]
    assert ws.default_activity_sid == ws.timeout_activity_sid == activities[0].sid
    assert ws.default_activity_name == "Offline"
    assert ws.multi_task_enabled is True and ws.prioritize_queue_order == "FIFO"
    channels = workspace.task_channels.list()
    assert [c.unique_name for c in channels] == ["default", "voice", "chat", "sms", "video"]
    [queue] = workspace.task_queues.list()
    assert (queue.friendly_name, queue.target_workers, queue.task_order) == (
        "Sample Queue", "1==1", "FIFO"
    )
    [workflow] = workspace.workflows.list()
    assert workflow.friendly_name == "Default Fifo Workflow"
    assert workflow.task_reservation_timeout == 120
    routing = json.loads(workflow.configuration)["task_routing"]
    assert routing["default_filter"]["queue"] == queue.sid

    validate_response("FetchWorkspace", 200, http.get(f"/v1/Workspaces/{ws.sid}").json())
    for path, (operation_id, key) in LISTS.items():
        body = http.get(f"/v1/Workspaces/{ws.sid}/{path}").json()
        validate_response(operation_id, 200, body)
        assert body["meta"]["key"] == key


def test_workspace_without_template_has_no_queue_or_workflow(client, http):
    response = http.post("/v1/Workspaces", data={"FriendlyName": "plain"})
    assert response.status_code == 201
    validate_response("CreateWorkspace", 201, response.json())
    workspace = client.taskrouter.v1.workspaces(response.json()["sid"])
    assert workspace.task_queues.list() == [] and workspace.workflows.list() == []
    assert len(workspace.activities.list()) == 3


def test_workspace_update_checks_activities_and_delete_removes_everything(client, http):
    ws = client.taskrouter.v1.workspaces.create(friendly_name="w", template="FIFO")
    available = client.taskrouter.v1.workspaces(ws.sid).activities.list(friendly_name="Available")[0]

    updated = client.taskrouter.v1.workspaces(ws.sid).update(
        friendly_name="renamed", default_activity_sid=available.sid,
        event_callback_url="https://example.com/events",
    )

    assert updated.friendly_name == "renamed"
    assert (updated.default_activity_sid, updated.default_activity_name) == (available.sid, "Available")
    assert updated.event_callback_url == "https://example.com/events"
    _refused(lambda: client.taskrouter.v1.workspaces(ws.sid).update(default_activity_sid="WA" + "0" * 32))
    _refused(lambda: client.taskrouter.v1.workspaces(ws.sid).update(multi_task_enabled=False))
    assert client.taskrouter.v1.workspaces(ws.sid).delete() is True
    _refused(lambda: client.taskrouter.v1.workspaces(ws.sid).fetch(), 404, 20404)
    response = http.get(f"/v1/Workspaces/{ws.sid}/Activities")
    assert (response.status_code, response.json()["code"]) == (404, 20404)


def test_workspace_create_refuses_bad_parameters(http):
    for data, param in (
        ({}, "FriendlyName"),
        ({"FriendlyName": "x" * 65}, "FriendlyName"),
        ({"FriendlyName": "w", "Template": "LIFO"}, "Template"),
        ({"FriendlyName": "w", "MultiTaskEnabled": "maybe"}, "MultiTaskEnabled"),
        ({"FriendlyName": "w", "EventCallbackUrl": "not a url"}, "EventCallbackUrl"),
    ):
        response = http.post("/v1/Workspaces", data=data)
        assert response.status_code == 400, data
        assert response.json()["code"] == 20001 and param in response.json()["message"]


def test_activity_crud_filters_and_deletion_rules(client, http):
    ws = client.taskrouter.v1.workspaces.create(friendly_name="acts")
    activities = client.taskrouter.v1.workspaces(ws.sid).activities

    busy = activities.create(friendly_name="Busy", available=False)
    lunch = activities.create(friendly_name="Lunch", available="yes")
    renamed = activities(busy.sid).update(friendly_name="Very Busy")

    assert lunch.available is True and renamed.friendly_name == "Very Busy"
    assert {a.friendly_name for a in activities.list(available="true")} == {"Available", "Lunch"}
    assert [a.sid for a in activities.list(friendly_name="Very Busy")] == [busy.sid]
    validate_response("FetchActivity", 200,
                      http.get(f"/v1/Workspaces/{ws.sid}/Activities/{busy.sid}").json())
    _refused(lambda: activities(ws.default_activity_sid).delete())
    assert activities(busy.sid).delete() is True
    _refused(lambda: activities(busy.sid).fetch(), 404, 20404)
    _refused(lambda: activities("not-a-sid").fetch(), 404, 20404)


def test_task_channel_crud_by_sid_and_unique_name(client):
    ws = client.taskrouter.v1.workspaces.create(friendly_name="chans")
    channels = client.taskrouter.v1.workspaces(ws.sid).task_channels

    created = channels.create(friendly_name="Email", unique_name="email",
                              channel_optimized_routing=True)

    assert channels("email").fetch().sid == created.sid
    assert created.channel_optimized_routing is True
    _refused(lambda: channels.create(friendly_name="Again", unique_name="email"))
    assert channels("email").update(friendly_name="E-mail").friendly_name == "E-mail"
    assert channels(created.sid).delete() is True
    _refused(lambda: channels("email").fetch(), 404, 20404)


def test_task_queue_validates_expression_and_activities(client):
    ws = client.taskrouter.v1.workspaces.create(friendly_name="queues")
    queues = client.taskrouter.v1.workspaces(ws.sid).task_queues
    available = client.taskrouter.v1.workspaces(ws.sid).activities.list(friendly_name="Available")[0]

    queue = queues.create(friendly_name="Support", target_workers="skills HAS 'support'",
                          max_reserved_workers=3, task_order="LIFO",
                          reservation_activity_sid=available.sid)

    assert (queue.max_reserved_workers, queue.task_order) == (3, "LIFO")
    assert queue.reservation_activity_name == "Available"
    error = _refused(lambda: queues.create(friendly_name="Bad", target_workers="skills HAS"))
    assert "TargetWorkers" in error.msg
    _refused(lambda: queues.create(friendly_name="Bad", max_reserved_workers=51))
    _refused(lambda: queues.create(friendly_name="Bad", task_order="RANDOM"))
    _refused(lambda: queues.create(friendly_name="Bad", assignment_activity_sid="WA" + "1" * 32))
    updated = queues(queue.sid).update(target_workers="level > 2")
    assert updated.target_workers == "level > 2"
    matching = queues.list(evaluate_worker_attributes=json.dumps({"level": 3}))
    assert [q.sid for q in matching] == [queue.sid]
    assert queues.list(evaluate_worker_attributes=json.dumps({"level": 1})) == []


def test_queue_in_use_by_workflow_cannot_be_deleted(client):
    ws = client.taskrouter.v1.workspaces.create(friendly_name="refs", template="FIFO")
    workspace = client.taskrouter.v1.workspaces(ws.sid)
    [queue] = workspace.task_queues.list()
    [workflow] = workspace.workflows.list()

    _refused(lambda: workspace.task_queues(queue.sid).delete())
    assert workspace.workflows(workflow.sid).delete() is True
    assert workspace.task_queues(queue.sid).delete() is True


def test_workflow_configuration_is_validated(client, http):
    ws = client.taskrouter.v1.workspaces.create(friendly_name="flows")
    workspace = client.taskrouter.v1.workspaces(ws.sid)
    queue = workspace.task_queues.create(friendly_name="Q")
    config = {"task_routing": {"filters": [
        {"filter_friendly_name": "vip", "expression": "vip == true",
         "targets": [{"queue": queue.sid, "priority": 10, "timeout": 30}]}],
        "default_filter": {"queue": queue.sid}}}

    workflow = workspace.workflows.create(friendly_name="Flow", configuration=json.dumps(config),
                                          task_reservation_timeout=60,
                                          assignment_callback_url="https://example.com/assign")

    assert workflow.task_reservation_timeout == 60
    assert json.loads(workflow.configuration) == config
    validate_response("FetchWorkflow", 200,
                      http.get(f"/v1/Workspaces/{ws.sid}/Workflows/{workflow.sid}").json())
    unknown = json.dumps({"task_routing": {"default_filter": {"queue": "WQ" + "2" * 32}}})
    assert "WQ" + "2" * 32 in _refused(
        lambda: workspace.workflows.create(friendly_name="x", configuration=unknown)).msg
    _refused(lambda: workspace.workflows.create(friendly_name="x", configuration="[1]"))
    _refused(lambda: workspace.workflows.create(friendly_name="x", configuration="{not json"))
    bad_expression = json.dumps({"task_routing": {"filters": [
        {"expression": "vip ==", "targets": [{"queue": queue.sid}]}]}})
    _refused(lambda: workspace.workflows.create(friendly_name="x", configuration=bad_expression))
    missing = http.post(f"/v1/Workspaces/{ws.sid}/Workflows", data={"FriendlyName": "x"})
    assert missing.status_code == 400 and "Configuration" in missing.json()["message"]
    updated = workspace.workflows(workflow.sid).update(friendly_name="Flow 2",
                                                        re_evaluate_tasks="true")
    assert updated.friendly_name == "Flow 2"
    assert [w.sid for w in workspace.workflows.list(friendly_name="Flow 2")] == [workflow.sid]
