"""The figures of statistics answers, from real-time state and summed buckets.

Pure functions: they shape numbers that were already gathered. Field sets are
those of the OpenAPI contract's statistics schemas, without `url` (the gateway
adds it) and without the identifying SIDs, which `queries` adds per route.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.statistics import aggregates as agg
from services.statistics.aggregates import ActivityInterval, Delta
from services.statistics.realtime import (
    OPEN_STATUSES,
    WAITING_STATUSES,
    OpenTask,
    WorkerState,
)
from services.statistics.windows import Window
from shared.models import Activity

RESERVATION_FIELDS = tuple(agg.RESERVATION_COUNTERS.values())


# -- real-time ------------------------------------------------------------------------
def task_figures(
    tasks: Iterable[OpenTask], now: datetime, *, in_queue: bool = False
) -> dict[str, Any]:
    """total_tasks, tasks_by_status/priority and the longest waiting task of `tasks`."""
    by_status = {str(status): 0 for status in OPEN_STATUSES}
    by_priority: dict[str, int] = {}
    oldest: OpenTask | None = None
    oldest_in_queue: OpenTask | None = None
    total = 0
    for task in tasks:
        total += 1
        by_status[task.status] = by_status.get(task.status, 0) + 1
        by_priority[str(task.priority)] = by_priority.get(str(task.priority), 0) + 1
        if task.status not in WAITING_STATUSES:
            continue
        if oldest is None or _by_created(task) < _by_created(oldest):
            oldest = task
        if (
            in_queue
            and task.queue_entered is not None
            and (
                oldest_in_queue is None
                or _by_entered(task) < _by_entered(oldest_in_queue)
            )
        ):
            oldest_in_queue = task
    figures: dict[str, Any] = {
        "total_tasks": total,
        "tasks_by_status": by_status,
        "tasks_by_priority": dict(
            sorted(by_priority.items(), key=lambda kv: int(kv[0]))
        ),
        "longest_task_waiting_age": _age(oldest.created if oldest else None, now),
        "longest_task_waiting_sid": oldest.sid if oldest else None,
    }
    if in_queue:
        entered = oldest_in_queue.queue_entered if oldest_in_queue else None
        figures["longest_relative_task_age_in_queue"] = _age(entered, now)
        figures["longest_relative_task_sid_in_queue"] = (
            oldest_in_queue.sid if oldest_in_queue else None
        )
    return figures


def activity_statistics(
    workers: Iterable[WorkerState], activities: Sequence[Activity]
) -> list[dict[str, Any]]:
    """One `{sid, friendly_name, workers}` per activity, zeros included."""
    counts = {activity.sid: 0 for activity in activities}
    for worker in workers:
        if worker.activity_sid in counts:
            counts[worker.activity_sid] += 1
    return [
        {"sid": a.sid, "friendly_name": a.friendly_name, "workers": counts[a.sid]}
        for a in activities
    ]


def available_workers(
    workers: Iterable[WorkerState],
    activities: Sequence[Activity],
    channel_sid: str | None,
) -> int:
    """Workers in an available activity (and, with a channel, with that channel on)."""
    available = {a.sid for a in activities if a.available}
    return sum(
        1 for w in workers if w.activity_sid in available and w.can_work_on(channel_sid)
    )


def _by_created(task: OpenTask) -> tuple[datetime, str]:
    return task.created, task.sid


def _by_entered(task: OpenTask) -> tuple[datetime, str]:
    return task.queue_entered or task.created, task.sid


def _age(since: datetime | None, now: datetime) -> int:
    if since is None:
        return 0
    return max(0, int((now - since).total_seconds()))


# -- cumulative ------------------------------------------------------------------------
@dataclass(frozen=True)
class CumulativeShape:
    """Which cumulative fields one scope answers with."""

    task_counters: tuple[str, ...]
    entered_counter: str | None = None
    waits: bool = True
    wait_in_queue: bool = False


WORKSPACE_SHAPE = CumulativeShape(
    (
        "tasks_created",
        "tasks_canceled",
        "tasks_completed",
        "tasks_deleted",
        "tasks_moved",
        "tasks_timed_out_in_workflow",
    ),
)
TASK_QUEUE_SHAPE = CumulativeShape(
    ("tasks_canceled", "tasks_completed", "tasks_deleted", "tasks_moved"),
    entered_counter="tasks_entered_queue",
    wait_in_queue=True,
)
WORKFLOW_SHAPE = CumulativeShape(
    (
        "tasks_canceled",
        "tasks_completed",
        "tasks_deleted",
        "tasks_moved",
        "tasks_timed_out_in_workflow",
    ),
    entered_counter="tasks_entered_workflow",
)


def cumulative_figures(
    totals: Delta,
    shape: CumulativeShape,
    window: Window,
    thresholds: Sequence[int] | None,
) -> dict[str, Any]:
    """Cumulative task and reservation figures of one scope over `window`."""
    figures: dict[str, Any] = {
        "start_time": window.start_time,
        "end_time": window.end_time,
    }
    figures.update(reservation_figures(totals))
    for name in shape.task_counters:
        figures[name] = totals.counters.get(name, 0)
    if shape.entered_counter is not None:
        figures["tasks_entered"] = totals.counters.get(shape.entered_counter, 0)
    accepted = totals.duration(agg.WAIT_UNTIL_ACCEPTED)
    figures["avg_task_acceptance_time"] = accepted.average
    figures["wait_duration_until_accepted"] = accepted.to_fields()
    figures["wait_duration_until_canceled"] = totals.duration(
        agg.WAIT_UNTIL_CANCELED
    ).to_fields()
    if shape.wait_in_queue:
        figures["wait_duration_in_queue_until_accepted"] = totals.duration(
            agg.WAIT_IN_QUEUE_UNTIL_ACCEPTED
        ).to_fields()
    figures["split_by_wait_time"] = split_by_wait_time(totals, thresholds)
    return figures


def reservation_figures(totals: Delta) -> dict[str, int]:
    return {name: totals.counters.get(name, 0) for name in RESERVATION_FIELDS}


def split_by_wait_time(
    totals: Delta, thresholds: Sequence[int] | None
) -> dict[str, Any] | None:
    """Tasks canceled and reservations accepted below/above each threshold (seconds).

    A wait counts "below" T when it is shorter than T seconds, else "above".
    """
    if not thresholds:
        return None
    accepted = totals.histograms.get(agg.ACCEPTED, {})
    canceled = totals.histograms.get(agg.CANCELED, {})
    result: dict[str, Any] = {}
    for threshold in thresholds:
        acc_below = sum(n for wait, n in accepted.items() if wait < threshold)
        can_below = sum(n for wait, n in canceled.items() if wait < threshold)
        result[str(threshold)] = {
            "above": {
                "tasks_canceled": sum(canceled.values()) - can_below,
                "reservations_accepted": sum(accepted.values()) - acc_below,
            },
            "below": {"tasks_canceled": can_below, "reservations_accepted": acc_below},
        }
    return result


# -- activity durations ----------------------------------------------------------------
def clipped_seconds(start: datetime, end: datetime, window: Window) -> float | None:
    """Seconds of [start, end] inside `window`; None when they do not overlap."""
    if end < window.start or start > window.end:
        return None
    return (min(end, window.end) - max(start, window.start)).total_seconds()


def open_intervals(
    workers: Iterable[WorkerState], now: datetime
) -> list[ActivityInterval]:
    """Each worker's current, still open activity interval, up to `now`."""
    return [
        ActivityInterval(
            w.workspace_sid, w.sid, w.activity_sid, w.activity_since, now, ""
        )
        for w in workers
    ]


