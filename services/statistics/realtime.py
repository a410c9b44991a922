"""Real-time state: open tasks, workers and queue eligibility, kept in memory.

Built at start from the queue-dispatcher's `tasks` and `workers` collections,
then kept current from events. Every task and worker event carries the object's
version (`task_version`, `worker_version`); a change older than what is known is
ignored, so the snapshot and the events may arrive in any order and a
redelivered event changes nothing:

    snapshot: WT1 v3 assigned    event: WT1 v2 reserved (replayed)  -> stays assigned

Finished tasks and deleted workers leave a tombstone (the most recent 200,000),
so a late event cannot bring them back.

Eligibility of a worker for a queue is the queue's `target_workers` evaluated on
the worker's attributes; it is refreshed when either side changes.

NOTE: this module does no I/O; the service feeds it events and documents.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from shared.events import Event
from shared.expressions import (
    CompiledExpression,
    ExpressionError,
    ExpressionKind,
    compile_expression,
)
from shared.models import Task, TaskStatus, Worker

logger = logging.getLogger(__name__)

OPEN_STATUSES = (
    TaskStatus.PENDING,
    TaskStatus.RESERVED,
    TaskStatus.ASSIGNED,
    TaskStatus.WRAPPING,
)
# NOTE: a reserved task is still waiting for a worker to accept it, so it counts
# for `longest_task_waiting_*` (as Flex's queue view counts "waiting" tasks).
WAITING_STATUSES = (TaskStatus.PENDING, TaskStatus.RESERVED)
_TASK_GONE_EVENTS = ("task.deleted", "task.system-deleted")
_TOMBSTONES = 200_000


@dataclass
class OpenTask:
    sid: str
    workspace_sid: str
    status: str
    priority: int
    queue_sid: str | None
    workflow_sid: str | None
    channel_sid: str | None
    created: datetime
    queue_entered: datetime | None
    version: int


@dataclass
class ChannelState:
    available: bool = True
    capacity: int = 1

    @property
    def can_take_work(self) -> bool:
        return self.available and self.capacity > 0


@dataclass
class WorkerState:
    sid: str
    workspace_sid: str
    friendly_name: str
    attributes: dict[str, Any]
    activity_sid: str
    activity_since: datetime
    version: int
    channels: dict[str, ChannelState] = field(default_factory=dict)

    def can_work_on(self, channel_sid: str | None) -> bool:
        """Whether the channel is on; a channel not heard of counts as on."""
        if channel_sid is None:
            return True
        channel = self.channels.get(channel_sid)
        return channel is None or channel.can_take_work


@dataclass
class _Workspace:
    tasks: dict[str, OpenTask] = field(default_factory=dict)
    workers: dict[str, WorkerState] = field(default_factory=dict)
    queue_expressions: dict[str, tuple[str, CompiledExpression | None]] = field(
        default_factory=dict
    )
    eligible: dict[str, set[str]] = field(default_factory=dict)


class RealtimeState:
    """Open tasks and workers of every workspace, with queue eligibility."""

    def __init__(self) -> None:
        self._workspaces: dict[str, _Workspace] = {}
        self._gone: OrderedDict[str, None] = OrderedDict()

    def _ws(self, workspace_sid: str) -> _Workspace:
        return self._workspaces.setdefault(workspace_sid, _Workspace())

    def forget_workspace(self, workspace_sid: str) -> None:
        self._workspaces.pop(workspace_sid, None)

    # -- reading ------------------------------------------------------------------
    def tasks(self, workspace_sid: str) -> Iterable[OpenTask]:
        return self._ws(workspace_sid).tasks.values()

    def workers(self, workspace_sid: str) -> dict[str, WorkerState]:
        return self._ws(workspace_sid).workers

    def worker(self, workspace_sid: str, worker_sid: str) -> WorkerState | None:
        return self._ws(workspace_sid).workers.get(worker_sid)

    def eligible_workers(self, workspace_sid: str, queue_sid: str) -> set[str]:
        return self._ws(workspace_sid).eligible.get(queue_sid, set())

    # -- snapshot -----------------------------------------------------------------
    def load_task(self, task: Task) -> None:
        """Take a task from the dispatcher's collection (start-up snapshot)."""
        if task.assignment_status not in OPEN_STATUSES:
            self._close_task(task.workspace_sid, task.sid)
            return
        self._put_task(
            OpenTask(
                task.sid,
                task.workspace_sid,
                str(task.assignment_status),
                task.priority,
                task.task_queue_sid,
                task.workflow_sid,
                task.task_channel_sid,
                task.date_created,
                task.task_queue_entered_date,
                task.version,
            )
        )

    def load_worker(self, worker: Worker) -> None:
        """Take a worker from the dispatcher's collection (start-up snapshot)."""
        channels = {
            ch.task_channel_sid: ChannelState(ch.available, ch.configured_capacity)
            for ch in worker.channels
        }
        self._put_worker(
            WorkerState(
                worker.sid,
                worker.workspace_sid,
                worker.friendly_name,
                _attributes(worker.attributes),
                worker.activity_sid,
                worker.date_status_changed,
                worker.version,
                channels,
            )
        )

    # -- events -------------------------------------------------------------------
    def apply_event(self, event: Event) -> None:
        """Follow one event; a stale or repeated one changes nothing."""
        data = event.event_data
        if data.get("task_sid") and data.get("task_assignment_status"):
            self._apply_task_event(event)
        if data.get("worker_sid") and event.event_type != "reservation.failed":
            self._apply_worker_event(event)

    def _apply_task_event(self, event: Event) -> None:
        data = event.event_data
        sid = data["task_sid"]
        ws = self._ws(event.workspace_sid)
        version = _int(data.get("task_version"), 0)
        known = ws.tasks.get(sid)
        if sid in self._gone or (known is not None and version < known.version):
            return
        status = data["task_assignment_status"]
        if status not in OPEN_STATUSES or event.event_type in _TASK_GONE_EVENTS:
            self._close_task(event.workspace_sid, sid)
            return
        self._put_task(
            OpenTask(
                sid,
                event.workspace_sid,
                status,
                _int(data.get("task_priority"), 0),
                data.get("task_queue_sid"),
                data.get("workflow_sid"),
                data.get("task_channel_sid"),
                _ms_time(data.get("task_date_created")) or event.event_date,
                _ms_time(data.get("task_queue_entered_date")),
                version,
            )
        )

    def _apply_worker_event(self, event: Event) -> None:
        data = event.event_data
        sid = data["worker_sid"]
        ws = self._ws(event.workspace_sid)
        known = ws.workers.get(sid)
        version = _int(data.get("worker_version"), known.version if known else 0)
        if sid in self._gone or (known is not None and version < known.version):
            return
        if event.event_type == "worker.deleted":
            self._remove_worker(event.workspace_sid, sid)
            return
        worker = self._worker_from_event(event, known, version)
        if worker is not None:
            self._put_worker(worker)

    def _worker_from_event(
        self, event: Event, known: WorkerState | None, version: int
    ) -> WorkerState | None:
        data = event.event_data
        activity_sid = data.get("worker_activity_sid") or (known and known.activity_sid)
        if not activity_sid:
            return None
        since = event.event_date
        if known is not None and known.activity_sid == activity_sid:
            since = known.activity_since
        channels = dict(known.channels) if known is not None else {}
        if data.get("worker_channel_available") is not None and data.get(
            "task_channel_sid"
        ):
            previous = channels.get(data["task_channel_sid"]) or ChannelState()
            channels[data["task_channel_sid"]] = ChannelState(
                data["worker_channel_available"] == "true",
                _int(data.get("worker_channel_capacity"), previous.capacity),
            )
        attributes = (
            _attributes(data["worker_attributes"])
            if "worker_attributes" in data
            else (known.attributes if known else {})
        )
        name = data.get("worker_name") or (known.friendly_name if known else "")
        return WorkerState(
            data["worker_sid"],
            event.workspace_sid,
            name,
            attributes,
            activity_sid,
            since,
            version,
            channels,
        )

    # -- tasks and workers ----------------------------------------------------------
    def _put_task(self, task: OpenTask) -> None:
        if task.sid in self._gone:
            return
        known = self._ws(task.workspace_sid).tasks.get(task.sid)
        if known is not None and task.version < known.version:
            return
        self._ws(task.workspace_sid).tasks[task.sid] = task

    def _close_task(self, workspace_sid: str, sid: str) -> None:
        self._ws(workspace_sid).tasks.pop(sid, None)
        self._bury(sid)

    def _put_worker(self, worker: WorkerState) -> None:
        if worker.sid in self._gone:
            return
        ws = self._ws(worker.workspace_sid)
        known = ws.workers.get(worker.sid)
        if known is not None and worker.version < known.version:
            return
        ws.workers[worker.sid] = worker
        if known is None or known.attributes != worker.attributes:
            for queue_sid, (_, expression) in ws.queue_expressions.items():
                _set_membership(
                    ws.eligible.setdefault(queue_sid, set()), worker, expression
                )

    def _remove_worker(self, workspace_sid: str, sid: str) -> None:
        ws = self._ws(workspace_sid)
        ws.workers.pop(sid, None)
        for members in ws.eligible.values():
            members.discard(sid)
        self._bury(sid)

    def _bury(self, sid: str) -> None:
        self._gone[sid] = None
        self._gone.move_to_end(sid)
        while len(self._gone) > _TOMBSTONES:
            self._gone.popitem(last=False)

    # -- queues -----------------------------------------------------------------------
    def set_queues(self, workspace_sid: str, target_workers: dict[str, str]) -> None:
        """Set a workspace's queues (SID -> TargetWorkers); recompute what changed."""
        ws = self._ws(workspace_sid)
        for queue_sid in set(ws.queue_expressions) - set(target_workers):
            del ws.queue_expressions[queue_sid]
            ws.eligible.pop(queue_sid, None)
        for queue_sid, text in target_workers.items():
            current = ws.queue_expressions.get(queue_sid)
            if current is not None and current[0] == text:
                continue
            expression = _compile_target(queue_sid, text)
            ws.queue_expressions[queue_sid] = (text, expression)
            members: set[str] = set()
            for worker in ws.workers.values():
                _set_membership(members, worker, expression)
            ws.eligible[queue_sid] = members


def _set_membership(
    members: set[str], worker: WorkerState, expression: CompiledExpression | None
) -> None:
    if expression is not None and expression.evaluate(worker.attributes):
        members.add(worker.sid)
    else:
        members.discard(worker.sid)


def _compile_target(queue_sid: str, text: str) -> CompiledExpression | None:
    try:
        return compile_expression(text, ExpressionKind.WORKER)
    except ExpressionError:
        logger.warning(
            "task queue expression does not compile",
            extra={"task_queue_sid": queue_sid},
        )
        return None


def _attributes(text: Any) -> dict[str, Any]:
    if isinstance(text, dict):
        return text
    try:
        value = orjson.loads(text or "{}")
    except (orjson.JSONDecodeError, TypeError):
        return {}
    return value if isinstance(value, dict) else {}


def _int(value: Any, default: int) -> int:
    try:
        return default if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return default


def _ms_time(value: Any) -> datetime | None:
    ms = _int(value, -1)
    return None if ms < 0 else datetime.fromtimestamp(ms / 1000, UTC)
