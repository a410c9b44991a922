"""Worker decisions: create, update (name, attributes, activity), delete, channels."""

from __future__ import annotations

from services.queue_dispatcher import offers
from services.queue_dispatcher.preconditions import check_if_match
from services.queue_dispatcher.state import WorkerState
from services.queue_dispatcher.unit import Unit
from services.queue_dispatcher.worker_activity import set_activity
from shared.commands import (
    CreateWorker,
    DeleteWorker,
    UpdateWorker,
    UpdateWorkerChannel,
)
from shared.errors import ConflictError, DomainValidationError, NotFoundError
from shared.events import worker_channel_data, worker_data
from shared.models import (
    Activity,
    ReservationStatus,
    TaskChannel,
    Worker,
    WorkerChannel,
)
from shared.sids import SidPrefix, new_sid, worker_channel_sid


def create_worker(unit: Unit, command: CreateWorker) -> WorkerState:
    """A new worker with one channel per task channel (capacity 1, available)."""
    state, now = unit.state, unit.now
    _check_name_free(unit, command.friendly_name, None)
    activity = _activity(
        unit, command.activity_sid or state.config.workspace.default_activity_sid
    )
    sid = new_sid(SidPrefix.WORKER)
    model = Worker(
        sid=sid,
        account_sid=state.account_sid,
        workspace_sid=state.sid,
        friendly_name=command.friendly_name,
        attributes=command.attributes,
        activity_sid=activity.sid,
        activity_name=activity.friendly_name,
        available=activity.available,
        date_status_changed=now,
        channels=[new_channel(sid, ch, unit) for ch in state.config.channels.values()],
        date_created=now,
        date_updated=now,
    )
    worker = WorkerState.of(model)
    state.workers[sid] = worker
    state.names[model.friendly_name.lower()] = sid
    unit.created(worker)
    state.index.update_membership(worker)
    state.index.refresh_worker(worker)
    _emit(unit, worker, "worker.created", worker_data(model))
    if model.available:
        unit.match_worker(sid)
    return worker


def update_worker(unit: Unit, worker: WorkerState, command: UpdateWorker) -> None:
    """Name, attributes, then activity; RejectPendingReservations needs an unavailable one."""
    model = worker.model
    check_if_match(command.if_match, model.version, f"worker {worker.sid}")
    name = command.friendly_name
    if name is not None and name != model.friendly_name:
        _check_name_free(unit, name, worker.sid)
    activity = _activity(unit, command.activity_sid) if command.activity_sid else None
    if command.reject_pending_reservations and (activity is None or activity.available):
        raise DomainValidationError(
            "RejectPendingReservations is only valid when the new activity is unavailable",
            param="RejectPendingReservations",
        )

    # NOTE: a rename has no event type of its own in TaskRouter; it is stored only.
    if name is not None and name != model.friendly_name:
        unit.changed(worker)
        unit.state.names.pop(model.friendly_name.lower(), None)
        unit.state.names[name.lower()] = worker.sid
        model.friendly_name = name
    if command.attributes is not None and command.attributes != model.attributes:
        unit.changed(worker)
        worker.set_attributes(command.attributes)
        unit.state.index.update_membership(worker)
        _emit(unit, worker, "worker.attributes.update", worker_data(model))
        unit.match_worker(worker.sid)
    if activity is not None:
        set_activity(unit, worker, activity)
    if command.reject_pending_reservations and activity is not None:
        _reject_pending(unit, worker, activity)


def delete_worker(unit: Unit, worker: WorkerState, command: DeleteWorker) -> None:
    """Remove a worker that holds no reservation."""
    check_if_match(command.if_match, worker.model.version, f"worker {worker.sid}")
    if worker.reservations:
        raise ConflictError(
            f"Worker {worker.sid} cannot be deleted while it holds "
            f"{len(worker.reservations)} pending or assigned reservation(s)"
        )
    state = unit.state
    state.index.remove_worker(worker.sid)
    state.workers.pop(worker.sid, None)
    state.names.pop(worker.model.friendly_name.lower(), None)
    state.idle_dirty.add(worker.sid)  # the next idle checkpoint forgets it
    unit.deleted(worker)
    _emit(unit, worker, "worker.deleted", worker_data(worker.model))


def update_worker_channel(
    unit: Unit, worker: WorkerState, command: UpdateWorkerChannel
) -> WorkerChannel:
    """Capacity and availability of one channel, each with its own event."""
    channel = worker.model.channel(command.channel)
    if channel is None:
        raise NotFoundError("WorkerChannel", command.channel)
    if command.capacity is not None and not 0 <= command.capacity <= 50:
        raise DomainValidationError(
            f"Capacity {command.capacity!r} must be between 0 and 50", param="Capacity"
        )
    previous = channel.configured_capacity
    if command.capacity is not None and command.capacity != previous:
        unit.changed(worker)
        channel.configured_capacity = command.capacity
        channel.date_updated = unit.now
        data = worker_channel_data(worker.model, channel, previous_capacity=previous)
        _emit(unit, worker, "worker.capacity.update", data)
    if command.available is not None and command.available != channel.available:
        unit.changed(worker)
        channel.available = command.available
        channel.date_updated = unit.now
        _emit(
            unit,
            worker,
            "worker.channel.availability.update",
            worker_channel_data(worker.model, channel),
        )
    unit.state.index.refresh_worker(worker)
    unit.match_worker(worker.sid)
    return channel


def new_channel(
    worker_sid: str, task_channel: TaskChannel, unit: Unit
) -> WorkerChannel:
    return WorkerChannel(
        sid=worker_channel_sid(worker_sid, task_channel.sid),
        task_channel_sid=task_channel.sid,
        task_channel_unique_name=task_channel.unique_name,
        date_created=unit.now,
        date_updated=unit.now,
    )


# -- helpers ---------------------------------------------------------------------
def _reject_pending(unit: Unit, worker: WorkerState, activity: Activity) -> None:
    state = unit.state
    for sid in sorted(worker.reservations):
        reservation = state.reservations.get(sid)
        if (
            reservation is not None
            and reservation.reservation_status is ReservationStatus.PENDING
        ):
            offers.end_pending(
                unit, reservation, ReservationStatus.REJECTED, activity_sid=activity.sid
            )


def _check_name_free(unit: Unit, name: str, own_sid: str | None) -> None:
    holder = unit.state.names.get(name.lower())
    if holder is not None and holder != own_sid:
        raise ConflictError(f"A worker named {name!r} already exists in this workspace")


def _activity(unit: Unit, activity_sid: str | None) -> Activity:
    if activity_sid is None:
        raise DomainValidationError(
            "The workspace has no default activity; ActivitySid is required",
            param="ActivitySid",
        )
    activity = unit.state.config.activities.get(activity_sid)
    if activity is None:
        raise NotFoundError("Activity", activity_sid)
    return activity


def _emit(unit: Unit, worker: WorkerState, event_type: str, data: dict) -> None:
    unit.emit(
        event_type,
        resource_type="worker",
        resource_sid=worker.sid,
        data=data,
        description=f"Worker {worker.model.friendly_name} {event_type.split('.', 1)[1]}",
    )
