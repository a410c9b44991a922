"""Task, reservation and worker lifecycles as decisions (lifecycle.md §1-§4, §7)."""

from __future__ import annotations

import pytest
from dispatch_world import AVAILABLE, BUSY, OFFLINE, World

from services.queue_dispatcher import reservation_ops, task_ops, worker_ops
from services.queue_dispatcher.settle import MAX_ROUNDS, ROUND_CAP_REASON
from shared.commands import (
    CreateWorker,
    DeleteTask,
    DeleteWorker,
    RemoveTask,
    UpdateWorker,
)
from shared.errors import (
    ConflictError,
    DomainValidationError,
    InvalidTransitionError,
    PreconditionFailedError,
)
from shared.models import ReservationStatus, TaskStatus

R = ReservationStatus


def test_reject_returns_worker_to_previous_activity_and_rematches(world: World):
    queue = world.add_queue(1)
    alice = world.worker("alice")
    world.worker("bob", available=False)
    task = world.task(queue)
    reservation = world.reservations(task)[0]

    world.update_reservation(
        reservation, reservation_status="rejected", worker_activity_sid=OFFLINE
    )

    assert reservation.reservation_status is R.REJECTED
    assert alice.model.activity_sid == OFFLINE
    assert task.status is TaskStatus.PENDING
    assert world.last_events() == ["reservation.rejected", "worker.activity.update"]


def test_rejecting_worker_may_be_offered_again_at_once(world: World):
    queue = world.add_queue(1)
    world.worker("alice")
    task = world.task(queue)
    first = world.reservations(task)[0]

    world.update_reservation(first, reservation_status="rejected")

    assert world.offered(task) == ["alice"]
    assert task.model.reservation_rounds == 2
    assert world.last_events() == ["reservation.rejected", "reservation.created"]


def test_reservation_timeout_moves_worker_to_timeout_activity_and_offers_next(
    world: World,
):
    queue = world.add_queue(1)
    alice = world.worker("alice")
    world.worker("bob")
    task = world.task(queue)
    reservation = world.reservations(task)[0]

    world.tick(119)
    world.decide(lambda unit: reservation_ops.expire_reservation(unit, reservation.sid))
    assert reservation.reservation_status is R.PENDING
    world.tick(1)
    world.decide(lambda unit: reservation_ops.expire_reservation(unit, reservation.sid))

    assert reservation.reservation_status is R.TIMEOUT
    assert alice.model.activity_sid == OFFLINE
    assert world.offered(task) == ["bob"]
    assert world.last_events() == [
        "reservation.timeout",
        "worker.activity.update",
        "reservation.created",
    ]
    update = world.units[-1].events[1]
    assert update.event_data["worker_previous_activity_sid"] == AVAILABLE
    assert update.event_data["worker_time_in_previous_activity"] == "122"
    assert update.event_data["worker_time_in_previous_activity_ms"] == "122000"


def test_task_ttl_cancels_pending_task_and_its_offers(world: World):
    queue = world.add_queue(1)
    world.worker("alice")
    task = world.task(queue)
    world.tick(86400)

    world.decide(lambda unit: task_ops.expire_task(unit, task.sid))

    assert task.status is TaskStatus.CANCELED
    assert task.model.reason == "Task TTL Exceeded"
    assert world.last_events() == ["task.canceled", "reservation.canceled"]
    assert (
        world.units[-1].events[0].event_data["task_canceled_reason"]
        == "Task TTL Exceeded"
    )


def test_ttl_does_not_touch_assigned_tasks(world: World):
    queue = world.add_queue(1)
    world.worker("alice")
    task = world.task(queue)
    world.accept(task)
    world.tick(90000)

    world.decide(lambda unit: task_ops.expire_task(unit, task.sid))

    assert task.status is TaskStatus.ASSIGNED


def test_round_cap_cancels_the_task(world: World):
    queue = world.add_queue(1)
    world.worker("alice")
    task = world.task(queue)
    task.model.reservation_rounds = MAX_ROUNDS

    world.update_reservation(world.reservations(task)[0], reservation_status="rejected")

    assert task.status is TaskStatus.CANCELED
    assert task.model.reason == ROUND_CAP_REASON


def test_cancel_while_reserved_cancels_offers_and_frees_the_worker(world: World):
    queue = world.add_queue(1)
    world.worker("alice")
    task = world.task(queue)
    waiting = world.task(queue)

    world.update_task(task, assignment_status="canceled", reason="gone")

    assert task.status is TaskStatus.CANCELED
    assert world.offered(waiting) == ["alice"]
    assert world.last_events() == [
        "task.canceled",
        "reservation.canceled",
        "reservation.created",
    ]


def test_cancel_of_assigned_task_is_refused(world: World):
    queue = world.add_queue(1)
    world.worker("alice")
    task = world.task(queue)
    world.accept(task)

    with pytest.raises(InvalidTransitionError):
        world.update_task(task, assignment_status="canceled")


