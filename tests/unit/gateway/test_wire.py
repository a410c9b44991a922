import json
from datetime import UTC, datetime, timedelta

from services.gateway.templates import new_workspace
from services.gateway.wire import (
    Links,
    event_wire,
    reservation_wire,
    task_queue_wire,
    task_wire,
    wire_date,
    worker_channel_wire,
    worker_wire,
    workflow_wire,
    workspace_wire,
)
from shared.events import make_event
from shared.models import Reservation, Task, Worker, WorkerChannel
from tests.contract import validate_response

LINKS = Links("https://tr.example/")
NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
AC, WS = "AC" + "a" * 32, "WS" + "b" * 32


def test_wire_date_is_second_precision_zulu():
    assert wire_date(datetime(2014, 5, 14, 10, 50, 2, 999000, tzinfo=UTC)) == "2014-05-14T10:50:02Z"
    assert wire_date(None) is None


def test_template_objects_match_the_contract():
    created = new_workspace(AC, "w", NOW, template="FIFO")
    body = workspace_wire(created.workspace, LINKS)
    validate_response("FetchWorkspace", 200, body)
    assert body["url"] == f"https://tr.example/v1/Workspaces/{created.workspace.sid}"
    assert body["links"]["real_time_statistics"].endswith("/RealTimeStatistics")
    queue = task_queue_wire(created.queues[0], LINKS)
    validate_response("FetchTaskQueue", 200, queue)
    assert queue["links"]["list_statistics"].endswith("/TaskQueues/Statistics")
    workflow = workflow_wire(created.workflows[0], LINKS)
    validate_response("FetchWorkflow", 200, workflow)
    assert json.loads(workflow["configuration"])["task_routing"]["default_filter"] == {
        "queue": created.queues[0].sid}


def test_task_age_is_computed_at_read_time():
    task = Task(sid="WT" + "c" * 32, account_sid=AC, workspace_sid=WS,
                date_created=NOW - timedelta(seconds=90), workflow_sid="WW" + "d" * 32)
    body = task_wire(task, LINKS, NOW)
    validate_response("FetchTask", 200, body)
    assert body["age"] == 90
    assert body["virtual_start_time"] == "2024-05-01T11:58:30Z"
    assert "task_queue" not in body["links"] and body["links"]["workflow"].endswith(task.workflow_sid)


def test_worker_and_channel_shapes():
    channel = WorkerChannel(sid="WC" + "e" * 32, task_channel_sid="TC" + "f" * 32,
                            task_channel_unique_name="voice", configured_capacity=4,
                            assigned_tasks=1, reserved_tasks=1)
    worker = Worker(sid="WK" + "1" * 32, account_sid=AC, workspace_sid=WS, friendly_name="w",
                    activity_sid="WA" + "2" * 32, activity_name="Offline", channels=[channel])
    body = worker_wire(worker, LINKS)
    validate_response("FetchWorker", 200, body)
    assert body["links"]["statistics"] == f"https://tr.example/v1/Workspaces/{WS}/Workers/Statistics"
    assert body["links"]["worker_statistics"].endswith(f"/Workers/{worker.sid}/Statistics")
    channel_body = worker_channel_wire(worker, channel, LINKS)
    validate_response("FetchWorkerChannel", 200, channel_body)
    assert channel_body["available_capacity_percentage"] == 50


def test_reservation_url_follows_the_path_used():
    reservation = Reservation(sid="WR" + "3" * 32, account_sid=AC, workspace_sid=WS,
                              task_sid="WT" + "4" * 32, worker_sid="WK" + "5" * 32,
                              worker_name="w")
    by_task = reservation_wire(reservation, LINKS)
    by_worker = reservation_wire(reservation, LINKS, via_worker=True)
    validate_response("FetchTaskReservation", 200, by_task)
    validate_response("FetchWorkerReservation", 200, by_worker)
    assert f"/Tasks/{reservation.task_sid}/Reservations/" in by_task["url"]
    assert f"/Workers/{reservation.worker_sid}/Reservations/" in by_worker["url"]


def test_event_urls_point_at_resource_and_actor():
    event = make_event("reservation.created", account_sid=AC, workspace_sid=WS,
                       resource_type="reservation", resource_sid="WR" + "6" * 32, at=NOW,
                       data={"task_sid": "WT" + "7" * 32})
    body = event_wire(event.to_document(), LINKS)
    validate_response("FetchEvent", 200, body)
    assert body["resource_url"].endswith(f"/Tasks/{'WT' + '7' * 32}/Reservations/{'WR' + '6' * 32}")
    assert body["actor_url"] == f"https://tr.example/v1/Workspaces/{WS}"
    assert body["event_date"] == "2024-05-01T12:00:00Z" and body["event_date_ms"] == 1714564800000


def test_worker_channel_from_a_dispatcher_answer():
    from services.gateway.routes.workers import _answered_channel

    channel = WorkerChannel(sid="WC" + "e" * 32, task_channel_sid="TC" + "f" * 32,
                            task_channel_unique_name="chat", configured_capacity=2)
    answer = {**channel.model_dump(mode="json"), "available_capacity_percentage": 100,
              "worker_sid": "WK" + "1" * 32, "account_sid": AC, "workspace_sid": WS}
    owner, parsed = _answered_channel(answer, "chat")
    body = worker_channel_wire(owner, parsed, LINKS)
    validate_response("UpdateWorkerChannel", 200, body)
    assert body["worker_sid"] == "WK" + "1" * 32 and body["configured_capacity"] == 2
