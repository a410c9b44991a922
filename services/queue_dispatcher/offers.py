"""Reservations: offering a task to a worker and every way an offer ends.

Capacity bookkeeping lives here and only here: a pending reservation holds one
unit of the worker's channel (`reserved_tasks`), an accepted or wrapping one
holds it as `assigned_tasks`, and every end gives it back and asks for a new
matching pass for the worker (`unit.match_worker`). That load is kept in
memory, not written with the worker; `worker_load` says how it survives a restart.
"""

from __future__ import annotations

from datetime import timedelta

from services.queue_dispatcher import worker_load
from services.queue_dispatcher.state import TaskState, WorkerState
from services.queue_dispatcher.unit import Unit
from services.queue_dispatcher.worker_activity import set_activity
from shared.events import reservation_data, task_data
from shared.models import Reservation, ReservationStatus, TaskQueue, TaskStatus
from shared.sids import SidPrefix, new_sid

R = ReservationStatus
# An assigned task not wrapped up or completed this long after its acceptance is
# removed by the system (`task.system-deleted`), as TaskRouter does after 24 h.
ASSIGNED_LIFETIME = timedelta(hours=24)
DEFAULT_RESERVATION_TIMEOUT = 120

_EVENT_OF = {
    R.ACCEPTED: "reservation.accepted",
    R.REJECTED: "reservation.rejected",
    R.TIMEOUT: "reservation.timeout",
    R.CANCELED: "reservation.canceled",
    R.RESCINDED: "reservation.rescinded",
    R.WRAPPING: "reservation.wrapup",
    R.COMPLETED: "reservation.completed",
}


def offer(unit: Unit, task: TaskState, worker: WorkerState) -> Reservation:
    """Create a pending reservation of `task` for `worker` (task becomes reserved)."""
    state, now = unit.state, unit.now
    step = task.step
    queue = _queue_of(unit, step.queue_sid if step else None)
    workflow_sid = (step.workflow_sid if step else None) or task.model.workflow_sid
    workflow = state.config.workflows.get(workflow_sid or "")
    timeout = (
        workflow.task_reservation_timeout if workflow else DEFAULT_RESERVATION_TIMEOUT
    )
    reservation = Reservation(
        sid=new_sid(SidPrefix.RESERVATION),
        account_sid=state.account_sid,
        workspace_sid=state.sid,
        task_sid=task.sid,
        worker_sid=worker.sid,
        worker_name=worker.model.friendly_name,
        task_channel_sid=task.model.task_channel_sid,
        task_queue_sid=queue.sid if queue else None,
        workflow_sid=workflow_sid,
        timeout_at=now + timedelta(seconds=timeout),
        worker_previous_activity_sid=worker.model.activity_sid,
        date_created=now,
        date_updated=now,
    )
    unit.created(reservation)
    state.reservations[reservation.sid] = reservation

    # The channel's load is not written with the worker: see worker_load.
    # NOTE: only direct routing with IgnoreCapacity can offer a task on a channel
    # the worker lacks; such an offer holds no channel capacity.
    worker.changed()
    channel = worker.channel(task.channel_sid)
    if channel is not None:
        channel.reserved_tasks += 1
        channel.last_reserved_at = now
        worker_load.note_offer(state, worker)
        if state.idle_at is None and (
            first := worker_load.checkpoint_write(state, now)
        ):  # the workspace's first idle checkpoint goes with its first offer
            unit.write(first)
    worker.reservations.add(reservation.sid)
    task.pending[reservation.sid] = worker.sid
    if task.status is TaskStatus.PENDING:
        unit.changed(task)
        task.model.assignment_status = TaskStatus.RESERVED
    state.index.refresh_task(task)
    state.index.refresh_worker(worker)

    # Known-agent routing marks its events with the worker it selected (workflows.md §5).
    known = step is not None and bool(
        step.known_worker_sid or step.known_worker_friendly_name
    )
    _emit(
        unit,
        reservation,
        task,
        worker,
        {"known_worker_sid": worker.sid} if known else None,
    )
    unit.schedule("reservation", reservation.sid, reservation.timeout_at)
    if not state.multi_task and queue is not None and queue.reservation_activity_sid:
        activity = state.config.activities.get(queue.reservation_activity_sid)
        if activity is not None:
            set_activity(unit, worker, activity)
    return reservation


