"""Task, reservation and worker lifecycles end to end (lifecycle.md), with the
official `twilio` client against the whole system.

Each scenario runs in its own workspace with its own queue and workflow, checks
the statuses through the REST API and the events of lifecycle.md through the
Events API (polled, since the events service stores them asynchronously).

Workers are made available one after the other, so "longest idle first" offers
a task to the first one made available (its `date_status_changed` is oldest).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException

from tests.contract import validate_response
from tests.e2e.conftest import RunningSystem, eventually

pytestmark = pytest.mark.e2e


@dataclass
class Floor:
    """One workspace set up for a scenario: its context, activities, queue, workflow."""

    client: Any
    sid: str
    ws: Any
    activities: dict[str, str]
    queue_sid: str
    workflow_sid: str

    def worker(self, name: str, activity: str = "Available", **attributes: Any) -> Any:
        return self.ws.workers.create(
            friendly_name=name,
            attributes=json.dumps(attributes or {"skills": ["support"]}),
            activity_sid=self.activities[activity],
        )

    def task(self, **fields: Any) -> Any:
        return self.ws.tasks.create(
            attributes=json.dumps({"type": "support"}),
            workflow_sid=self.workflow_sid,
            **fields,
        )

    def reservations(self, task_sid: str, status: str | None = None) -> list[Any]:
        found = self.ws.tasks(task_sid).reservations.list()
        return [r for r in found if status is None or r.reservation_status == status]

    def wait_reservations(self, task_sid: str, count: int, status: str = "pending"):
        """The task's reservations in `status`, once there are `count` of them."""

        def enough() -> list[Any]:
            found = self.reservations(task_sid, status)
            assert len(found) == count, f"{len(found)} {status} reservations"
            return found

        return eventually(enough)

    def task_status(self, task_sid: str) -> str:
        return self.ws.tasks(task_sid).fetch().assignment_status

    def activity_of(self, worker_sid: str) -> str:
        return self.ws.workers(worker_sid).fetch().activity_name

    def wait_events(self, expected: list[str], **filters: str) -> Counter:
        """Event types logged for `filters` (e.g. task_sid=…), once they include
        every type of `expected` at least as often as it is listed there."""
        wanted = Counter(expected)

        def logged() -> Counter:
            types = Counter(e.event_type for e in self.ws.events.list(**filters))
            missing = wanted - types
            assert not missing, f"missing events {dict(missing)}; logged {dict(types)}"
            return types

        return eventually(logged)


def _floor(
    system: RunningSystem,
    name: str,
    *,
    reservation_timeout: int = 120,
    max_reserved_workers: int = 1,
    reservation_activity: str | None = None,
    assignment_activity: str | None = None,
    multitasking: bool = True,
) -> Floor:
    """A workspace (multitasking unless told otherwise, as TaskRouter's default)
    with one queue of every worker skilled in support and a workflow to it."""
    client = system.client()
    workspace = client.taskrouter.v1.workspaces.create(
        friendly_name=name, template="NONE", multi_task_enabled=multitasking
    )
    ws = client.taskrouter.v1.workspaces(workspace.sid)
    for extra in filter(None, (reservation_activity, assignment_activity)):
        ws.activities.create(friendly_name=extra, available=False)
    activities = {a.friendly_name: a.sid for a in ws.activities.list()}
    queue_fields: dict[str, Any] = {"max_reserved_workers": max_reserved_workers}
    if reservation_activity:
        queue_fields["reservation_activity_sid"] = activities[reservation_activity]
    if assignment_activity:
        queue_fields["assignment_activity_sid"] = activities[assignment_activity]
    queue = ws.task_queues.create(
        friendly_name="Support", target_workers="skills HAS 'support'", **queue_fields
    )
    configuration = {
        "task_routing": {"filters": [], "default_filter": {"queue": queue.sid}}
    }
    workflow = ws.workflows.create(
        friendly_name="Support flow",
        configuration=json.dumps(configuration),
        task_reservation_timeout=reservation_timeout,
    )
    return Floor(client, workspace.sid, ws, activities, queue.sid, workflow.sid)


def _refused(call) -> TwilioRestException:
    """The 400 that `call` answers with, in Twilio's error shape."""
    with pytest.raises(TwilioRestException) as caught:
        call()
    error = caught.value
    assert error.status == 400, error
    assert error.code == 20001, error
    assert error.msg, "an error body without a message"
    return error