def test_completing_the_reservation_completes_the_task(world: World):
    queue = world.add_queue(1)
    world.worker("alice")
    task = world.task(queue)
    reservation = world.accept(task)

    world.update_reservation(reservation, reservation_status="wrapping")
    assert task.status is TaskStatus.WRAPPING
    assert world.last_events() == ["task.wrapup", "reservation.wrapup"]
    world.update_reservation(reservation, reservation_status="completed")

    assert task.status is TaskStatus.COMPLETED
    assert reservation.reservation_status is R.COMPLETED
    assert world.last_events() == ["task.completed", "reservation.completed"]


def test_attribute_update_then_status_in_one_request(world: World):
    queue = world.add_queue(1)
    world.worker("alice")
    task = world.task(queue)
    world.accept(task)

    world.update_task(
        task, attributes='{"done": true}', assignment_status="completed", reason="ok"
    )

    assert world.last_events() == [
        "task.updated",
        "task.completed",
        "reservation.completed",
    ]
    assert task.model.attributes == '{"done": true}'


def test_if_match_guards_task_updates(world: World):
    task = world.task(None)
    with pytest.raises(PreconditionFailedError):
        world.update_task(task, priority=3, if_match='"7"')
    world.update_task(task, priority=3, if_match=f'"{task.model.version}"')
    assert task.model.priority == 3


def test_delete_task_cancels_offers_and_forgets_it(world: World):
    queue = world.add_queue(1)
    alice = world.worker("alice")
    task = world.task(queue)
    (offer,) = world.reservations(task)
    command = world.command(DeleteTask, task_sid=task.sid)

    world.decide(lambda unit: task_ops.delete_task(unit, task, command))

    assert world.state.find_task(task.sid) is None
    # Its reservations go with it: updating one is "not found", as fetching it is.
    assert world.state.find_reservation(offer.sid) is None
    assert alice.model.channel("default").reserved_tasks == 0
    assert world.last_events() == ["reservation.canceled", "task.deleted"]


def test_reject_pending_reservations_needs_an_unavailable_activity(world: World):
    queue = world.add_queue(1)
    alice = world.worker("alice")
    task = world.task(queue)

    with pytest.raises(DomainValidationError):
        world.set_activity(alice, AVAILABLE, reject_pending_reservations=True)
    world.set_activity(alice, BUSY, reject_pending_reservations=True)

    assert task.status is TaskStatus.PENDING
    assert world.last_events() == ["worker.activity.update", "reservation.rejected"]


def test_pending_reservation_survives_a_plain_activity_change(world: World):
    queue = world.add_queue(1)
    alice = world.worker("alice")
    task = world.task(queue)

    world.set_activity(alice, OFFLINE)
    world.accept(task)

    assert task.status is TaskStatus.ASSIGNED


def test_worker_names_are_unique_ignoring_case(world: World):
    world.worker("Alice")
    command = world.command(CreateWorker, friendly_name="alice")
    with pytest.raises(ConflictError):
        world.decide(lambda unit: worker_ops.create_worker(unit, command))


def test_worker_holding_a_reservation_cannot_be_deleted(world: World):
    queue = world.add_queue(1)
    alice = world.worker("alice")
    world.task(queue)
    command = world.command(DeleteWorker, worker_sid=alice.sid)
    with pytest.raises(ConflictError):
        world.decide(lambda unit: worker_ops.delete_worker(unit, alice, command))


def test_new_worker_defaults_to_workspace_activity_with_a_channel_each(world: World):
    command = world.command(CreateWorker, friendly_name="zed")
    worker = world.decide(lambda unit: worker_ops.create_worker(unit, command))
    assert worker.model.activity_sid == OFFLINE
    assert [c.task_channel_unique_name for c in worker.model.channels] == [
        "default",
        "voice",
        "chat",
    ]
    assert all(
        c.configured_capacity == 1 and c.available for c in worker.model.channels
    )


def test_route_while_reserved_is_deferred_and_router_moves_it_after(world: World):
    first = world.add_queue(1)
    second = world.add_queue(2)
    alice = world.worker("alice")
    task = world.task(first)

    assert world.route(task, second, defer_if_reserved=True) == "deferred"
    world.update_reservation(world.reservations(task)[0], reservation_status="rejected")
    assert (
        task.status is TaskStatus.PENDING and not task.pending
    )  # waits for the router

    assert world.route(task, second, defer_if_reserved=True) == "reserved"
    assert task.model.task_queue_sid == second
    assert world.offered(task) == ["alice"]
    assert alice.model.available


