"""Real-time state: versions make snapshot and events commute; eligibility follows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.statistics.realtime import RealtimeState
from shared.events import make_event, task_data, worker_channel_data, worker_data
from shared.models import Task, TaskStatus, Worker, WorkerChannel

ACCOUNT = "AC" + "a" * 32
WS = "WS" + "a" * 32
QUEUE = "WQ" + "1" * 32
OTHER_QUEUE = "WQ" + "2" * 32
AVAILABLE = "WA" + "1" * 32
OFFLINE = "WA" + "0" * 32
VOICE = "TC" + "1" * 32
T0 = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)


def task(
    version: int = 0, status: str = "pending", queue: str = QUEUE, **fields
) -> Task:
    return Task(
        sid="WT" + "1" * 32,
        account_sid=ACCOUNT,
        workspace_sid=WS,
        assignment_status=TaskStatus(status),
        task_queue_sid=queue,
        version=version,
        date_created=T0,
        **fields,
    )


def worker(
    version: int = 0, attributes: str = '{"skill": "support"}', activity=AVAILABLE
) -> Worker:
    return Worker(
        sid="WK" + "1" * 32,
        account_sid=ACCOUNT,
        workspace_sid=WS,
        friendly_name="Alice",
        attributes=attributes,
        activity_sid=activity,
        activity_name="x",
        version=version,
        date_status_changed=T0,
        channels=[
            WorkerChannel(
                sid="WC1", task_channel_sid=VOICE, task_channel_unique_name="voice"
            )
        ],
    )


def task_event(t: Task, event_type: str = "task.updated", seconds: int = 1):
    at = T0 + timedelta(seconds=seconds)
    return make_event(
        event_type,
        account_sid=ACCOUNT,
        workspace_sid=WS,
        resource_type="task",
        resource_sid=t.sid,
        at=at,
        data=task_data(t, at),
    )


def worker_event(w: Worker, event_type: str, seconds: int, data=None):
    return make_event(
        event_type,
        account_sid=ACCOUNT,
        workspace_sid=WS,
        resource_type="worker",
        resource_sid=w.sid,
        at=T0 + timedelta(seconds=seconds),
        data=data or worker_data(w),
    )


def test_task_event_opens_and_updates_a_task():
    state = RealtimeState()
    state.apply_event(task_event(task(1, priority=7)))
    state.apply_event(task_event(task(2, "reserved", priority=7)))

    (open_task,) = state.tasks(WS)
    assert (open_task.status, open_task.priority, open_task.version) == (
        "reserved",
        7,
        2,
    )
    assert open_task.created == T0


def test_older_event_after_snapshot_changes_nothing():
    state = RealtimeState()
    state.load_task(task(3, "assigned"))
    state.apply_event(task_event(task(2, "reserved")))

    assert [t.status for t in state.tasks(WS)] == ["assigned"]


def test_snapshot_older_than_applied_event_changes_nothing():
    state = RealtimeState()
    state.apply_event(task_event(task(4, "wrapping")))
    state.load_task(task(3, "assigned"))

    assert [t.status for t in state.tasks(WS)] == ["wrapping"]


def test_finished_task_stays_gone_even_if_an_old_event_comes_late():
    state = RealtimeState()
    state.apply_event(task_event(task(1)))
    state.apply_event(task_event(task(5, "completed"), "task.completed"))
    state.apply_event(task_event(task(2, "reserved")))
    state.load_task(task(3, "assigned"))

    assert list(state.tasks(WS)) == []


def test_deleted_task_is_removed_whatever_its_status():
    state = RealtimeState()
    state.apply_event(task_event(task(1)))
    state.apply_event(task_event(task(1), "task.deleted"))

    assert list(state.tasks(WS)) == []


def test_worker_eligibility_follows_attribute_and_expression_changes():
    state = RealtimeState()
    state.set_queues(WS, {QUEUE: "skill == 'support'", OTHER_QUEUE: "skill == 'sales'"})
    state.apply_event(worker_event(worker(0), "worker.created", 0))
    assert state.eligible_workers(WS, QUEUE) == {"WK" + "1" * 32}
    assert state.eligible_workers(WS, OTHER_QUEUE) == set()

    state.apply_event(
        worker_event(worker(1, '{"skill": "sales"}'), "worker.attributes.update", 5)
    )
    assert state.eligible_workers(WS, QUEUE) == set()
    assert state.eligible_workers(WS, OTHER_QUEUE) == {"WK" + "1" * 32}

    state.set_queues(WS, {QUEUE: "skill IN ['support', 'sales']"})
    assert state.eligible_workers(WS, QUEUE) == {"WK" + "1" * 32}
    assert state.eligible_workers(WS, OTHER_QUEUE) == set()


def test_queue_expression_that_does_not_compile_matches_nobody():
    state = RealtimeState()
    state.load_worker(worker())
    state.set_queues(WS, {QUEUE: "skill == == 'x'"})

    assert state.eligible_workers(WS, QUEUE) == set()


def test_activity_since_moves_only_when_the_activity_changes():
    state = RealtimeState()
    state.load_worker(worker(0))
    state.apply_event(
        worker_event(worker(1, '{"skill": "x"}'), "worker.attributes.update", 30)
    )
    assert state.worker(WS, "WK" + "1" * 32).activity_since == T0

    state.apply_event(
        worker_event(worker(2, '{"skill": "x"}', OFFLINE), "worker.activity.update", 60)
    )
    current = state.worker(WS, "WK" + "1" * 32)
    assert (current.activity_sid, current.activity_since) == (
        OFFLINE,
        T0 + timedelta(seconds=60),
    )
    assert current.attributes == {"skill": "x"}


def test_channel_availability_event_turns_a_channel_off():
    state = RealtimeState()
    state.load_worker(worker(0))
    changed = worker(1)
    changed.channels[0].available = False
    state.apply_event(
        worker_event(
            changed,
            "worker.channel.availability.update",
            5,
            worker_channel_data(changed, changed.channels[0]),
        )
    )

    current = state.worker(WS, "WK" + "1" * 32)
    assert current.can_work_on(VOICE) is False
    assert current.can_work_on("TC" + "9" * 32) is True
    assert current.can_work_on(None) is True


def test_deleted_worker_leaves_queues_and_does_not_come_back():
    state = RealtimeState()
    state.set_queues(WS, {QUEUE: "1==1"})
    state.load_worker(worker(0))
    state.apply_event(worker_event(worker(1), "worker.deleted", 5))
    state.apply_event(worker_event(worker(0), "worker.activity.update", 1))

    assert state.workers(WS) == {}
    assert state.eligible_workers(WS, QUEUE) == set()


def test_forget_workspace_drops_its_state():
    state = RealtimeState()
    state.load_worker(worker())
    state.forget_workspace(WS)

    assert state.workers(WS) == {}