# -- accept, wrap up, complete ---------------------------------------------------
def test_accept_wrap_and_complete_through_the_task(system: RunningSystem):
    floor = _floor(system, "Lifecycle via task")
    alice = floor.worker("Alice")
    task = floor.task()

    (offer,) = floor.wait_reservations(task.sid, 1)
    assert offer.worker_sid == alice.sid
    assert floor.task_status(task.sid) == "reserved"

    accepted = (
        floor.ws.tasks(task.sid)
        .reservations(offer.sid)
        .update(reservation_status="accepted")
    )
    assert accepted.reservation_status == "accepted"
    assert floor.task_status(task.sid) == "assigned"

    wrapping = floor.ws.tasks(task.sid).update(assignment_status="wrapping")
    assert wrapping.assignment_status == "wrapping"
    assert (
        floor.ws.tasks(task.sid).reservations(offer.sid).fetch().reservation_status
        == "wrapping"
    )

    done = floor.ws.tasks(task.sid).update(
        assignment_status="completed", reason="resolved"
    )
    assert done.assignment_status == "completed" and done.reason == "resolved"
    assert (
        floor.ws.tasks(task.sid).reservations(offer.sid).fetch().reservation_status
        == "completed"
    )
    # Completing a task never changes the worker's activity.
    assert floor.activity_of(alice.sid) == "Available"

    floor.wait_events(
        [
            "task.created",
            "task-queue.entered",
            "reservation.created",
            "reservation.accepted",
            "task.wrapup",
            "reservation.wrapup",
            "task.completed",
            "reservation.completed",
        ],
        task_sid=task.sid,
    )


def test_wrap_and_complete_through_the_reservation(system: RunningSystem):
    floor = _floor(system, "Lifecycle via reservation")
    alice = floor.worker("Alice")
    task = floor.task()
    (offer,) = floor.wait_reservations(task.sid, 1)
    # The same reservation through the worker's path.
    reservation = floor.ws.workers(alice.sid).reservations(offer.sid)

    assert (
        reservation.update(reservation_status="accepted").reservation_status
        == "accepted"
    )
    assert (
        reservation.update(reservation_status="wrapping").reservation_status
        == "wrapping"
    )
    assert floor.task_status(task.sid) == "wrapping"

    assert (
        reservation.update(reservation_status="completed").reservation_status
        == "completed"
    )
    assert floor.task_status(task.sid) == "completed"

    floor.wait_events(
        [
            "reservation.accepted",
            "reservation.wrapup",
            "task.wrapup",
            "reservation.completed",
            "task.completed",
        ],
        task_sid=task.sid,
    )


# -- reject ------------------------------------------------------------------------
def test_reject_into_an_activity_moves_the_worker_and_offers_the_task_to_another(
    system: RunningSystem,
):
    floor = _floor(system, "Reject with activity")
    alice = floor.worker("Alice")
    bob = floor.worker("Bob")
    task = floor.task()
    (offer,) = floor.wait_reservations(task.sid, 1)
    assert offer.worker_sid == alice.sid

    rejected = (
        floor.ws.tasks(task.sid)
        .reservations(offer.sid)
        .update(
            reservation_status="rejected",
            worker_activity_sid=floor.activities["Unavailable"],
        )
    )
    assert rejected.reservation_status == "rejected"
    assert floor.activity_of(alice.sid) == "Unavailable"

    (second,) = floor.wait_reservations(task.sid, 1)
    assert second.worker_sid == bob.sid
    assert floor.task_status(task.sid) == "reserved"
    floor.wait_events(
        ["reservation.created", "reservation.rejected", "reservation.created"],
        task_sid=task.sid,
    )
    floor.wait_events(["worker.activity.update"], worker_sid=alice.sid)


def test_reject_without_activity_returns_the_worker_to_its_previous_activity(
    system: RunningSystem,
):
    floor = _floor(
        system,
        "Reject to previous",
        reservation_activity="Reserved",
        multitasking=False,
    )
    alice = floor.worker("Alice")
    bob = floor.worker("Bob")
    task = floor.task()
    (offer,) = floor.wait_reservations(task.sid, 1)
    assert offer.worker_sid == alice.sid
    # Single-tasking: the queue's reservation activity while the offer is open.
    assert floor.activity_of(alice.sid) == "Reserved"

    floor.ws.tasks(task.sid).reservations(offer.sid).update(
        reservation_status="rejected"
    )

    assert floor.activity_of(alice.sid) == "Available"
    (second,) = floor.wait_reservations(task.sid, 1)
    assert second.worker_sid == bob.sid
    assert floor.activity_of(bob.sid) == "Reserved"
    floor.wait_events(
        ["reservation.rejected", "reservation.created", "reservation.created"],
        task_sid=task.sid,
    )