def accept(unit: Unit, reservation: Reservation) -> None:
    """Pending → accepted: the task is assigned; every other offer is rescinded."""
    state = unit.state
    task = state.tasks[reservation.task_sid]
    worker = state.workers.get(reservation.worker_sid)
    unit.changed(reservation)
    reservation.reservation_status = R.ACCEPTED
    unit.cancel_timer("reservation", reservation.sid)
    unit.cancel_timer("task", task.sid)  # the TTL runs only while pending or reserved
    task.pending.pop(reservation.sid, None)
    task.accepted = reservation.sid
    unit.changed(task)
    task.model.assignment_status = TaskStatus.ASSIGNED
    unit.schedule("assigned", task.sid, unit.now + ASSIGNED_LIFETIME)
    task.waiting = task.overdue = False
    state.index.refresh_task(task)
    if worker is not None:
        worker.changed()  # its channel's load only: see worker_load
        # The reservation's channel, as every other end and the load count do
        # (the task's channel may have changed since the offer).
        channel = worker.channel(reservation.task_channel_sid or "")
        if channel is not None:
            channel.reserved_tasks = max(0, channel.reserved_tasks - 1)
            channel.assigned_tasks += 1
        state.index.refresh_worker(worker)
    _emit(unit, reservation, task, worker)

    for other_sid in list(task.pending):
        end_pending(unit, state.reservations[other_sid], R.RESCINDED)
    queue = _queue_of(unit, reservation.task_queue_sid)
    if (
        worker is not None
        and not state.multi_task
        and queue
        and queue.assignment_activity_sid
    ):
        activity = state.config.activities.get(queue.assignment_activity_sid)
        if activity is not None:
            set_activity(unit, worker, activity)


def end_pending(
    unit: Unit,
    reservation: Reservation,
    status: ReservationStatus,
    *,
    activity_sid: str | None = None,
) -> None:
    """End a pending reservation as rejected, timeout, canceled or rescinded.

    The worker moves to `activity_sid` when given. The task goes back to pending
    once no offer is left (unless it was canceled meanwhile) and is matched again
    in its current step.
    """
    state = unit.state
    task = state.find_task(reservation.task_sid)
    worker = state.workers.get(reservation.worker_sid)
    unit.changed(reservation)
    reservation.reservation_status = status
    unit.cancel_timer("reservation", reservation.sid)
    state.retire_reservation(reservation)
    if worker is not None:
        worker.changed()  # its channel's load only: see worker_load
        channel = worker.channel(reservation.task_channel_sid or "")
        if channel is not None:
            channel.reserved_tasks = max(0, channel.reserved_tasks - 1)
        worker.reservations.discard(reservation.sid)
        state.index.refresh_worker(worker)
        unit.match_worker(worker.sid)
    if task is not None:
        task.pending.pop(reservation.sid, None)
        # The task first (back to pending when no offer is left), so the event
        # carries its status and version after this decision: the statistics
        # service follows a task's status from these fields.
        _after_offer_ended(unit, task)
        _emit(unit, reservation, task, worker)
    if worker is not None:
        _move_worker_after_offer(unit, worker, reservation, status, activity_sid)


def wrap_up(unit: Unit, task: TaskState) -> None:
    """Assigned → wrapping for the task and its accepted reservation (task event first)."""
    unit.changed(task)
    unit.cancel_timer("assigned", task.sid)
    task.model.assignment_status = TaskStatus.WRAPPING
    _emit_task(unit, task, "task.wrapup")
    reservation = unit.state.reservations.get(task.accepted or "")
    if reservation is not None:
        unit.changed(reservation)
        reservation.reservation_status = R.WRAPPING
        _emit(unit, reservation, task, unit.state.workers.get(reservation.worker_sid))


def complete(unit: Unit, task: TaskState, reason: str | None) -> None:
    """Assigned/wrapping → completed; the accepted reservation completes with it."""
    state = unit.state
    unit.changed(task)
    unit.cancel_timer("assigned", task.sid)
    task.model.assignment_status = TaskStatus.COMPLETED
    task.model.reason = reason
    state.retire_task(task)
    state.index.remove_task(task.sid)
    _emit_task(unit, task, "task.completed")
    reservation = state.reservations.get(task.accepted or "")
    task.accepted = None
    if reservation is not None:
        unit.changed(reservation)
        reservation.reservation_status = R.COMPLETED
        worker = release_assignment(unit, reservation)
        _emit(unit, reservation, task, worker)


