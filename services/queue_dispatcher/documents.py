"""Stored documents of the dispatcher's collections, to and from memory.

Documents are `Model.to_document()` so the gateway reads them with the shared
models; the dispatcher adds fields of its own, which those models ignore:

    workers       friendly_name_lower   case-insensitive unique name (unique index)
                  (channels without `reserved_tasks` and `assigned_tasks`: a
                  channel's load is counted from live reservations, worker_load)
    tasks         routing               the workflow step the task is in (RoutingStep)
                  routing_waiting       False after a skip: the router moves it on
                  routing_overdue       the router asked for a move while reserved
    reservations  open_key              "<task>:<worker>" while live; a unique sparse
                                        index makes a second live offer of one task
                                        to one worker impossible
"""

from __future__ import annotations

from typing import Any

from services.queue_dispatcher.state import (
    RoutingStep,
    TaskState,
    WorkerState,
    parse_attributes,
)
from shared.models import Reservation, Task, Worker


def task_document(task: TaskState) -> dict[str, Any]:
    doc = task.model.to_document()
    doc["routing"] = None if task.step is None else task.step.to_document()
    doc["routing_waiting"] = task.waiting
    doc["routing_overdue"] = task.overdue
    return doc


def task_from_document(doc: dict[str, Any]) -> TaskState:
    model = Task.from_document(doc)
    return TaskState(
        model=model,
        attributes=parse_attributes(model.attributes),
        step=RoutingStep.from_document(doc.get("routing")),
        waiting=bool(doc.get("routing_waiting", False)),
        overdue=bool(doc.get("routing_overdue", False)),
    )


def worker_document(worker: WorkerState) -> dict[str, Any]:
    doc = worker.model.to_document()
    doc["friendly_name_lower"] = worker.model.friendly_name.lower()
    for channel in doc.get("channels") or ():
        channel.pop("reserved_tasks", None)
        channel.pop("assigned_tasks", None)
    return doc


def worker_from_document(doc: dict[str, Any]) -> WorkerState:
    return WorkerState.of(Worker.from_document(doc))


def reservation_document(reservation: Reservation) -> dict[str, Any]:
    doc = reservation.to_document()
    if reservation.reservation_status.is_live:
        doc["open_key"] = f"{reservation.task_sid}:{reservation.worker_sid}"
    return doc


def reservation_from_document(doc: dict[str, Any]) -> Reservation:
    return Reservation.from_document(doc)