# -- reservation timeout ----------------------------------------------------------
def test_reservation_timeout_moves_the_worker_offline_and_offers_the_task_again(
    system: RunningSystem,
):
    floor = _floor(system, "Reservation timeout", reservation_timeout=2)
    alice = floor.worker("Alice")
    bob = floor.worker("Bob")
    task = floor.task()
    (offer,) = floor.wait_reservations(task.sid, 1)
    assert offer.worker_sid == alice.sid

    eventually(lambda: floor.reservations(task.sid, "timeout"), timeout=15)
    assert floor.activity_of(alice.sid) == "Offline"
    # Bob's offer may itself have timed out by now: look at who was offered.
    offered = eventually(
        lambda: [r for r in floor.reservations(task.sid) if r.worker_sid == bob.sid]
    )
    assert len(offered) == 1
    assert all(
        r.worker_sid in {alice.sid, bob.sid} for r in floor.reservations(task.sid)
    )
    floor.wait_events(
        ["reservation.created", "reservation.timeout", "reservation.created"],
        task_sid=task.sid,
    )


def test_reservation_timeout_of_the_only_worker_returns_the_task_to_pending(
    system: RunningSystem,
):
    floor = _floor(system, "Timeout alone", reservation_timeout=1, multitasking=False)
    alice = floor.worker("Alice")
    task = floor.task()
    (offer,) = floor.wait_reservations(task.sid, 1)

    eventually(lambda: floor.reservations(task.sid, "timeout"), timeout=15)
    assert floor.task_status(task.sid) == "pending"
    assert floor.activity_of(alice.sid) == "Offline"
    assert floor.reservations(task.sid, "pending") == []
    floor.wait_events(["reservation.timeout"], task_sid=task.sid)
    floor.wait_events(["worker.activity.update"], worker_sid=alice.sid)
    # Real-time statistics follow the task back to pending (from the timeout event).
    def back_to_pending() -> bool:
        counts = floor.ws.real_time_statistics().fetch().tasks_by_status
        return counts.get("pending") == 1 and counts.get("reserved") == 0

    eventually(back_to_pending, timeout=15, what="(real-time statistics: task pending)")

    # Back in an available activity, the worker is offered the task again.
    floor.ws.workers(alice.sid).update(activity_sid=floor.activities["Available"])
    second = eventually(
        lambda: [r for r in floor.reservations(task.sid) if r.sid != offer.sid]
    )
    assert second[0].worker_sid == alice.sid


# -- multi-reservation --------------------------------------------------------------
def test_first_acceptance_wins_and_rescinds_the_other_reservations(
    system: RunningSystem,
):
    floor = _floor(system, "Multi-reservation", max_reserved_workers=3)
    workers = [floor.worker(name) for name in ("Alice", "Bob", "Carol")]
    task = floor.task()

    offers = floor.wait_reservations(task.sid, 3)
    assert {r.worker_sid for r in offers} == {w.sid for w in workers}
    winner = next(r for r in offers if r.worker_sid == workers[1].sid)

    floor.ws.tasks(task.sid).reservations(winner.sid).update(
        reservation_status="accepted"
    )

    assert floor.task_status(task.sid) == "assigned"
    statuses = {r.sid: r.reservation_status for r in floor.reservations(task.sid)}
    assert statuses.pop(winner.sid) == "accepted"
    assert list(statuses.values()) == ["rescinded", "rescinded"]
    loser = next(iter(statuses))
    _refused(
        lambda: (
            floor.ws.tasks(task.sid)
            .reservations(loser)
            .update(reservation_status="accepted")
        )
    )
    floor.wait_events(
        ["reservation.created"] * 3
        + ["reservation.accepted"]
        + ["reservation.rescinded"] * 2,
        task_sid=task.sid,
    )


# -- multitasking ---------------------------------------------------------------------
def test_multitasking_worker_takes_tasks_up_to_each_channel_capacity(
    system: RunningSystem,
):
    floor = _floor(system, "Multitasking", multitasking=True)
    alice = floor.worker("Alice", activity="Offline")
    channels = floor.ws.workers(alice.sid).worker_channels
    channels("voice").update(capacity=1)
    channels("chat").update(capacity=2)
    floor.ws.workers(alice.sid).update(activity_sid=floor.activities["Available"])

    first_chat = floor.task(task_channel="chat")
    second_chat = floor.task(task_channel="chat")
    voice = floor.task(task_channel="voice")
    for task in (first_chat, second_chat, voice):
        (offer,) = floor.wait_reservations(task.sid, 1)
        assert offer.worker_sid == alice.sid

    third_chat = floor.task(task_channel="chat")
    # Entering the queue and the matching pass are one decision of the dispatcher:
    # once the event is logged, the pass found no capacity.
    floor.wait_events(["task-queue.entered"], task_sid=third_chat.sid)
    assert floor.task_status(third_chat.sid) == "pending"
    assert floor.reservations(third_chat.sid) == []
    chat_channel = channels("chat").fetch()
    assert chat_channel.available_capacity_percentage == 0

    (first_offer,) = floor.reservations(first_chat.sid)
    floor.ws.tasks(first_chat.sid).reservations(first_offer.sid).update(
        reservation_status="accepted"
    )
    # An accepted task still holds its unit of capacity.
    assert floor.reservations(third_chat.sid) == []
    floor.ws.tasks(first_chat.sid).update(assignment_status="completed", reason="done")

    (late_offer,) = floor.wait_reservations(third_chat.sid, 1)
    assert late_offer.worker_sid == alice.sid
    assert floor.task_status(third_chat.sid) == "reserved"
    # Multitasking workspaces never change the worker's activity by themselves.
    assert floor.activity_of(alice.sid) == "Available"


