"""Reservation decisions: client updates, failed assignment callbacks, timeouts."""

from __future__ import annotations

from services.queue_dispatcher import offers
from services.queue_dispatcher.preconditions import check_if_match
from services.queue_dispatcher.state_machine import (
    check_client_reservation_transition,
    parse_reservation_status,
)
from services.queue_dispatcher.unit import Unit
from services.queue_dispatcher.worker_activity import set_activity
from shared.commands import UpdateReservation
from shared.errors import DomainValidationError, NotFoundError
from shared.models import Activity, Reservation, ReservationStatus

R = ReservationStatus
_INSTRUCTION_STATUS = {"accept": R.ACCEPTED, "reject": R.REJECTED}
# NOTE: telephony instructions need a voice network; without an adapter they are
# refused (workflows.md §6 leaves the choice to us).
_TELEPHONY = frozenset({"dequeue", "call", "redirect", "conference", "supervise"})


def find_reservation(unit: Unit, command: UpdateReservation) -> Reservation | None:
    """The reservation, only when it belongs to the task or worker of the path."""
    reservation = unit.state.find_reservation(command.reservation_sid)
    if reservation is None:
        return None
    if command.task_sid is not None and command.task_sid != reservation.task_sid:
        return None
    if command.worker_sid is not None and command.worker_sid != reservation.worker_sid:
        return None
    return reservation


def update_reservation(
    unit: Unit, reservation: Reservation, command: UpdateReservation
) -> None:
    """Accept, reject, wrap up or complete; `WorkerActivitySid` moves the worker too."""
    check_if_match(
        command.if_match, reservation.version, f"reservation {reservation.sid}"
    )
    target, activity_sid = _requested(command)
    activity = _activity(unit, activity_sid) if activity_sid else None
    if target is not None:
        check_client_reservation_transition(reservation, target)

    state = unit.state
    task = state.tasks.get(reservation.task_sid)
    if target is R.ACCEPTED:
        offers.accept(unit, reservation)
    elif target is R.REJECTED:
        offers.end_pending(unit, reservation, R.REJECTED, activity_sid=activity_sid)
        return
    elif target is R.WRAPPING and task is not None:
        offers.wrap_up(unit, task)
    elif target is R.COMPLETED and task is not None:
        offers.complete(unit, task, None)
    worker = state.workers.get(reservation.worker_sid)
    if activity is not None and worker is not None:
        set_activity(unit, worker, activity)


def fail_callback(unit: Unit, reservation: Reservation) -> None:
    """Both assignment callbacks failed: cancel a pending reservation, route the task again."""
    if reservation.reservation_status is R.PENDING:
        offers.end_pending(unit, reservation, R.CANCELED)


def expire_reservation(unit: Unit, reservation_sid: str) -> None:
    """Reservation timeout: pending past `timeout_at` → timeout, worker to timeout activity."""
    reservation = unit.state.reservations.get(reservation_sid)
    if reservation is None or reservation.reservation_status is not R.PENDING:
        return
    if reservation.timeout_at is not None and reservation.timeout_at <= unit.now:
        offers.end_pending(unit, reservation, R.TIMEOUT)


def _requested(
    command: UpdateReservation,
) -> tuple[ReservationStatus | None, str | None]:
    activity_sid = command.worker_activity_sid
    if command.reservation_status is not None:
        return parse_reservation_status(command.reservation_status), activity_sid
    if command.instruction is None:
        return None, activity_sid
    name = command.instruction.strip().lower()
    if name in _TELEPHONY:
        raise DomainValidationError(
            f"Instruction {command.instruction!r} is not supported: no voice adapter is configured",
            param="Instruction",
        )
    if name not in _INSTRUCTION_STATUS:
        raise DomainValidationError(
            f"Instruction {command.instruction!r} is not a known instruction",
            param="Instruction",
        )
    params_activity = command.instruction_params.get("activity_sid")
    if isinstance(params_activity, str) and params_activity:
        activity_sid = activity_sid or params_activity
    return _INSTRUCTION_STATUS[name], activity_sid


def _activity(unit: Unit, activity_sid: str) -> Activity:
    activity = unit.state.config.activities.get(activity_sid)
    if activity is None:
        raise NotFoundError("Activity", activity_sid)
    return activity