def release_assignment(unit: Unit, reservation: Reservation) -> WorkerState | None:
    """Give back the capacity an accepted or wrapping reservation held."""
    state = unit.state
    state.retire_reservation(reservation)
    worker = state.workers.get(reservation.worker_sid)
    if worker is None:
        return None
    worker.changed()  # its channel's load only: see worker_load
    channel = worker.channel(reservation.task_channel_sid or "")
    if channel is not None:
        channel.assigned_tasks = max(0, channel.assigned_tasks - 1)
    worker.reservations.discard(reservation.sid)
    state.index.refresh_worker(worker)
    unit.match_worker(worker.sid)
    return worker


def cancel_task(unit: Unit, task: TaskState, reason: str | None) -> None:
    """Pending/reserved → canceled; its open reservations are canceled too."""
    state = unit.state
    unit.changed(task)
    task.model.assignment_status = TaskStatus.CANCELED
    task.model.reason = reason
    task.waiting = False
    unit.cancel_timer("task", task.sid)
    state.index.remove_task(task.sid)
    state.retire_task(task)
    _emit_task(unit, task, "task.canceled")
    for reservation_sid in list(task.pending):
        end_pending(unit, state.reservations[reservation_sid], R.CANCELED)


# -- helpers ---------------------------------------------------------------------
def _after_offer_ended(unit: Unit, task: TaskState) -> None:
    if (
        task.pending
        or task.accepted is not None
        or task.status is not TaskStatus.RESERVED
    ):
        return
    unit.changed(task)
    task.model.assignment_status = TaskStatus.PENDING
    unit.state.index.refresh_task(task)
    # NOTE: an overdue task (the router asked to move it while it was reserved)
    # is not matched again here; the router sends its next step now.
    unit.match_task(task.sid)


def _move_worker_after_offer(
    unit: Unit,
    worker: WorkerState,
    reservation: Reservation,
    status: ReservationStatus,
    activity_sid: str | None,
) -> None:
    """Rejected → the given activity; timeout → the workspace's timeout activity.

    A rejected offer without an activity, and a canceled or rescinded one, go
    back to the activity the worker had before the offer, but only undoing the
    offer's own move into the queue's reservation activity (single-tasking): a
    worker that changed its activity since the offer keeps its own choice, e.g.
    Available, offered, Unavailable, rejects → stays Unavailable.
    """
    state = unit.state
    target = activity_sid
    if status is R.TIMEOUT and target is None:
        target = state.config.workspace.timeout_activity_sid
    elif (
        status in (R.REJECTED, R.CANCELED, R.RESCINDED)
        and not state.multi_task
        and target is None
    ):
        queue = _queue_of(unit, reservation.task_queue_sid)
        if (
            queue is not None
            and worker.model.activity_sid == queue.reservation_activity_sid
        ):
            target = reservation.worker_previous_activity_sid
    activity = state.config.activities.get(target or "")
    if activity is not None:
        set_activity(unit, worker, activity)


def _queue_of(unit: Unit, queue_sid: str | None) -> TaskQueue | None:
    return None if not queue_sid else unit.state.config.queues.get(queue_sid)


def _emit(
    unit: Unit,
    reservation: Reservation,
    task: TaskState,
    worker: WorkerState | None,
    extra: dict[str, str] | None = None,
) -> None:
    event_type = (
        "reservation.created"
        if reservation.reservation_status is R.PENDING
        else _EVENT_OF[reservation.reservation_status]
    )
    data = reservation_data(
        reservation, task.model, worker.model if worker else None, unit.now
    )
    data.update(extra or {})
    unit.emit(
        event_type,
        resource_type="reservation",
        resource_sid=reservation.sid,
        data=data,
        description=f"Reservation {reservation.sid} {event_type.split('.', 1)[1]}",
    )


def _emit_task(unit: Unit, task: TaskState, event_type: str) -> None:
    unit.emit(
        event_type,
        resource_type="task",
        resource_sid=task.sid,
        data=task_data(task.model, unit.now),
        description=f"Task {task.sid} {event_type.split('.', 1)[1]}",
    )