# -- cancel ------------------------------------------------------------------------------
def test_cancel_while_reserved_cancels_the_reservation_and_frees_the_worker(
    system: RunningSystem,
):
    floor = _floor(system, "Cancel reserved")
    alice = floor.worker("Alice")
    task = floor.task()
    (offer,) = floor.wait_reservations(task.sid, 1)

    canceled = floor.ws.tasks(task.sid).update(
        assignment_status="canceled", reason="caller hung up"
    )
    assert (
        canceled.assignment_status == "canceled" and canceled.reason == "caller hung up"
    )
    assert (
        floor.ws.tasks(task.sid).reservations(offer.sid).fetch().reservation_status
        == "canceled"
    )

    # Alice's capacity is free again: the next task is offered to her.
    follow_up = floor.task()
    (next_offer,) = floor.wait_reservations(follow_up.sid, 1)
    assert next_offer.worker_sid == alice.sid
    floor.wait_events(
        ["reservation.created", "task.canceled", "reservation.canceled"],
        task_sid=task.sid,
    )


# -- the worker leaves ---------------------------------------------------------------------
def test_reject_pending_reservations_on_moving_to_an_unavailable_activity(
    system: RunningSystem,
):
    floor = _floor(system, "Reject pending")
    alice = floor.worker("Alice")
    bob = floor.worker("Bob")
    task = floor.task()
    (offer,) = floor.wait_reservations(task.sid, 1)
    assert offer.worker_sid == alice.sid

    # Only valid towards an unavailable activity.
    _refused(
        lambda: floor.ws.workers(alice.sid).update(
            activity_sid=floor.activities["Available"], reject_pending_reservations=True
        )
    )
    assert floor.reservations(task.sid, "pending")[0].sid == offer.sid

    moved = floor.ws.workers(alice.sid).update(
        activity_sid=floor.activities["Unavailable"], reject_pending_reservations=True
    )
    assert moved.activity_name == "Unavailable"
    assert (
        floor.ws.tasks(task.sid).reservations(offer.sid).fetch().reservation_status
        == "rejected"
    )
    (second,) = floor.wait_reservations(task.sid, 1)
    assert second.worker_sid == bob.sid
    floor.wait_events(
        ["reservation.rejected", "reservation.created", "reservation.created"],
        task_sid=task.sid,
    )


def test_pending_reservation_stays_when_the_worker_goes_unavailable(
    system: RunningSystem,
):
    floor = _floor(system, "Leave with offer")
    alice = floor.worker("Alice")
    floor.worker("Bob")
    task = floor.task()
    (offer,) = floor.wait_reservations(task.sid, 1)
    assert offer.worker_sid == alice.sid

    floor.ws.workers(alice.sid).update(activity_sid=floor.activities["Unavailable"])

    assert (
        floor.ws.tasks(task.sid).reservations(offer.sid).fetch().reservation_status
        == "pending"
    )
    assert floor.task_status(task.sid) == "reserved"
    assert len(floor.reservations(task.sid)) == 1
    # The offer may still be accepted (lifecycle.md §4 leaves it open; we allow it).
    floor.ws.tasks(task.sid).reservations(offer.sid).update(
        reservation_status="accepted"
    )
    assert floor.task_status(task.sid) == "assigned"


# -- task TTL ------------------------------------------------------------------------------
def test_task_ttl_cancels_a_pending_task(system: RunningSystem):
    floor = _floor(system, "Task TTL")
    task = floor.task(timeout=2)
    assert task.assignment_status == "pending"

    canceled = eventually(
        lambda: (
            (found := floor.ws.tasks(task.sid).fetch()).assignment_status == "canceled"
            and found
        ),
        timeout=15,
    )
    assert canceled.reason == "Task TTL Exceeded"
    floor.wait_events(["task.created", "task.canceled"], task_sid=task.sid)


def test_task_ttl_cancels_a_reserved_task_and_its_reservation(system: RunningSystem):
    floor = _floor(system, "Task TTL reserved")
    alice = floor.worker("Alice")
    task = floor.task(timeout=2)
    (offer,) = floor.wait_reservations(task.sid, 1)

    eventually(lambda: floor.task_status(task.sid) == "canceled", timeout=15)
    assert (
        floor.ws.tasks(task.sid).reservations(offer.sid).fetch().reservation_status
        == "canceled"
    )
    assert floor.ws.tasks(task.sid).fetch().reason == "Task TTL Exceeded"
    follow_up = floor.task()
    (next_offer,) = floor.wait_reservations(follow_up.sid, 1)
    assert next_offer.worker_sid == alice.sid
    floor.wait_events(["task.canceled", "reservation.canceled"], task_sid=task.sid)


