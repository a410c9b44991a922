"""Task and reservation status transitions (lifecycle.md §1-§2), as tables.

Two tables per resource: every transition the dispatcher may make, and the
subset a client may ask for through the REST API. A refused change raises
`InvalidTransitionError` with TaskRouter's wording, e.g.

    Cannot cancel task WT… in workspace WS… for account AC… because it is not
    pending or reserved.
"""

from __future__ import annotations

from shared.errors import InvalidTransitionError
from shared.models import Reservation, ReservationStatus, Task, TaskStatus

T = TaskStatus
R = ReservationStatus

TASK_TRANSITIONS: frozenset[tuple[TaskStatus, TaskStatus]] = frozenset(
    {
        (T.PENDING, T.RESERVED),
        (T.RESERVED, T.PENDING),
        (T.RESERVED, T.ASSIGNED),
        (T.PENDING, T.CANCELED),
        (T.RESERVED, T.CANCELED),
        (T.ASSIGNED, T.WRAPPING),
        (T.ASSIGNED, T.COMPLETED),
        (T.WRAPPING, T.COMPLETED),
    }
)

# Target status → statuses a client may move a task from (POST /Tasks/{WT}).
CLIENT_TASK_TARGETS: dict[TaskStatus, frozenset[TaskStatus]] = {
    T.CANCELED: frozenset({T.PENDING, T.RESERVED}),
    T.WRAPPING: frozenset({T.ASSIGNED}),
    T.COMPLETED: frozenset({T.ASSIGNED, T.WRAPPING}),
}

RESERVATION_TRANSITIONS: frozenset[tuple[ReservationStatus, ReservationStatus]] = (
    frozenset(
        {
            (R.PENDING, R.ACCEPTED),
            (R.PENDING, R.REJECTED),
            (R.PENDING, R.TIMEOUT),
            (R.PENDING, R.CANCELED),
            (R.PENDING, R.RESCINDED),
            (R.ACCEPTED, R.WRAPPING),
            (R.ACCEPTED, R.COMPLETED),
            (R.WRAPPING, R.COMPLETED),
        }
    )
)

# Target status → statuses a client may move a reservation from.
CLIENT_RESERVATION_TARGETS: dict[ReservationStatus, frozenset[ReservationStatus]] = {
    R.ACCEPTED: frozenset({R.PENDING}),
    R.REJECTED: frozenset({R.PENDING}),
    R.WRAPPING: frozenset({R.ACCEPTED}),
    R.COMPLETED: frozenset({R.ACCEPTED, R.WRAPPING}),
}

_TASK_VERBS = {T.CANCELED: "cancel", T.WRAPPING: "wrap up", T.COMPLETED: "complete"}
_TASK_FROM_TEXT = {
    T.CANCELED: "pending or reserved",
    T.WRAPPING: "assigned",
    T.COMPLETED: "assigned or wrapping",
}
_RESERVATION_VERBS = {
    R.ACCEPTED: "accept",
    R.REJECTED: "reject",
    R.WRAPPING: "wrap up",
    R.COMPLETED: "complete",
    R.CANCELED: "cancel",
}
_RESERVATION_FROM_TEXT = {
    R.ACCEPTED: "pending",
    R.REJECTED: "pending",
    R.CANCELED: "pending",
    R.WRAPPING: "accepted",
    R.COMPLETED: "accepted or wrapping",
}


def parse_task_status(value: str) -> TaskStatus:
    try:
        return TaskStatus(value)
    except ValueError:
        raise InvalidTransitionError(
            f"AssignmentStatus {value!r} is not one of "
            "pending, reserved, assigned, wrapping, completed, canceled",
            param="AssignmentStatus",
        ) from None


def parse_reservation_status(value: str) -> ReservationStatus:
    try:
        return ReservationStatus(value)
    except ValueError:
        raise InvalidTransitionError(
            f"ReservationStatus {value!r} is not a reservation status",
            param="ReservationStatus",
        ) from None


def can_move_task(current: TaskStatus, target: TaskStatus) -> bool:
    return (current, target) in TASK_TRANSITIONS


def can_move_reservation(current: ReservationStatus, target: ReservationStatus) -> bool:
    return (current, target) in RESERVATION_TRANSITIONS


def check_client_task_transition(task: Task, target: TaskStatus) -> None:
    """Raise unless a client may set `target` on `task` now."""
    where = f"in workspace {task.workspace_sid} for account {task.account_sid}"
    allowed_from = CLIENT_TASK_TARGETS.get(target)
    if allowed_from is None:
        raise InvalidTransitionError(
            f"Cannot set task {task.sid} {where} to {str(target)!r}: "
            "only canceled, wrapping and completed can be set",
            param="AssignmentStatus",
        )
    if task.assignment_status not in allowed_from:
        raise InvalidTransitionError(
            f"Cannot {_TASK_VERBS[target]} task {task.sid} {where} "
            f"because it is not {_TASK_FROM_TEXT[target]}.",
            param="AssignmentStatus",
        )


def check_client_reservation_transition(
    reservation: Reservation, target: ReservationStatus
) -> None:
    """Raise unless a client may set `target` on `reservation` now."""
    allowed_from = CLIENT_RESERVATION_TARGETS.get(target)
    if allowed_from is None:
        raise InvalidTransitionError(
            f"Cannot set reservation {reservation.sid} to {str(target)!r}: only "
            "accepted, rejected, wrapping and completed can be set",
            param="ReservationStatus",
        )
    _check_reservation_from(reservation, target, allowed_from)


def check_system_reservation_transition(
    reservation: Reservation, target: ReservationStatus
) -> None:
    """Raise unless the dispatcher itself may move `reservation` to `target`."""
    allowed_from = frozenset(
        current for current, to in RESERVATION_TRANSITIONS if to == target
    )
    _check_reservation_from(reservation, target, allowed_from)


def _check_reservation_from(
    reservation: Reservation, target: ReservationStatus, allowed_from: frozenset
) -> None:
    if reservation.reservation_status in allowed_from:
        return
    verb = _RESERVATION_VERBS.get(target, f"set to {str(target)!r}")
    needed = _RESERVATION_FROM_TEXT.get(target, "pending")
    raise InvalidTransitionError(
        f"Cannot {verb} reservation {reservation.sid} for task {reservation.task_sid} "
        f"because it is not {needed} (it is {str(reservation.reservation_status)!r}).",
        param="ReservationStatus",
    )
