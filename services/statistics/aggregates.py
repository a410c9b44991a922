"""Cumulative counters: what each event adds, kept per time bucket.

Every counted event adds a `Delta` to one bucket per scope it belongs to
(workspace; its task queue, workflow and worker when the event names them) and
per granularity (the minute and the hour it happened in), under the task
channel of its task (`-` for none). A query sums the buckets that cover its
window (see `windows.bucket_ranges`).

A `Delta` holds
- counters (`reservations_accepted`, `tasks_created`, ...),
- durations as total/count/min/max in whole seconds (`wait_until_accepted`, ...),
- wait-time histograms for SplitByWaitTime: number of tasks per whole second of
  wait (`{"12": 3}` = three waited 12.x s). Waits of an hour or more are kept
  per started minute (3725 s is filed under 3720), which keeps a bucket small;
  a threshold of an hour or more that is not a whole minute is approximate.

Waits are truncated to whole seconds when recorded, as `TaskAge` is; then for
a whole-second threshold T, "wait < T" is exact on the histogram.

Activity time is not bucketed: each `worker.activity.update` records the closed
interval `[event time - time in previous activity, event time]` (see
`ActivityInterval`), so a query can clip intervals to its window exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from services.statistics.windows import floor_hour, floor_minute
from shared.events import Event

WORKSPACE = "workspace"
TASK_QUEUE = "task_queue"
WORKFLOW = "workflow"
WORKER = "worker"
NO_CHANNEL = "-"

BUCKET_RETENTION = timedelta(days=32)
_COARSE_FROM = 3600

RESERVATION_COUNTERS = {
    "reservation.created": "reservations_created",
    "reservation.accepted": "reservations_accepted",
    "reservation.rejected": "reservations_rejected",
    "reservation.timeout": "reservations_timed_out",
    "reservation.canceled": "reservations_canceled",
    "reservation.rescinded": "reservations_rescinded",
}
TASK_COUNTERS = {
    "task.created": "tasks_created",
    "task.canceled": "tasks_canceled",
    "task.completed": "tasks_completed",
    "task.deleted": "tasks_deleted",
    "task-queue.moved": "tasks_moved",
    "workflow.timeout": "tasks_timed_out_in_workflow",
    "task-queue.entered": "tasks_entered_queue",
    "workflow.entered": "tasks_entered_workflow",
}

# Durations and histograms.
WAIT_UNTIL_ACCEPTED = "wait_until_accepted"
WAIT_UNTIL_CANCELED = "wait_until_canceled"
WAIT_IN_QUEUE_UNTIL_ACCEPTED = "wait_in_queue_until_accepted"
ACCEPTED = "accepted"
CANCELED = "canceled"


@dataclass
class Duration:
    """Total, count, min and max of some durations in whole seconds."""

    total: int = 0
    count: int = 0
    min: int | None = None
    max: int | None = None

    def add(self, seconds: int) -> None:
        self.total += seconds
        self.count += 1
        self.min = seconds if self.min is None else min(self.min, seconds)
        self.max = seconds if self.max is None else max(self.max, seconds)

    def merge(self, other: Duration) -> None:
        if other.count == 0:
            return
        self.total += other.total
        self.count += other.count
        for name, pick in (("min", min), ("max", max)):
            mine, theirs = getattr(self, name), getattr(other, name)
            setattr(self, name, theirs if mine is None else pick(mine, theirs))

    @property
    def average(self) -> int:
        """Mean rounded to whole seconds, halves up; 0 when empty."""
        return (
            0 if self.count == 0 else (2 * self.total + self.count) // (2 * self.count)
        )

    def to_fields(self) -> dict[str, int]:
        """The API's `{avg, min, max, total}`; all zero when there is nothing."""
        return {
            "avg": self.average,
            "min": self.min or 0,
            "max": self.max or 0,
            "total": self.total,
        }