# -- disallowed transitions -------------------------------------------------------------
def test_disallowed_transitions_answer_400_and_change_nothing(system: RunningSystem):
    floor = _floor(system, "Refusals")
    alice = floor.worker("Alice", activity="Offline")

    # Completing a task that is still pending.
    waiting = floor.task()
    floor.wait_events(["task-queue.entered"], task_sid=waiting.sid)
    _refused(
        lambda: floor.ws.tasks(waiting.sid).update(
            assignment_status="completed", reason="done"
        )
    )
    assert floor.task_status(waiting.sid) == "pending"

    floor.ws.workers(alice.sid).update(activity_sid=floor.activities["Available"])
    (offer,) = floor.wait_reservations(waiting.sid, 1)
    reservation = floor.ws.tasks(waiting.sid).reservations(offer.sid)
    reservation.update(reservation_status="accepted")
    before = floor.ws.tasks(waiting.sid).fetch()

    # Accepting twice.
    _refused(lambda: reservation.update(reservation_status="accepted"))
    # Canceling an assigned task.
    error = _refused(
        lambda: floor.ws.tasks(waiting.sid).update(
            assignment_status="canceled", reason="too late"
        )
    )
    assert "not pending or reserved" in error.msg
    # Rejecting an accepted reservation.
    _refused(lambda: reservation.update(reservation_status="rejected"))

    after = floor.ws.tasks(waiting.sid).fetch()
    assert after.assignment_status == "assigned"
    assert after.reason is None
    assert after.date_updated == before.date_updated
    assert reservation.fetch().reservation_status == "accepted"
    types = Counter(e.event_type for e in floor.ws.events.list(task_sid=waiting.sid))
    assert "task.canceled" not in types and types["reservation.accepted"] <= 1


def test_refused_reservation_and_task_updates_change_nothing(system: RunningSystem):
    floor = _floor(system, "More refusals")
    floor.worker("Alice")
    task = floor.task()
    (offer,) = floor.wait_reservations(task.sid, 1)
    reservation = floor.ws.tasks(task.sid).reservations(offer.sid)

    # A pending reservation cannot be wrapped up or completed.
    _refused(lambda: reservation.update(reservation_status="wrapping"))
    _refused(lambda: reservation.update(reservation_status="completed"))
    # A reserved task cannot be wrapped up; pending, reserved and assigned are
    # the dispatcher's to set, never a client's.
    _refused(lambda: floor.ws.tasks(task.sid).update(assignment_status="wrapping"))
    for status in ("pending", "reserved", "assigned"):
        _refused(
            lambda status=status: floor.ws.tasks(task.sid).update(
                assignment_status=status
            )
        )
    assert reservation.fetch().reservation_status == "pending"
    assert floor.task_status(task.sid) == "reserved"

    reservation.update(reservation_status="accepted")
    floor.ws.tasks(task.sid).update(assignment_status="completed", reason="done")
    # Completed is terminal: the same status again and the way back are refused.
    _refused(
        lambda: floor.ws.tasks(task.sid).update(
            assignment_status="completed", reason="again"
        )
    )
    _refused(lambda: floor.ws.tasks(task.sid).update(assignment_status="wrapping"))
    _refused(lambda: reservation.update(reservation_status="accepted"))
    finished = floor.ws.tasks(task.sid).fetch()
    assert (finished.assignment_status, finished.reason) == ("completed", "done")
    assert reservation.fetch().reservation_status == "completed"


def test_accepting_the_offer_of_a_canceled_task_is_refused(system: RunningSystem):
    floor = _floor(system, "Canceled offer")
    floor.worker("Alice")
    task = floor.task()
    (offer,) = floor.wait_reservations(task.sid, 1)
    floor.ws.tasks(task.sid).update(assignment_status="canceled", reason="gone")

    reservation = floor.ws.tasks(task.sid).reservations(offer.sid)
    _refused(lambda: reservation.update(reservation_status="accepted"))
    assert reservation.fetch().reservation_status == "canceled"
    assert floor.task_status(task.sid) == "canceled"