def test_remove_is_deferred_while_reserved_then_cancels(world: World):
    queue = world.add_queue(1)
    world.worker("alice")
    task = world.task(queue)
    remove = world.command(
        RemoveTask, task_sid=task.sid, reason="Task canceled on Workflow timeout", seq=2
    )

    assert (
        world.decide(lambda unit: task_ops.remove_task(unit, remove))[0] == "deferred"
    )
    world.update_reservation(world.reservations(task)[0], reservation_status="rejected")
    outcome, _ = world.decide(lambda unit: task_ops.remove_task(unit, remove))

    assert outcome == "removed"
    assert task.status is TaskStatus.CANCELED
    assert task.model.reason == "Task canceled on Workflow timeout"


def test_failed_callback_cancels_offer_and_routes_again(world: World):
    queue = world.add_queue(1)
    world.worker("alice")
    world.worker("bob", available=False)
    task = world.task(queue)
    reservation = world.reservations(task)[0]

    world.decide(lambda unit: reservation_ops.fail_callback(unit, reservation))

    assert reservation.reservation_status is R.CANCELED
    assert world.offered(task) == ["alice"]


def test_rename_keeps_uniqueness_index_current(world: World):
    alice = world.worker("alice")
    command = world.command(UpdateWorker, worker_sid=alice.sid, friendly_name="Alicia")
    world.decide(lambda unit: worker_ops.update_worker(unit, alice, command))
    assert world.state.names == {"alicia": alice.sid}
    world.worker("alice")


def test_telephony_instruction_is_refused(world: World):
    queue = world.add_queue(1)
    world.worker("alice")
    task = world.task(queue)
    with pytest.raises(DomainValidationError):
        world.update_reservation(world.reservations(task)[0], instruction="conference")
    world.update_reservation(world.reservations(task)[0], instruction="accept")
    assert task.status is TaskStatus.ASSIGNED


def test_versions_rise_once_per_decision(world: World):
    queue = world.add_queue(1)
    world.worker("alice")
    task = world.task(queue)
    writes = world.units[-1].writes()

    assert task.model.version == 1  # created 0, routed and reserved in one decision
    # The worker's channel load is not written; the workspace's first offer
    # writes its idle checkpoint (worker_load).
    assert sorted(w.collection for w in writes) == ["reservations", "tasks", "worker_idle"]
    replace = next(w for w in writes if w.collection == "tasks")
    assert replace.must_match and replace.operation._filter == {
        "_id": task.sid,
        "version": 0,
    }


def test_timers_are_cancelled_when_no_longer_needed(world: World):
    queue = world.add_queue(1)
    world.worker("alice")
    task = world.task(queue)
    reservation = world.reservations(task)[0]
    assert {t.kind for t in world.units[-2].timers} == {"task"}
    assert [(t.kind, t.sid) for t in world.units[-1].timers] == [
        ("reservation", reservation.sid)
    ]

    world.accept(task)

    assert sorted(world.units[-1].cancelled_timers) == [
        ("reservation", world.state.sid, reservation.sid),
        ("task", world.state.sid, task.sid),
    ]


def _data_of(world: World, event_type: str) -> dict:
    return next(e.event_data for u in world.units for e in u.events if e.event_type == event_type)


def test_a_rejected_offer_reports_the_task_pending_and_newer(world: World):
    queue = world.add_queue(1)
    world.worker("alice")
    task = world.task(queue, channel="default")
    created = _data_of(world, "reservation.created")
    reservation = world.reservations(task)[0]
    world.update_reservation(reservation, reservation_status="rejected", worker_activity_sid=OFFLINE)
    rejected = _data_of(world, "reservation.rejected")
    assert task.status.value == "pending"
    assert rejected["task_assignment_status"] == "pending"
    assert int(rejected["task_version"]) > int(created["task_version"])
    assert rejected["task_version"] == str(task.model.version)


def test_an_assigned_task_is_removed_by_the_system_after_24_hours(world: World):
    queue = world.add_queue(1)
    alice = world.worker("alice")
    task = world.task(queue)
    world.accept(task)
    timers = [(t.kind, t.sid) for t in world.units[-1].timers]
    assert ("assigned", task.sid) in timers

    world.tick(24 * 3600 - 1)
    world.decide(lambda unit: task_ops.expire_assignment(unit, task.sid))
    assert world.state.find_task(task.sid) is not None and world.last_events() == []

    world.tick(1)
    world.decide(lambda unit: task_ops.expire_assignment(unit, task.sid))
    assert world.last_events() == ["task.system-deleted"]
    assert world.state.find_task(task.sid) is None
    assert alice.model.channel("default").assigned_tasks == 0


def test_a_wrapping_task_is_not_removed_and_wrapping_cancels_the_timer(world: World):
    queue = world.add_queue(1)
    world.worker("alice")
    task = world.task(queue)
    world.accept(task)
    world.update_task(task, assignment_status="wrapping")
    assert ("assigned", task.sid) in [(k[0], k[2]) for k in world.units[-1].cancelled_timers]
    world.tick(25 * 3600)
    world.decide(lambda unit: task_ops.expire_assignment(unit, task.sid))
    assert world.last_events() == [] and task.status is TaskStatus.WRAPPING
