"""Workers, tasks, reservations, events and statistics routes without their owners.

Validation refusals never reach the queue-dispatcher or the statistics service.
Reads come from the owners' collections, so the tests put documents there the
way the owners store them (`Model.to_document()`), then read them back through
the API. Full round trips are the end-to-end suite's job.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pymongo
import pytest
from twilio.base.exceptions import TwilioRestException

from shared.events import make_event, task_data
from shared.models import Reservation, ReservationStatus, Task, Worker, WorkerChannel, utcnow
from shared.sids import SidPrefix, new_sid, worker_channel_sid
from shared.storage.event_log import event_document
from tests.contract import validate_response

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def store(gateway):
    with pymongo.MongoClient(gateway.env["MONGODB_URL"], tz_aware=True) as mongo:
        yield mongo[gateway.env["MONGODB_DATABASE"]]


@pytest.fixture(scope="module")
def ws(client):
    return client.taskrouter.v1.workspaces.create(friendly_name="runtime", template="FIFO")


def _status(response, status: int, param: str | None = None) -> dict:
    body = response.json()
    assert response.status_code == status, body
    if param:
        assert param in body["message"], body
    return body


def _worker(ws, channels, name: str, attributes: dict, activity) -> Worker:
    worker_sid = new_sid(SidPrefix.WORKER)
    return Worker(
        sid=worker_sid, account_sid=ws.account_sid, workspace_sid=ws.sid, friendly_name=name,
        attributes=json.dumps(attributes), activity_sid=activity.sid,
        activity_name=activity.friendly_name, available=activity.available, version=3,
        channels=[WorkerChannel(sid=worker_channel_sid(worker_sid, ch.sid),
                                task_channel_sid=ch.sid, task_channel_unique_name=ch.unique_name,
                                configured_capacity=2, assigned_tasks=1) for ch in channels],
    )


def test_worker_writes_are_validated_before_the_dispatcher(http, ws):
    base = f"/v1/Workspaces/{ws.sid}/Workers"
    _status(http.post(base, data={}), 400, "FriendlyName")
    _status(http.post(base, data={"FriendlyName": "w", "Attributes": "[]"}), 400, "Attributes")
    _status(http.post(base, data={"FriendlyName": "w", "Attributes": "{"}), 400, "Attributes")
    _status(http.post(base, data={"FriendlyName": "w", "Attributes": json.dumps({"x": "y" * 5000})}),
            400, "Attributes")
    _status(http.post(base, data={"FriendlyName": "w", "ActivitySid": "WA" + "0" * 32}),
            400, "ActivitySid")
    _status(http.post(base, data={"FriendlyName": "w", "ActivitySid": "bogus"}), 400, "ActivitySid")
    _status(http.post(f"{base}/WK{'0' * 32}/Channels/default", data={"Capacity": "lots"}),
            400, "Capacity")
    _status(http.get(f"{base}/not-a-worker"), 404)
    _status(http.get(f"{base}/WK{'0' * 32}"), 404)
    _status(http.get(base, params={"TargetWorkersExpression": "skills HAS"}), 400,
            "TargetWorkersExpression")


def test_writes_without_a_dispatcher_answer_503(http, ws):
    response = http.post(f"/v1/Workspaces/{ws.sid}/Workers", data={"FriendlyName": "w"})
    assert _status(response, 503)["code"] == 20503


def test_workers_are_read_from_the_dispatcher_collection(http, client, ws, store):
    workspace = client.taskrouter.v1.workspaces(ws.sid)
    channels = workspace.task_channels.list()
    available = workspace.activities.list(friendly_name="Available")[0]
    offline = workspace.activities.list(friendly_name="Offline")[0]
    alice = _worker(ws, channels, "alice", {"skills": ["support"], "level": 5}, available)
    bob = _worker(ws, channels, "bob", {"skills": ["sales"], "level": 1}, offline)
    store["workers"].insert_many([alice.to_document(), bob.to_document()])

    fetched = http.get(f"/v1/Workspaces/{ws.sid}/Workers/{alice.sid}")
    validate_response("FetchWorker", 200, fetched.json())
    assert fetched.headers["ETag"] == "3"
    listed = http.get(f"/v1/Workspaces/{ws.sid}/Workers").json()
    validate_response("ListWorker", 200, listed)
    assert [w.sid for w in workspace.workers.list(available="1")] == [alice.sid]
    assert [w.sid for w in workspace.workers.list(activity_name="Offline")] == [bob.sid]
    assert [w.sid for w in workspace.workers.list(
        target_workers_expression="skills HAS 'support' AND level > 3")] == [alice.sid]
    newest_first = sorted([alice, bob], key=lambda w: (w.date_created, w.sid), reverse=True)
    assert [w.sid for w in workspace.workers.list(ordering="DateCreated:desc")] == [
        w.sid for w in newest_first]
    # Worker channels are read from the dispatcher, which counts their load
    # (tests/e2e/test_task_lifecycle.py::test_capacity_shows_in_the_worker_channel).


def test_task_writes_are_validated_before_the_dispatcher(http, client, ws):
    base = f"/v1/Workspaces/{ws.sid}/Tasks"
    _status(http.post(base, data={"Priority": "high"}), 400, "Priority")
    _status(http.post(base, data={"Timeout": "0"}), 400, "Timeout")
    _status(http.post(base, data={"TaskChannel": "fax"}), 400, "TaskChannel")
    _status(http.post(base, data={"WorkflowSid": "WW" + "0" * 32}), 400, "WorkflowSid")
    _status(http.post(base, data={"Attributes": "nope"}), 400, "Attributes")
    _status(http.post(base, data={"RoutingTarget": "XX"}), 400, "RoutingTarget")
    future = (utcnow() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    _status(http.post(base, data={"VirtualStartTime": future}), 400, "VirtualStartTime")
    _status(http.post(f"{base}/WT{'0' * 32}", data={"AssignmentStatus": "done"}), 400,
            "AssignmentStatus")
    _status(http.get(base, params={"AssignmentStatus": "pending,lost"}), 400, "AssignmentStatus")
    _status(http.get(base, params={"Ordering": "DateCreated:asc,VirtualStartTime:desc"}), 400,
            "Ordering")
    _status(http.get(base, params={"EvaluateTaskAttributes": "a =="}), 400,
            "EvaluateTaskAttributes")

    # A second workflow makes WorkflowSid mandatory.
    second = client.taskrouter.v1.workspaces.create(friendly_name="two flows")
    q2 = client.taskrouter.v1.workspaces(second.sid).task_queues.create(friendly_name="q")
    for name in ("one", "two"):
        client.taskrouter.v1.workspaces(second.sid).workflows.create(
            friendly_name=name,
            configuration=json.dumps({"task_routing": {"default_filter": {"queue": q2.sid}}}))
    body = _status(http.post(f"/v1/Workspaces/{second.sid}/Tasks", data={}), 400)
    assert body["message"] == "WorkflowSid field is required"


def test_tasks_and_reservations_are_read_from_the_dispatcher_collections(http, client, ws, store):
    workflow = client.taskrouter.v1.workspaces(ws.sid).workflows.list()[0]
    created = utcnow() - timedelta(seconds=30)
    tasks = [
        Task(sid=new_sid(SidPrefix.TASK), account_sid=ws.account_sid, workspace_sid=ws.sid,
             attributes=json.dumps({"vip": i == 1}), priority=i, workflow_sid=workflow.sid,
             date_created=created + timedelta(milliseconds=i), version=i,
             assignment_status="pending" if i else "reserved")
        for i in range(3)
    ]
    store["tasks"].insert_many([t.to_document() for t in tasks])
    reservation = Reservation(
        sid=new_sid(SidPrefix.RESERVATION), account_sid=ws.account_sid, workspace_sid=ws.sid,
        task_sid=tasks[0].sid, worker_sid=new_sid(SidPrefix.WORKER), worker_name="alice",
        version=7,
    )
    store["reservations"].insert_one(reservation.to_document())

    fetched = http.get(f"/v1/Workspaces/{ws.sid}/Tasks/{tasks[0].sid}")
    validate_response("FetchTask", 200, fetched.json())
    assert fetched.headers["ETag"] == "0" and fetched.json()["age"] >= 30
    workspace = client.taskrouter.v1.workspaces(ws.sid)
    assert [t.sid for t in workspace.tasks.list(assignment_status=["pending"])] == [
        tasks[1].sid, tasks[2].sid]
    assert [t.sid for t in workspace.tasks.list(evaluate_task_attributes="vip == true")] == [
        tasks[1].sid]
    assert [t.sid for t in workspace.tasks.list(ordering="Priority:desc")] == [
        t.sid for t in reversed(tasks)]
    assert [t.sid for t in workspace.tasks.stream(page_size=1)] == [t.sid for t in tasks]
    listed = http.get(f"/v1/Workspaces/{ws.sid}/Tasks",
                      params={"AssignmentStatus": "pending,reserved"}).json()
    validate_response("ListTask", 200, listed)
    assert "AssignmentStatus=pending%2Creserved" in listed["meta"]["url"]

    path = f"/v1/Workspaces/{ws.sid}/Tasks/{tasks[0].sid}/Reservations"
    validate_response("ListTaskReservation", 200, http.get(path).json())
    one = http.get(f"{path}/{reservation.sid}")
    validate_response("FetchTaskReservation", 200, one.json())
    assert one.headers["ETag"] == "7"
    by_worker = http.get(
        f"/v1/Workspaces/{ws.sid}/Workers/{reservation.worker_sid}/Reservations/{reservation.sid}")
    validate_response("FetchWorkerReservation", 200, by_worker.json())
    _status(http.post(f"{path}/{reservation.sid}", data={"ReservationStatus": "maybe"}), 400,
            "ReservationStatus")
    _status(http.post(f"{path}/{reservation.sid}", data={"CallTimeout": "soon"}), 400,
            "CallTimeout")
    _status(http.post(f"{path}/{reservation.sid}", data={"StatusCallbackEvent": "exploded"}), 400,
            "StatusCallbackEvent")
    with pytest.raises(TwilioRestException) as caught:
        workspace.tasks(tasks[0].sid).reservations("WR" + "0" * 32).fetch()
    assert caught.value.status == 404


def test_events_are_read_newest_first_with_filters(http, ws, store):
    now = utcnow()
    task = Task(sid=new_sid(SidPrefix.TASK), account_sid=ws.account_sid, workspace_sid=ws.sid,
                task_channel_sid=new_sid(SidPrefix.TASK_CHANNEL), task_channel_unique_name="fax")
    events = [
        make_event("task.created", account_sid=ws.account_sid, workspace_sid=ws.sid,
                   resource_type="task", resource_sid=task.sid, at=now - timedelta(minutes=1),
                   data=task_data(task, now)),
        make_event("worker.activity.update", account_sid=ws.account_sid, workspace_sid=ws.sid,
                   resource_type="worker", resource_sid=new_sid(SidPrefix.WORKER),
                   at=now - timedelta(seconds=5)),
        make_event("task.canceled", account_sid=ws.account_sid, workspace_sid=ws.sid,
                   resource_type="task", resource_sid=task.sid, at=now - timedelta(hours=2)),
    ]
    store["events"].insert_many([event_document(e) for e in events])
    base = f"/v1/Workspaces/{ws.sid}/Events"

    recent = http.get(base).json()
    validate_response("ListEvent", 200, recent)
    assert [e["sid"] for e in recent["events"]] == [events[1].sid, events[0].sid]
    assert recent["events"][1]["resource_url"].endswith(f"/Tasks/{task.sid}")
    assert [e["sid"] for e in http.get(base, params={"TaskSid": task.sid}).json()["events"]] == [
        events[0].sid]
    legacy = http.get(base, params={"EventType": "worker.activity"}).json()["events"]
    assert [e["sid"] for e in legacy] == [events[1].sid]
    assert len(http.get(base, params={"Minutes": 180}).json()["events"]) == 3
    both = {"TaskSid": task.sid, "EventType": "task.canceled", "Minutes": 180}
    assert [e["sid"] for e in http.get(base, params=both).json()["events"]] == [events[2].sid]
    # A channel unknown to the workspace matches by SID or by unique name.
    for channel in (task.task_channel_sid, "fax"):
        found = http.get(base, params={"TaskChannel": channel, "Minutes": 180}).json()["events"]
        assert [e["sid"] for e in found] == [events[0].sid]
    first = http.get(base, params={"Minutes": 180, "PageSize": 2}).json()
    rest = http.get(first["meta"]["next_page_url"]).json()
    assert [e["sid"] for e in first["events"] + rest["events"]] == [
        events[1].sid, events[0].sid, events[2].sid]
    one = http.get(f"{base}/{events[2].sid}")
    validate_response("FetchEvent", 200, one.json())
    _status(http.get(base, params={"Minutes": "x"}), 400, "Minutes")
    _status(http.get(base, params={"TaskSid": "WX1"}), 400, "TaskSid")
    _status(http.get(f"{base}/EV{'0' * 32}"), 404)


def test_statistics_routes_check_parameters_and_keep_literal_segments(http, ws):
    base = f"/v1/Workspaces/{ws.sid}"
    _status(http.get(f"{base}/Statistics", params={"Minutes": "x"}), 400, "Minutes")
    _status(http.get(f"{base}/CumulativeStatistics", params={"SplitByWaitTime": "5,a"}), 400,
            "SplitByWaitTime")
    # Wider than 64 bits: refused here, never sent on (it cannot be encoded).
    _status(http.get(f"{base}/Statistics", params={"SplitByWaitTime": f"5,{2**63}"}), 400,
            "SplitByWaitTime")
    _status(http.get(f"{base}/RealTimeStatistics", params={"TaskChannel": "fax"}), 400,
            "TaskChannel")
    _status(http.post(f"{base}/TaskQueues/RealTimeStatistics", json={"QueueSids": []}), 400,
            "QueueSids")
    _status(http.post(f"{base}/TaskQueues/RealTimeStatistics", json={"queueSids": ["WQ1"]}), 400,
            "QueueSids")
    _status(http.get(f"{base}/TaskQueues/WQ{'0' * 32}/Statistics"), 404)
    _status(http.get(f"{base}/Workflows/WW{'0' * 32}/RealTimeStatistics"), 404)
    # Literal segments are routed to statistics, which is not running here: 503, not 404.
    for path in ("TaskQueues/Statistics", "Workers/Statistics", "Workers/RealTimeStatistics",
                 "Workers/CumulativeStatistics"):
        _status(http.get(f"{base}/{path}"), 503)


# No queue-dispatcher runs here: worker channel reads count the stored live reservations.
def test_worker_channels_are_read_without_the_dispatcher(http, client, ws, store):
    workspace = client.taskrouter.v1.workspaces(ws.sid)
    channels = workspace.task_channels.list()
    voice = next(ch for ch in channels if ch.unique_name == "voice")
    available = workspace.activities.list(friendly_name="Available")[0]
    sid = new_sid(SidPrefix.WORKER)
    worker = Worker(
        sid=sid, account_sid=ws.account_sid, workspace_sid=ws.sid, friendly_name="alice",
        attributes=json.dumps({}), activity_sid=available.sid,
        activity_name=available.friendly_name, available=True, version=3,
        channels=[WorkerChannel(sid=worker_channel_sid(sid, ch.sid), task_channel_sid=ch.sid,
                                task_channel_unique_name=ch.unique_name, configured_capacity=2)
                  for ch in channels],
    )
    doc = worker.to_document()
    for channel in doc["channels"]:  # as the dispatcher stores it now (no load)
        channel.pop("reserved_tasks"), channel.pop("assigned_tasks")
    store["workers"].insert_one(doc)
    # The load lives in the reservations: one accepted on voice, and one finished.
    for status in (ReservationStatus.ACCEPTED, ReservationStatus.COMPLETED):
        store["reservations"].insert_one(Reservation(
            sid=new_sid(SidPrefix.RESERVATION), account_sid=ws.account_sid,
            workspace_sid=ws.sid, task_sid=new_sid(SidPrefix.TASK), worker_sid=sid,
            worker_name="alice", task_channel_sid=voice.sid, reservation_status=status,
        ).to_document())

    listed = http.get(f"/v1/Workspaces/{ws.sid}/Workers/{sid}/Channels")
    assert listed.status_code == 200, listed.json()
    validate_response("ListWorkerChannel", 200, listed.json())
    fetched = workspace.workers(sid).worker_channels("voice").fetch()
    assert (fetched.assigned_tasks, fetched.available_capacity_percentage) == (1, 50)
    assert http.get(f"/v1/Workspaces/{ws.sid}/Workers/WK{'0' * 32}/Channels").status_code == 404
