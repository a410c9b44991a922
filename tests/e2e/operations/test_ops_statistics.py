"""One test per operation on events and statistics, through the official
client; the recorder checks every answer against the contract. Statistics are
built from the event stream, so figures are awaited with `eventually`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.conftest import eventually
from tests.e2e.operations.conftest import Api, World
from tests.e2e.operations.registry import operation

pytestmark = pytest.mark.e2e


def _window() -> dict[str, Any]:
    now = datetime.now(UTC).replace(microsecond=0)
    return {
        "start_date": now - timedelta(hours=1),
        "end_date": now + timedelta(minutes=1),
    }


# -- events ----------------------------------------------------------------------
@operation("ListEvent")
def test_list_events(api: Api, world: World):
    reserved = world.reserved
    events = world.ws.events

    def created_reservations() -> list[Any]:
        found = events.list(
            task_sid=reserved.task.sid, event_type="reservation.created", page_size=1
        )
        assert len(found) == 2, found
        return found

    both = eventually(created_reservations)
    assert {e.event_data["worker_sid"] for e in both} == {
        w.sid for w in reserved.workers
    }
    first = reserved.reservation.sid
    assert first in {e.resource_sid for e in events.list(reservation_sid=first)}
    by_worker = events.list(
        worker_sid=reserved.worker.sid, event_type="reservation.created"
    )
    assert {e.event_data["task_sid"] for e in by_worker} == {
        t.sid for t in reserved.tasks
    }
    for filters in (
        {"task_queue_sid": reserved.queue.sid},
        {"workflow_sid": reserved.workflow.sid},
        {"task_channel": "default"},
        {"minutes": 60},
        _window(),
    ):
        found = events.list(
            task_sid=reserved.task.sid, event_type="task-queue.entered", **filters
        )
        assert [e.resource_sid for e in found] == [reserved.task.sid], filters
    one = both[0]
    assert [e.sid for e in events.list(sid=one.sid)] == [one.sid]
    assert (
        events.list(
            task_sid=reserved.task.sid, end_date=datetime(2020, 1, 1, tzinfo=UTC)
        )
        == []
    )


@operation("FetchEvent")
def test_fetch_event(api: Api, world: World):
    listed = eventually(
        lambda: world.ws.events.list(
            task_sid=world.reserved.task.sid, event_type="task.created"
        )
    )[0]
    fetched = world.ws.events(listed.sid).fetch()
    assert (fetched.event_type, fetched.resource_sid) == (
        "task.created",
        world.reserved.task.sid,
    )
    assert fetched.resource_url.endswith(f"/Tasks/{world.reserved.task.sid}")


# -- workspace statistics --------------------------------------------------------
@operation("FetchWorkspaceStatistics")
def test_fetch_workspace_statistics(api: Api, world: World):
    stats = world.ws.statistics().fetch(
        minutes=60, task_channel="default", split_by_wait_time="10,60"
    )
    assert {"realtime", "cumulative"} <= set(api.last_body())
    assert stats.realtime["total_workers"] >= 2
    world.ws.statistics().fetch(**_window())


@operation("FetchWorkspaceRealTimeStatistics")
def test_fetch_workspace_real_time_statistics(api: Api, world: World):
    def counted() -> Any:
        stats = world.ws.real_time_statistics().fetch(task_channel="default")
        assert stats.total_tasks >= 2 and stats.tasks_by_status["reserved"] >= 2, stats
        return stats

    eventually(counted)


@operation("FetchWorkspaceCumulativeStatistics")
def test_fetch_workspace_cumulative_statistics(api: Api, world: World):
    def counted() -> Any:
        stats = world.ws.cumulative_statistics().fetch(
            minutes=60, task_channel="default", split_by_wait_time="5,30"
        )
        assert stats.reservations_created >= 4, stats
        return stats

    eventually(counted)
    world.ws.cumulative_statistics().fetch(**_window())


# -- task queue statistics -------------------------------------------------------
@operation("ListTaskQueuesStatistics")
def test_list_task_queues_statistics(api: Api, world: World):
    listed = world.ws.task_queues.statistics.list(
        page_size=1, minutes=60, task_channel="default", split_by_wait_time="10"
    )
    assert world.queue.sid in {s.task_queue_sid for s in listed}
    named = world.ws.task_queues.statistics.list(
        friendly_name=world.reserved.queue.friendly_name, **_window()
    )
    assert [s.task_queue_sid for s in named] == [world.reserved.queue.sid]


@operation("CreateTaskQueueBulkRealTimeStatistics")
def test_create_task_queue_bulk_real_time_statistics(api: Api, world: World):
    class Body:
        def to_dict(self) -> dict[str, Any]:
            return {"QueueSids": [world.queue.sid, world.reserved.queue.sid]}

    def counted() -> Any:
        stats = world.ws.task_queues.bulk_real_time_statistics.create(body=Body())
        assert stats.task_queue_response_count == 2
        data = {d["task_queue_sid"]: d for d in stats.task_queue_data}
        assert data[world.reserved.queue.sid]["total_tasks"] == 2, data
        return stats

    eventually(counted)


@operation("FetchTaskQueueStatistics")
def test_fetch_task_queue_statistics(api: Api, world: World):
    queue = world.ws.task_queues(world.reserved.queue.sid)
    stats = queue.statistics().fetch(
        minutes=60, task_channel="default", split_by_wait_time="10,60"
    )
    assert stats.task_queue_sid == world.reserved.queue.sid
    queue.statistics().fetch(**_window())


@operation("FetchTaskQueueRealTimeStatistics")
def test_fetch_task_queue_real_time_statistics(api: Api, world: World):
    queue = world.ws.task_queues(world.reserved.queue.sid)

    def counted() -> Any:
        stats = queue.real_time_statistics().fetch(task_channel="default")
        assert stats.total_tasks == 2 and stats.total_eligible_workers == 2, stats
        return stats

    eventually(counted)


@operation("FetchTaskQueueCumulativeStatistics")
def test_fetch_task_queue_cumulative_statistics(api: Api, world: World):
    queue = world.ws.task_queues(world.reserved.queue.sid)

    def counted() -> Any:
        stats = queue.cumulative_statistics().fetch(
            minutes=60, task_channel="default", split_by_wait_time="10"
        )
        assert stats.reservations_created == 4, stats
        return stats

    eventually(counted)
    queue.cumulative_statistics().fetch(**_window())


# -- worker statistics -----------------------------------------------------------
@operation("FetchWorkerStatistics")
def test_fetch_workers_statistics(api: Api, world: World):
    reserved = world.reserved
    stats = world.ws.workers.statistics().fetch(
        minutes=60, task_channel="default", task_queue_sid=reserved.queue.sid
    )
    assert {"realtime", "cumulative"} <= set(api.last_body())
    assert stats.realtime["total_workers"] == 2
    world.ws.workers.statistics().fetch(
        task_queue_name=reserved.queue.friendly_name, **_window()
    )
    world.ws.workers.statistics().fetch(friendly_name=reserved.worker.friendly_name)


@operation("FetchWorkersRealTimeStatistics")
def test_fetch_workers_real_time_statistics(api: Api, world: World):
    stats = world.ws.workers.real_time_statistics().fetch(task_channel="default")
    assert stats.total_workers >= 2
    assert {a["friendly_name"] for a in stats.activity_statistics} >= {
        "Available",
        "Offline",
    }


@operation("FetchWorkersCumulativeStatistics")
def test_fetch_workers_cumulative_statistics(api: Api, world: World):
    def counted() -> Any:
        stats = world.ws.workers.cumulative_statistics().fetch(
            minutes=60, task_channel="default"
        )
        assert stats.reservations_created >= 4, stats
        return stats

    eventually(counted)
    world.ws.workers.cumulative_statistics().fetch(**_window())


@operation("FetchWorkerInstanceStatistics")
def test_fetch_worker_instance_statistics(api: Api, world: World):
    worker = world.ws.workers(world.reserved.worker.sid)

    def counted() -> Any:
        stats = worker.statistics().fetch(minutes=60, task_channel="default")
        assert stats.cumulative["reservations_created"] == 2, stats.cumulative
        return stats

    eventually(counted)
    worker.statistics().fetch(**_window())


# -- workflow statistics ---------------------------------------------------------
@operation("FetchWorkflowStatistics")
def test_fetch_workflow_statistics(api: Api, world: World):
    workflow = world.ws.workflows(world.reserved.workflow.sid)
    stats = workflow.statistics().fetch(
        minutes=60, task_channel="default", split_by_wait_time="10,60"
    )
    assert stats.workflow_sid == world.reserved.workflow.sid
    workflow.statistics().fetch(**_window())


@operation("FetchWorkflowRealTimeStatistics")
def test_fetch_workflow_real_time_statistics(api: Api, world: World):
    workflow = world.ws.workflows(world.reserved.workflow.sid)

    def counted() -> Any:
        stats = workflow.real_time_statistics().fetch(task_channel="default")
        assert stats.total_tasks == 2, stats
        return stats

    eventually(counted)


@operation("FetchWorkflowCumulativeStatistics")
def test_fetch_workflow_cumulative_statistics(api: Api, world: World):
    workflow = world.ws.workflows(world.reserved.workflow.sid)

    def counted() -> Any:
        stats = workflow.cumulative_statistics().fetch(
            minutes=60, split_by_wait_time="10"
        )
        assert stats.tasks_entered == 2, stats
        return stats

    eventually(counted)
    # TODO: with TaskChannel the workflow's tasks_entered is 0: `workflow.entered`
    # events carry no task_channel_sid, so statistics files them under no channel.
    by_channel = workflow.cumulative_statistics().fetch(
        task_channel="default", **_window()
    )
    assert by_channel.reservations_created == 4