@dataclass
class Delta:
    """What some events add to one bucket (or what a window's buckets add up to)."""

    counters: dict[str, int] = field(default_factory=dict)
    durations: dict[str, Duration] = field(default_factory=dict)
    histograms: dict[str, dict[int, int]] = field(default_factory=dict)

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def measure(self, name: str, seconds: int) -> None:
        self.durations.setdefault(name, Duration()).add(seconds)

    def file_wait(self, name: str, seconds: int, n: int = 1) -> None:
        key = wait_key(seconds)
        histogram = self.histograms.setdefault(name, {})
        histogram[key] = histogram.get(key, 0) + n

    def merge(self, other: Delta) -> None:
        for name, n in other.counters.items():
            self.count(name, n)
        for name, duration in other.durations.items():
            self.durations.setdefault(name, Duration()).merge(duration)
        for name, histogram in other.histograms.items():
            for key, n in histogram.items():
                mine = self.histograms.setdefault(name, {})
                mine[key] = mine.get(key, 0) + n

    def duration(self, name: str) -> Duration:
        return self.durations.get(name) or Duration()

    def update_operators(self) -> dict[str, dict[str, Any]]:
        """`$inc`/`$min`/`$max` operators adding this delta to a bucket document."""
        inc: dict[str, int] = {f"c.{k}": n for k, n in self.counters.items()}
        low: dict[str, int] = {}
        high: dict[str, int] = {}
        for name, d in self.durations.items():
            inc[f"d.{name}.total"] = d.total
            inc[f"d.{name}.count"] = d.count
            if d.min is not None and d.max is not None:
                low[f"d.{name}.min"] = d.min
                high[f"d.{name}.max"] = d.max
        for name, histogram in self.histograms.items():
            for key, n in histogram.items():
                inc[f"h.{name}.{key}"] = n
        ops: dict[str, dict[str, Any]] = {"$inc": inc}
        if low:
            ops["$min"] = low
            ops["$max"] = high
        return ops

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Delta:
        delta = cls(counters=dict(doc.get("c") or {}))
        for name, d in (doc.get("d") or {}).items():
            delta.durations[name] = Duration(
                int(d.get("total", 0)),
                int(d.get("count", 0)),
                d.get("min"),
                d.get("max"),
            )
        for name, histogram in (doc.get("h") or {}).items():
            delta.histograms[name] = {int(k): int(n) for k, n in histogram.items()}
        return delta


def wait_key(seconds: int) -> int:
    """The histogram slot of a wait: its second, or its minute from an hour on."""
    if seconds < _COARSE_FROM:
        return seconds
    return seconds // 60 * 60


@dataclass(frozen=True)
class BucketKey:
    """One bucket: a granularity ("m"/"h"), a scope and channel, and its start."""

    granularity: str
    workspace_sid: str
    scope: str
    scope_sid: str
    channel: str
    start: datetime

    @property
    def document_id(self) -> str:
        epoch_minute = int(self.start.timestamp()) // 60
        return "|".join(
            (
                self.granularity,
                self.workspace_sid,
                self.scope,
                self.scope_sid,
                self.channel,
                str(epoch_minute),
            )
        )

    def identity(self) -> dict[str, Any]:
        """The fields a new bucket document starts with (`$setOnInsert`)."""
        return {
            "g": self.granularity,
            "ws": self.workspace_sid,
            "scope": self.scope,
            "sid": self.scope_sid,
            "ch": self.channel,
            "t": self.start,
            "expire_at": self.start + BUCKET_RETENTION,
        }