def worker_activity_durations(
    intervals: Iterable[ActivityInterval],
    activities: Sequence[Activity],
    window: Window,
) -> list[dict[str, Any]]:
    """One worker: per activity, the total of its clipped intervals and
    min/max/avg over them."""
    per_activity: dict[str, list[float]] = {a.sid: [] for a in activities}
    for interval in intervals:
        seconds = clipped_seconds(interval.start, interval.end, window)
        if seconds is not None and interval.activity_sid in per_activity:
            per_activity[interval.activity_sid].append(seconds)
    return [_duration_entry(a, per_activity[a.sid]) for a in activities]


def workers_activity_durations(
    intervals: Iterable[ActivityInterval],
    activities: Sequence[Activity],
    window: Window,
) -> list[dict[str, Any]]:
    """Many workers: per activity, each worker's clipped total, then min/max/avg over
    the workers that spent time in it within the window, and the sum as total."""
    per_activity: dict[str, dict[str, float]] = {a.sid: {} for a in activities}
    for interval in intervals:
        seconds = clipped_seconds(interval.start, interval.end, window)
        if seconds is None or interval.activity_sid not in per_activity:
            continue
        totals = per_activity[interval.activity_sid]
        totals[interval.worker_sid] = totals.get(interval.worker_sid, 0.0) + seconds
    return [_duration_entry(a, list(per_activity[a.sid].values())) for a in activities]


def _duration_entry(activity: Activity, seconds: list[float]) -> dict[str, Any]:
    """`{sid, friendly_name, avg, min, max, total}` in whole seconds, all truncated,
    so that min <= avg <= max holds as it does for the exact figures."""
    entry: dict[str, Any] = {
        "sid": activity.sid,
        "friendly_name": activity.friendly_name,
    }
    if not seconds:
        return {**entry, "avg": 0, "min": 0, "max": 0, "total": 0}
    total = sum(seconds)
    return {
        **entry,
        "avg": int(total / len(seconds)),
        "min": int(min(seconds)),
        "max": int(max(seconds)),
        "total": int(total),
    }
