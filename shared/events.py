"""The event envelope every service publishes, and builders of its `event_data`.

An event is the fact that a durable write happened. The envelope is also the
public payload on the event subjects (see `shared.subjects`): the same fields as
the REST Event resource, without the URLs, with `event_date` in ISO 8601.
`event_data` follows TaskRouter's REST event data: snake_case keys, string values.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import BaseModel, Field, PrivateAttr

from shared.models import Activity, Reservation, Task, TaskChannel, TaskQueue, Worker
from shared.models import WorkerChannel, Workflow, Workspace
from shared.sids import SidPrefix


_last_event_stamp = [0, 0]  # [milliseconds, counter] of the last event SID made here


def new_event_sid(now_ms: int | None = None) -> str:
    """An EV SID that sorts in creation order within this process.

    12 hex digits of epoch milliseconds, 4 of a counter within that millisecond,
    then 16 random: events of one decision share a millisecond, and listing them
    by SID keeps the order in which they were made.
    """
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    if ms <= _last_event_stamp[0]:
        ms, counter = _last_event_stamp[0], _last_event_stamp[1] + 1
    else:
        counter = 0
    _last_event_stamp[:] = [ms, counter]
    return f"{SidPrefix.EVENT}{ms:012x}{counter & 0xFFFF:04x}{secrets.token_hex(8)}"


class Event(BaseModel):
    """One state change in a workspace."""

    sid: str = Field(default_factory=new_event_sid)
    account_sid: str
    workspace_sid: str
    event_type: str = Field(description="e.g. reservation.created")
    event_date_ms: int = Field(description="When it happened, epoch milliseconds.")
    resource_type: str = Field(description="task, reservation, worker, ...")
    resource_sid: str
    actor_type: str | None = None
    actor_sid: str | None = None
    description: str = ""
    event_data: dict[str, Any] = Field(default_factory=dict)
    source: str = "taskrouter"
    source_ip_address: str | None = None

    @property
    def event_date(self) -> datetime:
        return datetime.fromtimestamp(self.event_date_ms / 1000, UTC)

    # The plain-dict form, made once: the dispatcher writes it to the outbox and
    # publishes it, and events come by the thousand. Any field set clears it.
    _dumped: dict[str, Any] | None = PrivateAttr(default=None)

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name != "_dumped":
            self._dumped = None

    def model_copy(self, *, update: Any = None, deep: bool = False) -> "Event":
        copied = super().model_copy(update=update, deep=deep)
        copied._dumped = None
        return copied

    def dump(self) -> dict[str, Any]:
        """`model_dump()`, kept; callers must not change what it returns."""
        if self._dumped is None:
            self._dumped = self.model_dump()
        return self._dumped

    def to_payload(self) -> bytes:
        """JSON published on NATS: the envelope plus `event_date` in ISO 8601."""
        body = dict(self.dump())
        body["event_date"] = self.event_date.strftime("%Y-%m-%dT%H:%M:%SZ")
        return orjson.dumps(body)

    def to_document(self) -> dict[str, Any]:
        doc = self.model_dump()
        doc["_id"] = self.sid
        doc["event_date"] = self.event_date
        return doc


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_ms(moment: datetime) -> int:
    """`moment` in whole epoch milliseconds, truncated as BSON stores a date.

    Integer arithmetic, not `timestamp() * 1000`, so no float rounding moves it
    by a millisecond.
    """
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _ms(moment: datetime | None) -> str | None:
    return None if moment is None else str(int(moment.timestamp() * 1000))


def make_event(
    event_type: str,
    *,
    account_sid: str,
    workspace_sid: str,
    resource_type: str,
    resource_sid: str,
    at: datetime,
    description: str = "",
    data: dict[str, Any] | None = None,
    actor_type: str | None = None,
    actor_sid: str | None = None,
) -> Event:
    """Build an event; `actor` defaults to the workspace (a system-made change)."""
    return Event(
        account_sid=account_sid,
        workspace_sid=workspace_sid,
        event_type=event_type,
        event_date_ms=int(at.timestamp() * 1000),
        resource_type=resource_type,
        resource_sid=resource_sid,
        actor_type=actor_type or "workspace",
        actor_sid=actor_sid or workspace_sid,
        description=description,
        event_data={"workspace_sid": workspace_sid, **(data or {})},
    )


def task_data(task: Task, now: datetime) -> dict[str, Any]:
    """The Task group of event data."""
    age = max(0, int((now - task.date_created).total_seconds()))
    data: dict[str, Any] = {
        "task_sid": task.sid,
        "task_attributes": task.attributes,
        "task_age": str(age),
        "task_priority": str(task.priority),
        "task_assignment_status": str(task.assignment_status),
        "task_channel_sid": task.task_channel_sid,
        "task_channel_unique_name": task.task_channel_unique_name,
        "task_queue_sid": task.task_queue_sid,
        "task_queue_name": task.task_queue_friendly_name,
        "workflow_sid": task.workflow_sid,
        "workflow_name": task.workflow_friendly_name,
        "task_date_created": _ms(task.date_created),
        "task_queue_entered_date": _ms(task.task_queue_entered_date),
        "task_version": str(task.version),
        "task_routing_target": task.routing_target,
        "task_ignore_capacity": None if task.ignore_capacity is None else str(task.ignore_capacity).lower(),
        "task_timeout": str(task.timeout),
    }
    if task.reason and task.assignment_status == "canceled":
        data["task_canceled_reason"] = task.reason
    if task.reason and task.assignment_status == "completed":
        data["task_completed_reason"] = task.reason
    return data


def workflow_task_data(
    *,
    task_sid: str,
    task_attributes: str,
    workflow_sid: str | None,
    workflow_name: str | None,
    task_queue_sid: str | None,
    task_channel_sid: str | None,
    task_channel_unique_name: str | None,
    task_date_created: datetime,
) -> dict[str, Any]:
    """The data of `workflow.*` events: the task as its workflow sees it."""
    return {
        "task_sid": task_sid,
        "task_attributes": task_attributes,
        "workflow_sid": workflow_sid,
        "workflow_name": workflow_name,
        "task_queue_sid": task_queue_sid,
        "task_channel_sid": task_channel_sid,
        "task_channel_unique_name": task_channel_unique_name,
        "task_date_created": _ms(task_date_created),
    }


def target_matched_data(filter_index: int | None, filter_name: str | None, step_index: int) -> dict[str, Any]:
    """What `workflow.target-matched` adds: which filter and which of its steps."""
    return {
        "workflow_filter_name": filter_name if filter_index is not None else "Default Filter",
        "workflow_filter_target_index": str(step_index),
    }


def worker_data(worker: Worker) -> dict[str, Any]:
    """The Worker group of event data."""
    return {
        "worker_sid": worker.sid,
        "worker_name": worker.friendly_name,
        "worker_attributes": worker.attributes,
        "worker_activity_sid": worker.activity_sid,
        "worker_activity_name": worker.activity_name,
        "worker_available": str(worker.available).lower(),
        "worker_version": str(worker.version),
    }


def reservation_data(
    reservation: Reservation, task: Task, worker: Worker | None, now: datetime
) -> dict[str, Any]:
    """Reservation events carry the Task and Worker groups too."""
    data = {**task_data(task, now), "reservation_sid": reservation.sid}
    data["task_queue_sid"] = reservation.task_queue_sid or task.task_queue_sid
    data["workflow_sid"] = reservation.workflow_sid or task.workflow_sid
    if worker is not None:
        data.update(worker_data(worker))
    else:
        data["worker_sid"] = reservation.worker_sid
        data["worker_name"] = reservation.worker_name
    return data


def workspace_data(workspace: Workspace) -> dict[str, Any]:
    return {"workspace_sid": workspace.sid, "workspace_name": workspace.friendly_name}


def activity_data(activity: Activity) -> dict[str, Any]:
    return {
        "activity_sid": activity.sid,
        "activity_name": activity.friendly_name,
        "activity_available": str(activity.available).lower(),
    }


def task_queue_data(queue: TaskQueue) -> dict[str, Any]:
    return {
        "task_queue_sid": queue.sid,
        "task_queue_name": queue.friendly_name,
        "task_queue_target_expression": queue.target_workers,
    }


def workflow_data(workflow: Workflow) -> dict[str, Any]:
    return {"workflow_sid": workflow.sid, "workflow_name": workflow.friendly_name}


def task_channel_data(channel: TaskChannel) -> dict[str, Any]:
    return {
        "task_channel_sid": channel.sid,
        "task_channel_name": channel.friendly_name,
        "task_channel_unique_name": channel.unique_name,
        "task_channel_optimized_routing": str(bool(channel.channel_optimized_routing)).lower(),
    }


def worker_channel_data(
    worker: Worker, channel: WorkerChannel, previous_capacity: int | None = None
) -> dict[str, Any]:
    """The Worker Channel group: the Worker group plus one channel's state.

    Used by `worker.channel.availability.update` and `worker.capacity.update`;
    the statistics service reads `task_channel_sid`, `worker_channel_available`
    and `worker_channel_capacity` to count per-channel availability.
    """
    data = worker_data(worker)
    data.update({
        "worker_channel_sid": channel.sid,
        "task_channel_sid": channel.task_channel_sid,
        "task_channel_unique_name": channel.task_channel_unique_name,
        "worker_channel_available": str(channel.available).lower(),
        "worker_channel_available_capacity": str(channel.available_capacity_percentage),
        "worker_channel_capacity": str(channel.configured_capacity),
        "worker_channel_task_count": str(channel.used_capacity),
    })
    if previous_capacity is not None:
        data["worker_channel_previous_capacity"] = str(previous_capacity)
    return data