def test_canceling_a_task_cancels_every_pending_reservation_and_restores_activity(
    system: RunningSystem,
):
    floor = _floor(
        system,
        "Cancel multi",
        max_reserved_workers=2,
        reservation_activity="Reserved",
        multitasking=False,
    )
    workers = [floor.worker(name) for name in ("Alice", "Bob")]
    task = floor.task()
    floor.wait_reservations(task.sid, 2)
    assert {floor.activity_of(w.sid) for w in workers} == {"Reserved"}

    floor.ws.tasks(task.sid).update(assignment_status="canceled", reason="abandoned")

    assert [r.reservation_status for r in floor.reservations(task.sid)] == [
        "canceled",
        "canceled",
    ]
    # The move into the reservation activity is undone.
    assert {floor.activity_of(w.sid) for w in workers} == {"Available"}
    floor.wait_events(
        ["task.canceled", "reservation.canceled", "reservation.canceled"],
        task_sid=task.sid,
    )


def test_deleting_a_reserved_task_frees_its_worker(system: RunningSystem):
    floor = _floor(system, "Delete reserved")
    alice = floor.worker("Alice")
    task = floor.task()
    floor.wait_reservations(task.sid, 1)

    floor.ws.tasks(task.sid).delete()

    with pytest.raises(TwilioRestException) as caught:
        floor.ws.tasks(task.sid).fetch()
    assert caught.value.status == 404
    follow_up = floor.task()
    (offer,) = floor.wait_reservations(follow_up.sid, 1)
    assert offer.worker_sid == alice.sid
    floor.wait_events(["task.deleted"], task_sid=task.sid)


def test_wrapping_task_holds_the_worker_capacity_until_completed(system: RunningSystem):
    floor = _floor(system, "Wrapping capacity")
    alice = floor.worker("Alice", activity="Offline")
    floor.ws.workers(alice.sid).worker_channels("chat").update(capacity=1)
    floor.ws.workers(alice.sid).update(activity_sid=floor.activities["Available"])
    first = floor.task(task_channel="chat")
    (offer,) = floor.wait_reservations(first.sid, 1)
    floor.ws.tasks(first.sid).reservations(offer.sid).update(
        reservation_status="accepted"
    )
    floor.ws.tasks(first.sid).update(assignment_status="wrapping")

    second = floor.task(task_channel="chat")
    floor.wait_events(["task-queue.entered"], task_sid=second.sid)
    assert floor.reservations(second.sid) == []
    assert floor.task_status(second.sid) == "pending"

    floor.ws.tasks(first.sid).update(assignment_status="completed", reason="done")
    (late,) = floor.wait_reservations(second.sid, 1)
    assert late.worker_sid == alice.sid


def test_every_reservation_of_a_round_timing_out_sends_every_worker_offline(
    system: RunningSystem,
):
    floor = _floor(
        system, "Multi timeout", reservation_timeout=1, max_reserved_workers=2
    )
    workers = [floor.worker(name) for name in ("Alice", "Bob")]
    task = floor.task()
    floor.wait_reservations(task.sid, 2)

    floor.wait_reservations(task.sid, 2, status="timeout")
    assert {floor.activity_of(w.sid) for w in workers} == {"Offline"}
    assert floor.task_status(task.sid) == "pending"
    floor.wait_events(["reservation.timeout"] * 2, task_sid=task.sid)


def test_timers_leave_accepted_work_alone(system: RunningSystem):
    """Task TTL and reservation timeout end only pending work: once the later
    timers of a second task fired, the accepted task is still assigned."""
    floor = _floor(system, "Timers after accept", reservation_timeout=1)
    alice = floor.worker("Alice")
    floor.worker("Bob")
    kept = floor.task(timeout=2)
    (offer,) = floor.wait_reservations(kept.sid, 1)
    assert offer.worker_sid == alice.sid
    floor.ws.tasks(kept.sid).reservations(offer.sid).update(
        reservation_status="accepted"
    )

    witness = floor.task(timeout=3)
    eventually(lambda: floor.reservations(witness.sid, "timeout"), timeout=15)
    eventually(lambda: floor.task_status(witness.sid) == "canceled", timeout=15)

    assert floor.task_status(kept.sid) == "assigned"
    assert floor.ws.tasks(kept.sid).reservations(
        offer.sid
    ).fetch().reservation_status == ("accepted")
    assert floor.activity_of(alice.sid) == "Available"
    types = Counter(e.event_type for e in floor.ws.events.list(task_sid=kept.sid))
    assert not {"reservation.timeout", "task.canceled"} & set(types)


def test_reservation_events_name_the_task_worker_and_reservation(
    system: RunningSystem,
):
    floor = _floor(system, "Event data")
    alice = floor.worker("Alice")
    task = floor.task()
    (offer,) = floor.wait_reservations(task.sid, 1)
    floor.ws.tasks(task.sid).reservations(offer.sid).update(
        reservation_status="accepted"
    )
    floor.wait_events(
        ["reservation.created", "reservation.accepted"], task_sid=task.sid
    )

    for event in floor.ws.events.list(task_sid=task.sid):
        if not event.event_type.startswith("reservation."):
            continue
        assert event.resource_sid == offer.sid
        assert event.event_data["task_sid"] == task.sid
        assert event.event_data["reservation_sid"] == offer.sid
        assert event.event_data["worker_sid"] == alice.sid
        assert event.event_data["task_queue_sid"] == floor.queue_sid


