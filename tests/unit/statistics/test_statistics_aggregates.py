"""What each event adds to the buckets, and how bucket documents add up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.statistics import aggregates as agg
from services.statistics.aggregates import BucketBatch, BucketKey, Delta, Duration
from shared.events import make_event

WS = "WS" + "a" * 32
QUEUE = "WQ" + "1" * 32
WORKFLOW = "WW" + "1" * 32
WORKER = "WK" + "1" * 32
VOICE = "TC" + "1" * 32
AT = datetime(2026, 5, 10, 12, 30, 15, 500000, tzinfo=UTC)


def ms(moment: datetime) -> str:
    return str(int(moment.timestamp() * 1000))


def event(event_type: str, at: datetime = AT, **data):
    return make_event(
        event_type,
        account_sid="AC" + "a" * 32,
        workspace_sid=WS,
        resource_type="task",
        resource_sid="WT" + "1" * 32,
        at=at,
        data=data,
    )


def reservation(event_type: str, **data):
    return event(
        event_type,
        task_queue_sid=QUEUE,
        workflow_sid=WORKFLOW,
        worker_sid=WORKER,
        task_channel_sid=VOICE,
        **data,
    )


@pytest.mark.parametrize(
    ("event_type", "counter"),
    [*agg.RESERVATION_COUNTERS.items(), *agg.TASK_COUNTERS.items()],
)
def test_event_delta_counts_each_counted_type(event_type, counter):
    delta = agg.event_delta(event(event_type))

    assert delta is not None
    assert delta.counters == {counter: 1}


@pytest.mark.parametrize(
    "event_type",
    [
        "task.updated",
        "reservation.completed",
        "worker.activity.update",
        "workflow.target-matched",
        "task-queue.timeout",
        "task.system-deleted",
    ],
)
def test_event_delta_ignores_types_without_counter(event_type):
    assert agg.event_delta(event(event_type)) is None


def test_accepted_reservation_measures_waits_from_creation_and_queue_entry():
    created = AT - timedelta(seconds=90, milliseconds=700)
    entered = AT - timedelta(seconds=30)
    delta = agg.event_delta(
        reservation(
            "reservation.accepted",
            task_date_created=ms(created),
            task_queue_entered_date=ms(entered),
        )
    )

    assert delta is not None
    assert delta.durations == {
        agg.WAIT_UNTIL_ACCEPTED: Duration(90, 1, 90, 90),
        agg.WAIT_IN_QUEUE_UNTIL_ACCEPTED: Duration(30, 1, 30, 30),
    }
    assert delta.histograms == {agg.ACCEPTED: {90: 1}}


def test_canceled_task_measures_wait_and_files_it_for_split():
    delta = agg.event_delta(
        event(
            "task.canceled", task_date_created=ms(AT - timedelta(hours=2, seconds=59))
        )
    )

    assert delta is not None
    assert delta.durations[agg.WAIT_UNTIL_CANCELED] == Duration(7259, 1, 7259, 7259)
    # From an hour on, waits are filed per started minute.
    assert delta.histograms == {agg.CANCELED: {7200: 1}}


def test_wait_before_creation_counts_as_zero():
    delta = agg.event_delta(
        event("task.canceled", task_date_created=ms(AT + timedelta(seconds=5)))
    )

    assert delta is not None
    assert delta.durations[agg.WAIT_UNTIL_CANCELED] == Duration(0, 1, 0, 0)


def test_event_bucket_keys_cover_every_scope_at_minute_and_hour():
    keys = set(agg.event_bucket_keys(reservation("reservation.created")))

    minute = datetime(2026, 5, 10, 12, 30, tzinfo=UTC)
    hour = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)
    expected = {
        BucketKey(g, WS, scope, sid, VOICE, start)
        for scope, sid in (
            (agg.WORKSPACE, WS),
            (agg.TASK_QUEUE, QUEUE),
            (agg.WORKFLOW, WORKFLOW),
            (agg.WORKER, WORKER),
        )
        for g, start in (("m", minute), ("h", hour))
    }
    assert keys == expected


def test_task_events_do_not_count_for_workers_and_file_without_channel_as_dash():
    keys = list(agg.event_bucket_keys(event("task.completed", worker_sid=WORKER)))

    assert {k.scope for k in keys} == {agg.WORKSPACE}
    assert {k.channel for k in keys} == {agg.NO_CHANNEL}


def test_activity_interval_from_previous_activity_fields():
    interval = agg.activity_interval(
        make_event(
            "worker.activity.update",
            account_sid="AC" + "a" * 32,
            workspace_sid=WS,
            resource_type="worker",
            resource_sid=WORKER,
            at=AT,
            data={
                "worker_sid": WORKER,
                "worker_previous_activity_sid": "WA1",
                "worker_time_in_previous_activity": "42",
                "worker_time_in_previous_activity_ms": "42250",
            },
        )
    )

    assert interval is not None
    assert (interval.worker_sid, interval.activity_sid) == (WORKER, "WA1")
    assert interval.end == datetime.fromtimestamp(int(ms(AT)) / 1000, UTC)
    assert interval.end - interval.start == timedelta(milliseconds=42250)


def test_activity_interval_falls_back_to_whole_seconds_and_needs_previous_activity():
    def update(**data):
        return make_event(
            "worker.activity.update",
            account_sid="AC" + "a" * 32,
            workspace_sid=WS,
            resource_type="worker",
            resource_sid=WORKER,
            at=AT,
            data=data,
        )

    seconds = agg.activity_interval(
        update(worker_previous_activity_sid="WA1", worker_time_in_previous_activity="7")
    )
    assert seconds is not None and seconds.end - seconds.start == timedelta(seconds=7)
    assert agg.activity_interval(update(worker_time_in_previous_activity="7")) is None
    assert agg.activity_interval(update(worker_previous_activity_sid="WA1")) is None


def test_bucket_batch_merges_events_of_the_same_bucket():
    created = ms(AT - timedelta(seconds=10))
    batch = BucketBatch()
    batch.add_event(reservation("reservation.accepted", task_date_created=created))
    batch.add_event(
        reservation(
            "reservation.accepted", task_date_created=ms(AT - timedelta(seconds=4))
        )
    )
    batch.add_event(reservation("task.updated"))

    assert len(batch.deltas) == 8
    delta = next(iter(batch.deltas.values()))
    assert delta.counters == {"reservations_accepted": 2}
    assert delta.durations[agg.WAIT_UNTIL_ACCEPTED] == Duration(14, 2, 4, 10)
    assert delta.histograms[agg.ACCEPTED] == {10: 1, 4: 1}


def test_update_operators_round_trip_through_a_document():
    delta = Delta()
    delta.count("tasks_canceled", 2)
    delta.measure(agg.WAIT_UNTIL_CANCELED, 12)
    delta.measure(agg.WAIT_UNTIL_CANCELED, 3)
    delta.file_wait(agg.CANCELED, 12)
    delta.file_wait(agg.CANCELED, 3)

    ops = delta.update_operators()

    assert ops == {
        "$inc": {
            "c.tasks_canceled": 2,
            "d.wait_until_canceled.total": 15,
            "d.wait_until_canceled.count": 2,
            "h.canceled.12": 1,
            "h.canceled.3": 1,
        },
        "$min": {"d.wait_until_canceled.min": 3},
        "$max": {"d.wait_until_canceled.max": 12},
    }
    document = {
        "c": {"tasks_canceled": 2},
        "d": {"wait_until_canceled": {"total": 15, "count": 2, "min": 3, "max": 12}},
        "h": {"canceled": {"12": 1, "3": 1}},
    }
    assert Delta.from_document(document) == delta


def test_duration_average_rounds_half_up_and_empty_is_zero():
    assert Duration().to_fields() == {"avg": 0, "min": 0, "max": 0, "total": 0}
    assert Duration(5, 2, 2, 3).average == 3
    assert Duration(4, 3, 1, 2).average == 1


def test_duration_merge_keeps_extremes():
    merged = Duration(10, 2, 4, 6)
    merged.merge(Duration(1, 1, 1, 1))
    merged.merge(Duration())

    assert merged == Duration(11, 3, 1, 6)


def test_bucket_key_identity_and_id():
    key = BucketKey(
        "h", WS, agg.TASK_QUEUE, QUEUE, VOICE, datetime(2026, 5, 10, 12, tzinfo=UTC)
    )

    assert (
        key.document_id
        == f"h|{WS}|task_queue|{QUEUE}|{VOICE}|{int(key.start.timestamp()) // 60}"
    )
    assert key.identity()["expire_at"] == key.start + timedelta(days=32)
