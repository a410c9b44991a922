"""Store access of the dispatcher: indexes, loading state at start, read-through.

Nothing here runs inside a routing decision: state is loaded once per
workspace (at start, or when the workspace is first used), and single
documents are read only for objects that left memory (old terminal tasks and
reservations that a client still updates).
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from services.queue_dispatcher import documents, worker_load
from services.queue_dispatcher.state import TaskState, WorkspaceState
from shared.config_view import WorkspaceConfig
from shared.models import Reservation, ReservationStatus, TaskStatus
from shared.storage import collections as c
from shared.storage.mongo import translate_errors

LIVE_TASK = [
    str(s)
    for s in (
        TaskStatus.PENDING,
        TaskStatus.RESERVED,
        TaskStatus.ASSIGNED,
        TaskStatus.WRAPPING,
    )
]
LIVE_RESERVATION = [str(s) for s in ReservationStatus if s.is_live]


def _by_workspace(*fields: str) -> list[tuple[str, int]]:
    return [("workspace_sid", ASCENDING), *((f, ASCENDING) for f in fields)]


INDEXES: dict[str, list[IndexModel]] = {
    c.WORKERS: [
        IndexModel(_by_workspace("date_created")),
        IndexModel(_by_workspace("activity_sid", "date_created")),
        IndexModel(_by_workspace("friendly_name_lower"), unique=True),
    ],
    c.TASKS: [
        IndexModel(_by_workspace("date_created")),
        IndexModel(_by_workspace("assignment_status", "date_created")),
        IndexModel(_by_workspace("task_queue_sid", "date_created")),
        IndexModel(_by_workspace("workflow_sid", "date_created")),
        IndexModel([("assignment_status", ASCENDING)]),
    ],
    c.RESERVATIONS: [
        IndexModel(_by_workspace("date_created")),
        IndexModel([("task_sid", ASCENDING), ("date_created", ASCENDING)]),
        IndexModel([("worker_sid", ASCENDING), ("date_created", ASCENDING)]),
        IndexModel([("reservation_status", ASCENDING)]),
        # One live offer of a task to a worker: `open_key` exists only while live.
        IndexModel([("open_key", ASCENDING)], unique=True, sparse=True),
    ],
}


async def ensure_indexes(db: AsyncDatabase[Any]) -> None:
    """Create the indexes of the gateway's list filters and of loading at start."""
    for name, indexes in INDEXES.items():
        await translate_errors(lambda n=name, i=indexes: db[n].create_indexes(i))


async def load_states(
    db: AsyncDatabase[Any],
    configs: dict[str, WorkspaceConfig],
    only_these: bool = False,
) -> dict[str, WorkspaceState]:
    """Every workspace's live workers, tasks and reservations, with rebuilt indexes.

    With `only_these`, the store is asked for the workspaces of `configs` only
    (one partition's share) instead of reading everything and keeping those.
    """
    states = {sid: WorkspaceState(config) for sid, config in configs.items()}
    where = {"workspace_sid": {"$in": sorted(configs)}} if only_these else {}
    await _fill(db, states, where)
    for state in states.values():
        rebuild_index(state)
    return states


async def load_state(db: AsyncDatabase[Any], config: WorkspaceConfig) -> WorkspaceState:
    """One workspace's live state, for a workspace first seen after start."""
    state = WorkspaceState(config)
    await _fill(db, {state.sid: state}, {"workspace_sid": state.sid})
    rebuild_index(state)
    return state


async def workspace_sids(db: AsyncDatabase[Any]) -> list[str]:
    """The SID of every workspace in the store."""
    cursor = db[c.WORKSPACES].find({}, {"_id": 1})
    return [doc["_id"] async for doc in cursor]


def rebuild_index(state: WorkspaceState) -> None:
    for worker in state.workers.values():
        state.index.refresh_worker(worker)
    state.index.sync_queues()
    for task in state.tasks.values():
        state.index.refresh_task(task)


async def find_task(
    db: AsyncDatabase[Any], workspace_sid: str, sid: str
) -> TaskState | None:
    doc = await translate_errors(
        lambda: db[c.TASKS].find_one({"_id": sid, "workspace_sid": workspace_sid})
    )
    return None if doc is None else documents.task_from_document(doc)


async def find_reservation(
    db: AsyncDatabase[Any], workspace_sid: str, sid: str
) -> Reservation | None:
    doc = await translate_errors(
        lambda: db[c.RESERVATIONS].find_one(
            {"_id": sid, "workspace_sid": workspace_sid}
        )
    )
    return None if doc is None else documents.reservation_from_document(doc)


async def _fill(
    db: AsyncDatabase[Any], states: dict[str, WorkspaceState], where: dict[str, Any]
) -> None:
    async for doc in db[c.WORKERS].find(where):
        state = states.get(doc.get("workspace_sid"))
        if state is not None:
            worker = documents.worker_from_document(doc)
            worker_load.clear_load(worker)  # documents of earlier versions had it
            state.workers[worker.sid] = worker
            state.names[worker.model.friendly_name.lower()] = worker.sid
    async for doc in db[c.TASKS].find(
        {**where, "assignment_status": {"$in": LIVE_TASK}}
    ):
        state = states.get(doc.get("workspace_sid"))
        if state is not None:
            task = documents.task_from_document(doc)
            state.tasks[task.sid] = task
    query = {**where, "reservation_status": {"$in": LIVE_RESERVATION}}
    async for doc in db[c.RESERVATIONS].find(query):
        state = states.get(doc.get("workspace_sid"))
        if state is not None:
            _link(state, documents.reservation_from_document(doc))
    await _recover_idle(db, states)


async def _recover_idle(db: AsyncDatabase[Any], states: dict[str, WorkspaceState]) -> None:
    """Each worker's last offer time per channel: checkpoint, then reservations since."""
    async for doc in db[c.WORKER_IDLE].find({"_id": {"$in": sorted(states)}}):
        worker_load.apply_checkpoint(states[doc["_id"]], doc)
    fields = {"worker_sid": 1, "task_channel_sid": 1, "date_created": 1}
    for state in states.values():
        since = worker_load.recent_since(state)
        if since is None:
            continue
        recent = db[c.RESERVATIONS].find(
            {"workspace_sid": state.sid, "date_created": {"$gte": since}}, fields
        )
        worker_load.apply_recent(state, [doc async for doc in recent])


def _link(state: WorkspaceState, reservation: Reservation) -> bool:
    """Attach a live reservation to its task and worker; False when its task is gone."""
    task = state.tasks.get(reservation.task_sid)
    if task is None:
        return False
    state.reservations[reservation.sid] = reservation
    if reservation.reservation_status is ReservationStatus.PENDING:
        task.pending[reservation.sid] = reservation.worker_sid
    else:
        task.accepted = reservation.sid
    worker = state.workers.get(reservation.worker_sid)
    if worker is not None:
        worker.reservations.add(reservation.sid)
        worker_load.count_reservation(worker, reservation)
    return True
