"""One decision's changes: touched objects, events, timers, and what to match next.

A command (or a timer) runs against the in-memory state and records here every
object it changed. `writes()` turns them into versioned store writes:

    changed  ReplaceOne({"_id": sid, "version": <version before>}, doc)  must match
    created  InsertOne(doc)
    deleted  DeleteOne({"_id": sid})
    written  any other write (`write()`), e.g. the workers' idle checkpoint

Each object's `version` goes up by one per decision, however often the decision
touches it, so the version doubles as the ETag and as the optimistic lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo import DeleteMany, DeleteOne, InsertOne, ReplaceOne

from services.queue_dispatcher import documents
from services.queue_dispatcher.state import TaskState, WorkerState, WorkspaceState
from shared.events import Event, make_event
from shared.models import Reservation
from shared.storage import collections as c
from shared.storage.committer import Write


@dataclass(frozen=True)
class Actor:
    """Who asked for a change; None fields mean the workspace itself (a system change)."""

    sid: str | None = None
    source_ip_address: str | None = None

    @property
    def kind(self) -> str | None:
        if self.sid is None:
            return None
        return "account" if self.sid.startswith("AC") else "api_key"


SYSTEM = Actor()


@dataclass(frozen=True, order=True)
class Timer:
    """A due time: `kind` is 'reservation' (timeout) or 'task' (TTL)."""

    due: datetime
    kind: str
    workspace_sid: str
    sid: str


@dataclass
class _Touched:
    collection: str
    version_before: int | None  # None: created in this unit
    obj: Any


@dataclass
class Unit:
    """Changes of one decision in one workspace."""

    state: WorkspaceState
    now: datetime
    actor: Actor = SYSTEM
    events: list[Event] = field(default_factory=list)
    timers: list[Timer] = field(default_factory=list)
    cancelled_timers: list[tuple[str, str, str]] = field(default_factory=list)
    dirty_workers: dict[str, None] = field(default_factory=dict)
    dirty_tasks: dict[str, None] = field(default_factory=dict)
    _touched: dict[str, _Touched] = field(default_factory=dict)
    _deleted: dict[str, Write] = field(default_factory=dict)
    _written: list[Write] = field(default_factory=list)

    # -- objects ------------------------------------------------------------------
    def created(self, obj: TaskState | WorkerState | Reservation) -> None:
        self._touched[obj.sid] = _Touched(_collection_of(obj), None, obj)

    def changed(self, obj: TaskState | WorkerState | Reservation) -> None:
        """Record that `obj` changes in this decision; bumps its version once."""
        if isinstance(obj, WorkerState):
            obj.changed()
        if obj.sid in self._touched:
            return
        model = obj if isinstance(obj, Reservation) else obj.model
        self._touched[obj.sid] = _Touched(_collection_of(obj), model.version, obj)
        model.version += 1
        model.date_updated = self.now

    def deleted(self, obj: TaskState | WorkerState | Reservation) -> None:
        was_new = self._touched.pop(obj.sid, None)
        if was_new is not None and was_new.version_before is None:
            return
        self._deleted[obj.sid] = Write(_collection_of(obj), DeleteOne({"_id": obj.sid}))

    def delete_reservations_of(self, task_sid: str) -> None:
        self._deleted["reservations-of:" + task_sid] = Write(
            c.RESERVATIONS, DeleteMany({"task_sid": task_sid})
        )

    def write(self, write: Write) -> None:
        """A store write of this decision that is not one object's document."""
        self._written.append(write)

    @property
    def touched(self) -> bool:
        return bool(self._touched or self._deleted or self._written)

    # -- what happens next ---------------------------------------------------------
    def emit(
        self,
        event_type: str,
        *,
        resource_type: str,
        resource_sid: str,
        data: dict[str, Any],
        description: str = "",
        actor: Actor | None = None,
    ) -> Event:
        """Record an event of this decision; `actor` defaults to the command's."""
        actor = self.actor if actor is None else actor
        event = make_event(
            event_type,
            account_sid=self.state.account_sid,
            workspace_sid=self.state.sid,
            resource_type=resource_type,
            resource_sid=resource_sid,
            at=self.now,
            description=description,
            data=data,
            actor_type=actor.kind,
            actor_sid=actor.sid,
        )
        event.source_ip_address = actor.source_ip_address
        self.events.append(event)
        return event

    def schedule(self, kind: str, sid: str, due: datetime) -> None:
        self.timers.append(Timer(due, kind, self.state.sid, sid))

    def cancel_timer(self, kind: str, sid: str) -> None:
        self.cancelled_timers.append((kind, self.state.sid, sid))

    def match_worker(self, worker_sid: str) -> None:
        self.dirty_workers[worker_sid] = None

    def match_task(self, task_sid: str) -> None:
        self.dirty_tasks[task_sid] = None

    # -- store writes ----------------------------------------------------------------
    def writes(self) -> list[Write]:
        writes = []
        for sid, touched in self._touched.items():
            doc = _document_of(touched.obj)
            if touched.version_before is None:
                writes.append(Write(touched.collection, InsertOne(doc)))
            else:
                flt = {"_id": sid, "version": touched.version_before}
                writes.append(
                    Write(touched.collection, ReplaceOne(flt, doc), must_match=True)
                )
        writes.extend(self._deleted.values())
        writes.extend(self._written)
        return writes


def _collection_of(obj: Any) -> str:
    if isinstance(obj, TaskState):
        return c.TASKS
    if isinstance(obj, WorkerState):
        return c.WORKERS
    return c.RESERVATIONS


def _document_of(obj: Any) -> dict[str, Any]:
    if isinstance(obj, TaskState):
        return documents.task_document(obj)
    if isinstance(obj, WorkerState):
        return documents.worker_document(obj)
    return documents.reservation_document(obj)