def test_rejecting_after_going_unavailable_keeps_the_workers_own_activity(
    system: RunningSystem,
):
    """The worker's own move after the offer wins over "back to the previous
    activity": rejecting without WorkerActivitySid does not make it available."""
    floor = _floor(system, "Reject after leaving")
    alice = floor.worker("Alice")
    bob = floor.worker("Bob")
    task = floor.task()
    (offer,) = floor.wait_reservations(task.sid, 1)
    assert offer.worker_sid == alice.sid
    floor.ws.workers(alice.sid).update(activity_sid=floor.activities["Unavailable"])

    floor.ws.tasks(task.sid).reservations(offer.sid).update(
        reservation_status="rejected"
    )

    assert floor.activity_of(alice.sid) == "Unavailable"
    (second,) = floor.wait_reservations(task.sid, 1)
    assert second.worker_sid == bob.sid


# -- matching order, channels, multi-reservation rounds ----------------------------------
def test_worker_made_available_is_offered_the_best_waiting_task(system: RunningSystem):
    floor = _floor(system, "Best task")
    alice = floor.worker("Alice", activity="Offline")
    older_low = floor.task(priority=1)
    newer_high = floor.task(priority=5)
    newest_high = floor.task(priority=5)
    for task in (older_low, newer_high, newest_high):
        floor.wait_events(["task-queue.entered"], task_sid=task.sid)

    floor.ws.workers(alice.sid).update(activity_sid=floor.activities["Available"])

    # Capacity 1 on the default channel: one offer, the highest priority, oldest first.
    (offer,) = floor.wait_reservations(newer_high.sid, 1)
    assert offer.worker_sid == alice.sid
    assert floor.reservations(older_low.sid) == []
    assert floor.reservations(newest_high.sid) == []
    assert floor.task_status(older_low.sid) == "pending"


def test_unavailable_worker_channel_gets_no_offers(system: RunningSystem):
    floor = _floor(system, "Channel off")
    alice = floor.worker("Alice")
    floor.ws.workers(alice.sid).worker_channels("chat").update(available=False)

    chat = floor.task(task_channel="chat")
    floor.wait_events(["task-queue.entered"], task_sid=chat.sid)
    assert floor.reservations(chat.sid) == []
    # The same worker still takes voice, and chat once the channel is back.
    voice = floor.task(task_channel="voice")
    (voice_offer,) = floor.wait_reservations(voice.sid, 1)
    assert voice_offer.worker_sid == alice.sid

    floor.ws.workers(alice.sid).worker_channels("chat").update(available=True)
    (chat_offer,) = floor.wait_reservations(chat.sid, 1)
    assert chat_offer.worker_sid == alice.sid
    floor.wait_events(["worker.channel.availability.update"], worker_sid=alice.sid)


def test_capacity_shows_in_the_worker_channel(system: RunningSystem):
    floor = _floor(system, "Capacity numbers")
    alice = floor.worker("Alice", activity="Offline")
    channel = floor.ws.workers(alice.sid).worker_channels("chat")
    channel.update(capacity=2)
    floor.ws.workers(alice.sid).update(activity_sid=floor.activities["Available"])
    task = floor.task(task_channel="chat")
    (offer,) = floor.wait_reservations(task.sid, 1)
    pending = channel.fetch()  # a pending offer holds capacity, not an assignment
    assert (pending.assigned_tasks, pending.available_capacity_percentage) == (0, 50)
    floor.ws.tasks(task.sid).reservations(offer.sid).update(
        reservation_status="accepted"
    )

    now = channel.fetch()
    assert (now.configured_capacity, now.assigned_tasks) == (2, 1)
    assert now.available_capacity_percentage == 50
    listed = httpx.get(
        f"{system.base_url}/v1/Workspaces/{floor.sid}/Workers/{alice.sid}/Channels",
        auth=(system.account_sid, system.auth_token),
    )
    validate_response("ListWorkerChannel", 200, listed.json())
    assert {ch["task_channel_unique_name"]: ch["assigned_tasks"]
            for ch in listed.json()["channels"]}["chat"] == 1

    # The load is counted from live reservations when the dispatcher starts again.
    system.restart("queue_dispatcher")
    again = channel.fetch()
    assert (again.assigned_tasks, again.available_capacity_percentage) == (1, 50)

    floor.ws.tasks(task.sid).update(assignment_status="completed", reason="done")
    after = channel.fetch()
    assert (after.assigned_tasks, after.available_capacity_percentage) == (0, 100)
    floor.wait_events(["worker.capacity.update"], worker_sid=alice.sid)


