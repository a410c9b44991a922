"""The dispatcher's in-memory state of one workspace: workers, tasks, reservations.

Rebuilt from the store at start; every routing decision reads only this. Live
objects (tasks not yet completed or canceled, reservations still holding a
worker) are always here; terminal ones are kept in a bounded `recent` cache so a
late update does not need a store read.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from shared.commands import RouteTask
from shared.config_view import WorkspaceConfig
from shared.models import Reservation, Task, TaskStatus, Worker, WorkerChannel

RECENT_LIMIT = 10_000


def parse_attributes(text: str | None) -> dict[str, Any]:
    """A JSON attributes string as a dict; anything else counts as empty."""
    try:
        value = orjson.loads(text or "{}")
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def ms(moment: Any) -> int:
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True)
class RoutingStep:
    """The workflow step a task is in, as the workflow-router sent it (`task.route`)."""

    seq: int
    step_key: str
    workflow_sid: str | None
    queue_sid: str | None
    expression: str | None = None
    order_by: str | None = None
    skip_if: str | None = None
    known_worker_sid: str | None = None
    known_worker_friendly_name: str | None = None
    target_worker_sid: str | None = None
    ignore_capacity: bool | None = None

    @classmethod
    def from_command(cls, command: RouteTask) -> RoutingStep:
        return cls(
            seq=command.seq,
            step_key=command.step_key,
            workflow_sid=command.workflow_sid or None,
            queue_sid=command.queue_sid,
            expression=command.expression,
            order_by=command.order_by,
            skip_if=command.skip_if,
            known_worker_sid=command.known_worker_sid,
            known_worker_friendly_name=command.known_worker_friendly_name,
            target_worker_sid=command.target_worker_sid,
            ignore_capacity=command.ignore_capacity,
        )

    @property
    def ignores_capacity(self) -> bool:
        """Direct routing to a worker ignores capacity unless told otherwise."""
        return self.target_worker_sid is not None and self.ignore_capacity is not False

    def to_document(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_document(cls, doc: dict[str, Any] | None) -> RoutingStep | None:
        if not doc:
            return None
        return cls(**{k: doc.get(k) for k in cls.__dataclass_fields__})


@dataclass(eq=False)
class TaskState:
    """A task with what matching needs beside the stored model."""

    model: Task
    attributes: dict[str, Any]
    step: RoutingStep | None = None
    waiting: bool = False
    overdue: bool = False
    pending: dict[str, str] = field(default_factory=dict)  # reservation → worker
    accepted: str | None = None

    @property
    def sid(self) -> str:
        return self.model.sid

    @property
    def status(self) -> TaskStatus:
        return self.model.assignment_status

    @property
    def channel_sid(self) -> str:
        return self.model.task_channel_sid or ""

    @property
    def is_waiting(self) -> bool:
        """In a queue's (or a worker's) waiting list: pending and wanting a match."""
        return (
            self.status is TaskStatus.PENDING
            and self.step is not None
            and self.waiting
            and not self.overdue
        )

    def set_attributes(self, text: str) -> None:
        self.model.attributes = text
        self.attributes = parse_attributes(text)


@dataclass(eq=False)
class WorkerState:
    """A worker with its channels by TaskChannel SID and its live reservations."""

    model: Worker
    attributes: dict[str, Any]
    reservations: set[str] = field(default_factory=set)
    _target_document: dict[str, Any] | None = None

    @classmethod
    def of(cls, worker: Worker) -> WorkerState:
        return cls(worker, parse_attributes(worker.attributes))

    @property
    def sid(self) -> str:
        return self.model.sid

    def channel(self, task_channel_sid: str) -> WorkerChannel | None:
        for channel in self.model.channels:
            if channel.task_channel_sid == task_channel_sid:
                return channel
        return None

    def changed(self) -> None:
        """Forget derived documents after any change of the worker."""
        self._target_document = None

    def set_attributes(self, text: str) -> None:
        self.model.attributes = text
        self.attributes = parse_attributes(text)
        self.changed()

    def target_document(self) -> dict[str, Any]:
        """`worker` of a target expression: attributes plus built-in fields."""
        if self._target_document is None:
            worker = self.model
            self._target_document = {
                **self.attributes,
                "sid": worker.sid,
                "friendly_name": worker.friendly_name,
                "activity_sid": worker.activity_sid,
                "activity_name": worker.activity_name,
                "channel": {
                    ch.task_channel_unique_name: {
                        "assigned_tasks": ch.assigned_tasks,
                        "configured_capacity": ch.configured_capacity,
                        "available": ch.available,
                        "available_capacity_percentage": ch.available_capacity_percentage,
                    }
                    for ch in worker.channels
                },
            }
        return self._target_document


class WorkspaceState:
    """Everything the dispatcher holds for one workspace."""

    def __init__(self, config: WorkspaceConfig) -> None:
        from services.queue_dispatcher.matching import MatchingIndex

        self.config = config
        self.workers: dict[str, WorkerState] = {}
        self.names: dict[str, str] = {}  # lower-cased friendly name → worker SID
        self.tasks: dict[str, TaskState] = {}
        self.reservations: dict[str, Reservation] = {}
        self.recent_tasks: OrderedDict[str, TaskState] = OrderedDict()
        self.recent_reservations: OrderedDict[str, Reservation] = OrderedDict()
        self.index = MatchingIndex(self)
        # The workers' idle checkpoint (see worker_load): when the stored one was
        # taken (None: none stored yet), and workers whose idle time changed since.
        self.idle_at: datetime | None = None
        self.idle_dirty: set[str] = set()

    @property
    def sid(self) -> str:
        return self.config.workspace.sid

    @property
    def account_sid(self) -> str:
        return self.config.workspace.account_sid

    @property
    def multi_task(self) -> bool:
        return self.config.workspace.multi_task_enabled

    def find_task(self, sid: str) -> TaskState | None:
        return self.tasks.get(sid) or self.recent_tasks.get(sid)

    def find_reservation(self, sid: str) -> Reservation | None:
        return self.reservations.get(sid) or self.recent_reservations.get(sid)

    def retire_task(self, task: TaskState) -> None:
        """Move a task that reached a terminal status to the recent cache."""
        self.tasks.pop(task.sid, None)
        _remember(self.recent_tasks, task.sid, task)

    def retire_reservation(self, reservation: Reservation) -> None:
        self.reservations.pop(reservation.sid, None)
        _remember(self.recent_reservations, reservation.sid, reservation)

    def forget_tasks(self, sids: set[str]) -> None:
        """Deleted tasks: neither they nor any of their reservations is found again."""
        for sid in sids:
            self.tasks.pop(sid, None)
            self.recent_tasks.pop(sid, None)
        for cache in (self.reservations, self.recent_reservations):
            for reservation_sid in [r.sid for r in cache.values() if r.task_sid in sids]:
                del cache[reservation_sid]


def _remember(cache: OrderedDict[str, Any], key: str, value: Any) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > RECENT_LIMIT:
        cache.popitem(last=False)
