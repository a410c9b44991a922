"""A worker's load on its channels: kept in memory, derived again at load.

A reservation changes the load of its worker's channel (`reserved_tasks`,
`assigned_tasks`) and, when offered, the channel's `last_reserved_at`, the key
of longest-idle ordering. Writing the worker's document for each of those was
the most expensive write of a routing decision on the local store (a versioned
replace of a large document with four indexes), so the dispatcher keeps them
in memory only, and:

- the counters are not stored at all: loading a workspace counts them from its
  live reservations, which are stored (`count_reservation`);
- `last_reserved_at` is recovered from three stored sources, the latest wins:
  the worker's document (written whenever the worker itself changes), the
  workspace's idle checkpoint (one `worker_idle` document per workspace,
  `{"at": <time>, "workers": {<worker>: {<task channel>: <time>}}}`, updated
  every few seconds with the workers offered something since), and the
  reservations created since that checkpoint was taken.

The checkpoint is written as a decision of its own (`checkpoint_write`), so it
goes through the committer in order with the reservations it covers. The first
offer of a workspace without a checkpoint writes one in the same commit, so
from then on every reservation is either covered by the checkpoint or created
after its `at`. A task's deletion also deletes its reservations, so a deletion
writes the checkpoint first when it is behind.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from pymongo import UpdateOne

from services.queue_dispatcher.state import WorkerState, WorkspaceState
from services.queue_dispatcher.unit import Unit
from shared.models import Reservation
from shared.storage import collections as c
from shared.storage.committer import Write

# Reservations created this long before a checkpoint's `at` are read again at
# load: a margin for clock steps between the two.
SCAN_MARGIN = timedelta(seconds=1)


def clear_load(worker: WorkerState) -> None:
    """Zero the counters of a worker read from the store (they are counted again)."""
    for channel in worker.model.channels:
        channel.reserved_tasks = 0
        channel.assigned_tasks = 0


def count_reservation(worker: WorkerState, reservation: Reservation) -> None:
    """Add a live reservation loaded from the store to its channel's load."""
    channel = worker.channel(reservation.task_channel_sid or "")
    if channel is None:
        return
    channel.count_live(reservation.reservation_status)
    note_reserved_at(worker, channel.task_channel_sid, reservation.date_created)


def note_reserved_at(worker: WorkerState, task_channel_sid: str, at: datetime) -> None:
    """Keep the latest known reservation time of one of the worker's channels."""
    channel = worker.channel(task_channel_sid)
    if channel is not None and (
        channel.last_reserved_at is None or channel.last_reserved_at < at
    ):
        channel.last_reserved_at = at
        worker.changed()


def apply_checkpoint(state: WorkspaceState, doc: Mapping[str, Any]) -> None:
    """Merge a stored idle checkpoint into freshly loaded workers."""
    state.idle_at = doc.get("at")
    for worker_sid, channels in (doc.get("workers") or {}).items():
        worker = state.workers.get(worker_sid)
        if worker is None or not isinstance(channels, Mapping):
            continue
        for task_channel_sid, at in channels.items():
            if isinstance(at, datetime):
                note_reserved_at(worker, task_channel_sid, at)


def apply_recent(state: WorkspaceState, reservations: Iterable[Mapping[str, Any]]) -> None:
    """Merge reservations created since the checkpoint (documents with the three fields).

    Their workers go into the next checkpoint: its `at` is later than these
    reservations, so the next load would not read them again (and a deleted
    task takes its reservations with it).
    """
    for doc in reservations:
        worker = state.workers.get(doc.get("worker_sid") or "")
        at = doc.get("date_created")
        if worker is not None and isinstance(at, datetime):
            note_reserved_at(worker, doc.get("task_channel_sid") or "", at)
            state.idle_dirty.add(worker.sid)


def recent_since(state: WorkspaceState) -> datetime | None:
    """Reservations created from this time on are not in the checkpoint."""
    return None if state.idle_at is None else state.idle_at - SCAN_MARGIN


def note_offer(state: WorkspaceState, worker: WorkerState) -> None:
    """The worker was offered a task: its idle time goes into the next checkpoint."""
    state.idle_dirty.add(worker.sid)


def write_checkpoint(unit: Unit) -> None:
    """Add the checkpoint to `unit` when a worker's idle time changed since the last."""
    if checkpoint := checkpoint_write(unit.state, unit.now):
        unit.write(checkpoint)


def checkpoint_write(state: WorkspaceState, now: datetime) -> Write | None:
    """The checkpoint of every worker offered something (or deleted) since the last.

    Returns None when nothing changed. Clears the set of changed workers.
    """
    if not state.idle_dirty:
        return None
    to_set: dict[str, Any] = {"at": now, "workspace_sid": state.sid}
    to_unset: dict[str, str] = {}
    for sid in sorted(state.idle_dirty):
        worker = state.workers.get(sid)
        if worker is None:
            to_unset[f"workers.{sid}"] = ""
            continue
        for channel in worker.model.channels:
            if channel.last_reserved_at is not None:
                to_set[f"workers.{sid}.{channel.task_channel_sid}"] = channel.last_reserved_at
    state.idle_dirty.clear()
    state.idle_at = now
    update: dict[str, Any] = {"$set": to_set}
    if to_unset:
        update["$unset"] = to_unset
    return Write(c.WORKER_IDLE, UpdateOne({"_id": state.sid}, update, upsert=True))