def test_one_rejection_of_a_multi_offer_leaves_the_others_pending(
    system: RunningSystem,
):
    floor = _floor(system, "Multi reject", max_reserved_workers=2)
    alice = floor.worker("Alice")
    bob = floor.worker("Bob")
    task = floor.task()
    offers = {r.worker_sid: r for r in floor.wait_reservations(task.sid, 2)}

    floor.ws.tasks(task.sid).reservations(offers[alice.sid].sid).update(
        reservation_status="rejected",
        worker_activity_sid=floor.activities["Unavailable"],
    )

    assert floor.task_status(task.sid) == "reserved"
    (still,) = floor.reservations(task.sid, "pending")
    assert still.sid == offers[bob.sid].sid

    floor.ws.tasks(task.sid).reservations(still.sid).update(
        reservation_status="rejected",
        worker_activity_sid=floor.activities["Unavailable"],
    )
    # Every offer of the round ended without acceptance: the task waits again.
    assert floor.task_status(task.sid) == "pending"
    assert floor.reservations(task.sid, "pending") == []


def test_reject_pending_reservations_rejects_every_offer_of_a_multitasking_worker(
    system: RunningSystem,
):
    floor = _floor(system, "Reject all pending")
    alice = floor.worker("Alice", activity="Offline")
    floor.ws.workers(alice.sid).worker_channels("chat").update(capacity=2)
    floor.ws.workers(alice.sid).update(activity_sid=floor.activities["Available"])
    tasks = [floor.task(task_channel="chat") for _ in range(2)]
    offers = [floor.wait_reservations(t.sid, 1)[0] for t in tasks]

    floor.ws.workers(alice.sid).update(
        activity_sid=floor.activities["Offline"], reject_pending_reservations=True
    )

    for task, offer in zip(tasks, offers, strict=True):
        fetched = floor.ws.tasks(task.sid).reservations(offer.sid).fetch()
        assert fetched.reservation_status == "rejected"
        assert floor.task_status(task.sid) == "pending"
    assert floor.activity_of(alice.sid) == "Offline"


def test_task_ttl_event_carries_the_reason(system: RunningSystem):
    floor = _floor(system, "TTL event")
    task = floor.task(timeout=1)
    floor.wait_events(["task.canceled"], task_sid=task.sid)

    (event,) = [
        e
        for e in floor.ws.events.list(task_sid=task.sid)
        if e.event_type == "task.canceled"
    ]
    assert event.event_data["task_canceled_reason"] == "Task TTL Exceeded"
    assert event.event_data["task_assignment_status"] == "canceled"


def test_single_tasking_worker_moves_through_reservation_and_assignment_activities(
    system: RunningSystem,
):
    floor = _floor(
        system,
        "Single-tasking activities",
        reservation_activity="Reserved",
        assignment_activity="Busy",
        multitasking=False,
    )
    alice = floor.worker("Alice")
    task = floor.task()
    (offer,) = floor.wait_reservations(task.sid, 1)
    assert floor.activity_of(alice.sid) == "Reserved"
    # Single-tasking: one task at a time across every channel.
    other = floor.task(task_channel="chat")
    floor.wait_events(["task-queue.entered"], task_sid=other.sid)
    assert floor.reservations(other.sid) == []

    floor.ws.workers(alice.sid).reservations(offer.sid).update(
        reservation_status="accepted"
    )
    assert floor.activity_of(alice.sid) == "Busy"

    floor.ws.tasks(task.sid).update(assignment_status="completed", reason="done")
    # Completing never changes the activity; Busy is unavailable, so no new offer.
    assert floor.activity_of(alice.sid) == "Busy"
    assert floor.reservations(other.sid) == []
    floor.ws.workers(alice.sid).update(activity_sid=floor.activities["Available"])
    (late,) = floor.wait_reservations(other.sid, 1)
    assert late.worker_sid == alice.sid
    floor.wait_events(["worker.activity.update"] * 3, worker_sid=alice.sid)


def test_accept_and_reject_instructions_act_like_the_statuses(system: RunningSystem):
    floor = _floor(system, "Instructions")
    alice = floor.worker("Alice")
    bob = floor.worker("Bob")
    task = floor.task()
    (offer,) = floor.wait_reservations(task.sid, 1)
    assert offer.worker_sid == alice.sid

    rejected = (
        floor.ws.tasks(task.sid).reservations(offer.sid).update(instruction="reject")
    )
    assert rejected.reservation_status == "rejected"
    (second,) = floor.wait_reservations(task.sid, 1)
    assert second.worker_sid == bob.sid

    accepted = (
        floor.ws.tasks(task.sid).reservations(second.sid).update(instruction="accept")
    )
    assert accepted.reservation_status == "accepted"
    assert floor.task_status(task.sid) == "assigned"