@dataclass(frozen=True)
class ActivityInterval:
    """Time one worker spent in one activity, closed by the event `event_sid`."""

    workspace_sid: str
    worker_sid: str
    activity_sid: str
    start: datetime
    end: datetime
    event_sid: str

    def to_document(self) -> dict[str, Any]:
        return {
            "_id": f"iv|{self.event_sid}",
            "g": "iv",
            "ws": self.workspace_sid,
            "scope": WORKER,
            "sid": self.worker_sid,
            "activity_sid": self.activity_sid,
            "start": self.start,
            "t": self.end,
            "expire_at": self.end + BUCKET_RETENTION,
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> ActivityInterval:
        return cls(
            doc["ws"],
            doc["sid"],
            doc["activity_sid"],
            doc["start"],
            doc["t"],
            doc["_id"].removeprefix("iv|"),
        )


# -- from events -----------------------------------------------------------------
def event_delta(event: Event) -> Delta | None:
    """What `event` adds to each of its scopes' buckets; None if it counts nothing."""
    data = event.event_data
    delta = Delta()
    counter = RESERVATION_COUNTERS.get(event.event_type) or TASK_COUNTERS.get(
        event.event_type
    )
    if counter is None:
        return None
    delta.count(counter)
    created = _ms_time(data.get("task_date_created"))
    if event.event_type == "reservation.accepted" and created is not None:
        wait = _seconds_between(created, event.event_date)
        delta.measure(WAIT_UNTIL_ACCEPTED, wait)
        delta.file_wait(ACCEPTED, wait)
        entered = _ms_time(data.get("task_queue_entered_date"))
        if entered is not None:
            delta.measure(
                WAIT_IN_QUEUE_UNTIL_ACCEPTED,
                _seconds_between(entered, event.event_date),
            )
    if event.event_type == "task.canceled" and created is not None:
        wait = _seconds_between(created, event.event_date)
        delta.measure(WAIT_UNTIL_CANCELED, wait)
        delta.file_wait(CANCELED, wait)
    return delta


def event_scopes(event: Event) -> Iterator[tuple[str, str]]:
    """The (scope, scope SID) pairs whose buckets `event` counts in."""
    data = event.event_data
    yield WORKSPACE, event.workspace_sid
    if data.get("task_queue_sid"):
        yield TASK_QUEUE, data["task_queue_sid"]
    if data.get("workflow_sid"):
        yield WORKFLOW, data["workflow_sid"]
    if event.event_type.startswith("reservation.") and data.get("worker_sid"):
        yield WORKER, data["worker_sid"]


def event_bucket_keys(event: Event) -> Iterator[BucketKey]:
    """Every bucket `event` counts in: each scope at minute and hour granularity."""
    channel = event.event_data.get("task_channel_sid") or NO_CHANNEL
    moment = event.event_date
    for scope, scope_sid in event_scopes(event):
        for granularity, start in (
            ("m", floor_minute(moment)),
            ("h", floor_hour(moment)),
        ):
            yield BucketKey(
                granularity, event.workspace_sid, scope, scope_sid, channel, start
            )


def activity_interval(event: Event) -> ActivityInterval | None:
    """The interval a `worker.activity.update` closes (previous-activity fields)."""
    if event.event_type != "worker.activity.update":
        return None
    data = event.event_data
    previous = data.get("worker_previous_activity_sid")
    spent_ms = _int(data.get("worker_time_in_previous_activity_ms"))
    if spent_ms is None:
        seconds = _int(data.get("worker_time_in_previous_activity"))
        spent_ms = None if seconds is None else seconds * 1000
    worker_sid = data.get("worker_sid") or event.resource_sid
    if not previous or spent_ms is None or spent_ms < 0:
        return None
    end = event.event_date
    return ActivityInterval(
        event.workspace_sid,
        worker_sid,
        previous,
        end - timedelta(milliseconds=spent_ms),
        end,
        event.sid,
    )


class BucketBatch:
    """Deltas of a batch of events merged per bucket, plus the intervals they close."""

    def __init__(self) -> None:
        self.deltas: dict[BucketKey, Delta] = {}
        self.intervals: list[ActivityInterval] = []

    def add_event(self, event: Event) -> None:
        """Count `event`; everything is computed first, so one that raises adds nothing."""
        delta = event_delta(event)
        keys = [] if delta is None else list(event_bucket_keys(event))
        interval = activity_interval(event)
        if delta is not None:
            for key in keys:
                self.deltas.setdefault(key, Delta()).merge(delta)
        if interval is not None:
            self.intervals.append(interval)

    def add_interval(self, interval: ActivityInterval) -> None:
        self.intervals.append(interval)

    def __bool__(self) -> bool:
        return bool(self.deltas or self.intervals)


# -- helpers ------------------------------------------------------------------------
def _int(value: Any) -> int | None:
    try:
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return None


def _ms_time(value: Any) -> datetime | None:
    ms = _int(value)
    try:
        return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return None  # outside the calendar: as if missing


def _seconds_between(earlier: datetime, later: datetime) -> int:
    """Whole seconds from `earlier` to `later`, never negative."""
    return max(0, (later - earlier) // timedelta(seconds=1))
