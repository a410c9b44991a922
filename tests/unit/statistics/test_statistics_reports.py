"""Shaping figures: real-time task figures, split by wait time, activity durations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.statistics import aggregates as agg
from services.statistics import reports
from services.statistics.aggregates import ActivityInterval, Delta
from services.statistics.params import parse_thresholds
from services.statistics.realtime import OpenTask
from services.statistics.windows import Window
from shared.errors import DomainValidationError
from shared.models import Activity

WS = "WS" + "a" * 32
T0 = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)
ACTIVITIES = [
    Activity(sid="WA1", account_sid="AC1", workspace_sid=WS, friendly_name="Offline"),
    Activity(
        sid="WA2",
        account_sid="AC1",
        workspace_sid=WS,
        friendly_name="Available",
        available=True,
    ),
]


def open_task(sid, status, created_s, entered_s=None, priority=0) -> OpenTask:
    entered = None if entered_s is None else T0 + timedelta(seconds=entered_s)
    return OpenTask(
        sid,
        WS,
        status,
        priority,
        "WQ1",
        "WW1",
        None,
        T0 + timedelta(seconds=created_s),
        entered,
        0,
    )


def test_task_figures_of_nothing_are_zero():
    assert reports.task_figures([], T0, in_queue=True) == {
        "total_tasks": 0,
        "tasks_by_status": {"pending": 0, "reserved": 0, "assigned": 0, "wrapping": 0},
        "tasks_by_priority": {},
        "longest_task_waiting_age": 0,
        "longest_task_waiting_sid": None,
        "longest_relative_task_age_in_queue": 0,
        "longest_relative_task_sid_in_queue": None,
    }


def test_task_figures_pick_the_oldest_waiting_task_by_creation_and_by_queue_entry():
    tasks = [
        open_task("WTassigned", "assigned", 0, 0, priority=3),
        open_task("WTreserved", "reserved", 10, 50, priority=3),
        open_task("WTpending", "pending", 20, 30, priority=1),
    ]

    figures = reports.task_figures(tasks, T0 + timedelta(seconds=100.9), in_queue=True)

    assert figures == {
        "total_tasks": 3,
        "tasks_by_status": {"pending": 1, "reserved": 1, "assigned": 1, "wrapping": 0},
        "tasks_by_priority": {"1": 1, "3": 2},
        "longest_task_waiting_age": 90,
        "longest_task_waiting_sid": "WTreserved",
        "longest_relative_task_age_in_queue": 70,
        "longest_relative_task_sid_in_queue": "WTpending",
    }


def test_split_by_wait_time_counts_below_when_shorter_than_threshold():
    totals = Delta()
    for wait in (0, 4, 5, 29, 30, 3725):
        totals.file_wait(agg.ACCEPTED, wait)
    totals.file_wait(agg.CANCELED, 5)

    split = reports.split_by_wait_time(totals, [5, 30, 3720])

    assert split == {
        "5": {
            "above": {"tasks_canceled": 1, "reservations_accepted": 4},
            "below": {"tasks_canceled": 0, "reservations_accepted": 2},
        },
        "30": {
            "above": {"tasks_canceled": 0, "reservations_accepted": 2},
            "below": {"tasks_canceled": 1, "reservations_accepted": 4},
        },
        "3720": {
            "above": {"tasks_canceled": 0, "reservations_accepted": 1},
            "below": {"tasks_canceled": 1, "reservations_accepted": 5},
        },
    }
    assert reports.split_by_wait_time(totals, None) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("", None), ([], None), ("5, 30", [5, 30]), ([10, "20"], [10, 20])],
)
def test_parse_thresholds(value, expected):
    assert parse_thresholds(value) == expected


@pytest.mark.parametrize("value", ["5,x", [-1]])
def test_parse_thresholds_refuses_bad_values(value):
    with pytest.raises(DomainValidationError):
        parse_thresholds(value)


def interval(worker, activity, start_s, end_s) -> ActivityInterval:
    return ActivityInterval(
        WS,
        worker,
        activity,
        T0 + timedelta(seconds=start_s),
        T0 + timedelta(seconds=end_s),
        "EV",
    )


def test_worker_activity_durations_clip_intervals_to_the_window():
    window = Window(T0 + timedelta(seconds=100), T0 + timedelta(seconds=400))
    intervals = [
        interval("WK1", "WA1", 0, 150),  # 50 s inside
        interval("WK1", "WA2", 150, 250),  # 100 s
        interval("WK1", "WA1", 250, 1000),  # 150 s inside
        interval("WK1", "WA2", 500, 600),  # outside
    ]

    assert reports.worker_activity_durations(intervals, ACTIVITIES, window) == [
        {
            "sid": "WA1",
            "friendly_name": "Offline",
            "avg": 100,
            "min": 50,
            "max": 150,
            "total": 200,
        },
        {
            "sid": "WA2",
            "friendly_name": "Available",
            "avg": 100,
            "min": 100,
            "max": 100,
            "total": 100,
        },
    ]


def test_workers_activity_durations_aggregate_each_workers_total():
    window = Window(T0, T0 + timedelta(seconds=1000))
    intervals = [
        interval("WK1", "WA2", 0, 100),
        interval("WK1", "WA2", 200, 300),
        interval("WK2", "WA2", 0, 50.5),
    ]

    assert reports.workers_activity_durations(intervals, ACTIVITIES, window) == [
        {
            "sid": "WA1",
            "friendly_name": "Offline",
            "avg": 0,
            "min": 0,
            "max": 0,
            "total": 0,
        },
        {
            "sid": "WA2",
            "friendly_name": "Available",
            "avg": 125,
            "min": 50,
            "max": 200,
            "total": 250,
        },
    ]


def test_cumulative_figures_of_an_empty_queue_follow_the_zero_rules():
    window = Window(T0, T0 + timedelta(minutes=15))

    figures = reports.cumulative_figures(Delta(), reports.TASK_QUEUE_SHAPE, window, [5])

    zero = {"avg": 0, "min": 0, "max": 0, "total": 0}
    assert figures == {
        "start_time": "2026-05-10T12:00:00Z",
        "end_time": "2026-05-10T12:15:00Z",
        "reservations_created": 0,
        "reservations_accepted": 0,
        "reservations_rejected": 0,
        "reservations_timed_out": 0,
        "reservations_canceled": 0,
        "reservations_rescinded": 0,
        "tasks_canceled": 0,
        "tasks_completed": 0,
        "tasks_deleted": 0,
        "tasks_moved": 0,
        "tasks_entered": 0,
        "avg_task_acceptance_time": 0,
        "wait_duration_until_accepted": zero,
        "wait_duration_until_canceled": zero,
        "wait_duration_in_queue_until_accepted": zero,
        "split_by_wait_time": {
            "5": {
                "above": {"tasks_canceled": 0, "reservations_accepted": 0},
                "below": {"tasks_canceled": 0, "reservations_accepted": 0},
            }
        },
    }


def test_activity_duration_average_never_exceeds_the_maximum():
    # One interval of 1.7 s: every figure is that interval, truncated alike.
    entry = reports._duration_entry(ACTIVITIES[0], [1.7])
    assert (entry["avg"], entry["min"], entry["max"], entry["total"]) == (1, 1, 1, 1)
    entry = reports._duration_entry(ACTIVITIES[0], [1.6, 1.9])
    assert entry["min"] <= entry["avg"] <= entry["max"]
