"""Task and reservation transition tables (lifecycle.md §1-§2)."""

from __future__ import annotations

import itertools

import pytest

from services.queue_dispatcher.state_machine import (
    can_move_reservation,
    can_move_task,
    check_client_reservation_transition,
    check_client_task_transition,
    check_system_reservation_transition,
    parse_reservation_status,
    parse_task_status,
)
from shared.errors import InvalidTransitionError
from shared.models import Reservation, ReservationStatus, Task, TaskStatus

T = TaskStatus
R = ReservationStatus
AC = "AC" + "a" * 32
WS = "WS" + "b" * 32
WT = "WT" + "c" * 32

TASK_ALLOWED = {
    (T.PENDING, T.RESERVED),
    (T.RESERVED, T.PENDING),
    (T.RESERVED, T.ASSIGNED),
    (T.PENDING, T.CANCELED),
    (T.RESERVED, T.CANCELED),
    (T.ASSIGNED, T.WRAPPING),
    (T.ASSIGNED, T.COMPLETED),
    (T.WRAPPING, T.COMPLETED),
}
RESERVATION_ALLOWED = {
    (R.PENDING, R.ACCEPTED),
    (R.PENDING, R.REJECTED),
    (R.PENDING, R.TIMEOUT),
    (R.PENDING, R.CANCELED),
    (R.PENDING, R.RESCINDED),
    (R.ACCEPTED, R.WRAPPING),
    (R.ACCEPTED, R.COMPLETED),
    (R.WRAPPING, R.COMPLETED),
}


def _task(status: TaskStatus) -> Task:
    return Task(sid=WT, account_sid=AC, workspace_sid=WS, assignment_status=status)


def _reservation(status: ReservationStatus) -> Reservation:
    return Reservation(
        sid="WR" + "d" * 32,
        account_sid=AC,
        workspace_sid=WS,
        task_sid=WT,
        worker_sid="WK" + "e" * 32,
        worker_name="alice",
        reservation_status=status,
    )


@pytest.mark.parametrize(
    ("current", "target"),
    list(itertools.product(T, T)),
    ids=[f"{a}->{b}" for a, b in itertools.product(T, T)],
)
def test_task_transition_table_matches_lifecycle(current, target):
    assert can_move_task(current, target) is ((current, target) in TASK_ALLOWED)


@pytest.mark.parametrize(
    ("current", "target"),
    list(itertools.product(R, R)),
    ids=[f"{a}->{b}" for a, b in itertools.product(R, R)],
)
def test_reservation_transition_table_matches_lifecycle(current, target):
    assert can_move_reservation(current, target) is (
        (current, target) in RESERVATION_ALLOWED
    )


CLIENT_TASK_CASES = [
    ("cancel-pending", T.PENDING, T.CANCELED, True),
    ("cancel-reserved", T.RESERVED, T.CANCELED, True),
    ("cancel-assigned", T.ASSIGNED, T.CANCELED, False),
    ("cancel-canceled", T.CANCELED, T.CANCELED, False),
    ("wrap-assigned", T.ASSIGNED, T.WRAPPING, True),
    ("wrap-pending", T.PENDING, T.WRAPPING, False),
    ("wrap-wrapping", T.WRAPPING, T.WRAPPING, False),
    ("complete-assigned", T.ASSIGNED, T.COMPLETED, True),
    ("complete-wrapping", T.WRAPPING, T.COMPLETED, True),
    ("complete-pending", T.PENDING, T.COMPLETED, False),
    ("complete-completed", T.COMPLETED, T.COMPLETED, False),
    ("set-pending", T.RESERVED, T.PENDING, False),
    ("set-reserved", T.PENDING, T.RESERVED, False),
    ("set-assigned", T.RESERVED, T.ASSIGNED, False),
]


@pytest.mark.parametrize(
    ("current", "target", "allowed"),
    [case[1:] for case in CLIENT_TASK_CASES],
    ids=[case[0] for case in CLIENT_TASK_CASES],
)
def test_client_task_transition(current, target, allowed):
    task = _task(current)
    if allowed:
        check_client_task_transition(task, target)
    else:
        with pytest.raises(InvalidTransitionError):
            check_client_task_transition(task, target)


def test_cancel_of_assigned_task_uses_twilio_wording():
    with pytest.raises(InvalidTransitionError) as caught:
        check_client_task_transition(_task(T.ASSIGNED), T.CANCELED)
    assert caught.value.message == (
        f"Cannot cancel task {WT} in workspace {WS} for account {AC} "
        "because it is not pending or reserved."
    )


CLIENT_RESERVATION_CASES = [
    ("accept-pending", R.PENDING, R.ACCEPTED, True),
    ("reject-pending", R.PENDING, R.REJECTED, True),
    ("accept-accepted", R.ACCEPTED, R.ACCEPTED, False),
    ("reject-accepted", R.ACCEPTED, R.REJECTED, False),
    ("accept-timeout", R.TIMEOUT, R.ACCEPTED, False),
    ("accept-rescinded", R.RESCINDED, R.ACCEPTED, False),
    ("wrap-accepted", R.ACCEPTED, R.WRAPPING, True),
    ("wrap-pending", R.PENDING, R.WRAPPING, False),
    ("complete-accepted", R.ACCEPTED, R.COMPLETED, True),
    ("complete-wrapping", R.WRAPPING, R.COMPLETED, True),
    ("complete-pending", R.PENDING, R.COMPLETED, False),
    ("set-timeout", R.PENDING, R.TIMEOUT, False),
    ("set-canceled", R.PENDING, R.CANCELED, False),
    ("set-rescinded", R.PENDING, R.RESCINDED, False),
]


@pytest.mark.parametrize(
    ("current", "target", "allowed"),
    [case[1:] for case in CLIENT_RESERVATION_CASES],
    ids=[case[0] for case in CLIENT_RESERVATION_CASES],
)
def test_client_reservation_transition(current, target, allowed):
    reservation = _reservation(current)
    if allowed:
        check_client_reservation_transition(reservation, target)
    else:
        with pytest.raises(InvalidTransitionError):
            check_client_reservation_transition(reservation, target)


def test_system_may_time_out_only_pending_reservations():
    check_system_reservation_transition(_reservation(R.PENDING), R.TIMEOUT)
    with pytest.raises(InvalidTransitionError) as caught:
        check_system_reservation_transition(_reservation(R.ACCEPTED), R.TIMEOUT)
    assert "because it is not pending" in caught.value.message


def test_unknown_statuses_are_refused():
    with pytest.raises(InvalidTransitionError):
        parse_task_status("done")
    with pytest.raises(InvalidTransitionError):
        parse_reservation_status("done")
    assert parse_task_status("wrapping") is T.WRAPPING
