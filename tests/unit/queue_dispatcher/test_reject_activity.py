"""Where a worker goes when it rejects an offer without naming an activity."""

from __future__ import annotations

from dispatch_world import AVAILABLE, BUSY, RESERVING, World

from shared.models import ReservationStatus

R = ReservationStatus


def test_reject_without_activity_undoes_the_move_into_the_reservation_activity(
    single_world: World,
):
    queue = single_world.add_queue(1, reservation_activity_sid=RESERVING)
    alice = single_world.worker("alice")
    bob = single_world.worker("bob")
    task = single_world.task(queue)
    reservation = single_world.reservations(task)[0]
    assert alice.model.activity_sid == RESERVING

    single_world.update_reservation(reservation, reservation_status="rejected")

    assert alice.model.activity_sid == AVAILABLE
    assert single_world.offered(task) == ["bob"]
    assert bob.model.activity_sid == RESERVING


def test_reject_without_activity_keeps_the_workers_own_later_move(
    single_world: World,
):
    queue = single_world.add_queue(1, reservation_activity_sid=RESERVING)
    alice = single_world.worker("alice")
    task = single_world.task(queue)
    reservation = single_world.reservations(task)[0]
    single_world.set_activity(alice, BUSY)

    single_world.update_reservation(reservation, reservation_status="rejected")

    assert reservation.reservation_status is R.REJECTED
    assert alice.model.activity_sid == BUSY
    assert "worker.activity.update" not in single_world.last_events()


def test_reject_after_going_unavailable_does_not_make_the_worker_available(
    world: World,
):
    queue = world.add_queue(1)
    alice = world.worker("alice")
    bob = world.worker("bob")
    task = world.task(queue)
    reservation = world.reservations(task)[0]
    assert reservation.worker_sid == alice.sid
    world.set_activity(alice, BUSY)

    world.update_reservation(reservation, reservation_status="rejected")

    assert alice.model.activity_sid == BUSY
    assert world.offered(task) == [bob.model.friendly_name]
