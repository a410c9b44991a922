"""The in-memory channel load agrees with a recount from live reservations (what a reload does)."""

from __future__ import annotations

from collections import Counter

from dispatch_world import World

from services.queue_dispatcher import documents, worker_load
from shared.models import ReservationStatus


def _recount(world: World) -> dict[tuple[str, str], tuple[int, int]]:
    """What a reload counts (repository._link → worker_load.count_reservation)."""
    reserved: Counter = Counter()
    assigned: Counter = Counter()
    for reservation in world.state.reservations.values():
        key = (reservation.worker_sid, reservation.task_channel_sid)
        if reservation.reservation_status is ReservationStatus.PENDING:
            reserved[key] += 1
        else:
            assigned[key] += 1
    return {
        (w.sid, ch.task_channel_sid): (reserved[(w.sid, ch.task_channel_sid)],
                                       assigned[(w.sid, ch.task_channel_sid)])
        for w in world.state.workers.values()
        for ch in w.model.channels
    }


def _in_memory(world: World) -> dict[tuple[str, str], tuple[int, int]]:
    return {
        (w.sid, ch.task_channel_sid): (ch.reserved_tasks, ch.assigned_tasks)
        for w in world.state.workers.values()
        for ch in w.model.channels
    }


def test_accept_after_the_task_changed_channel_moves_the_offers_load(world: World):
    queue = world.add_queue(1)
    world.worker("alice")
    task = world.task(queue, channel="default")
    assert world.offered(task) == ["alice"]
    world.update_task(task, task_channel="voice")  # allowed while reserved
    world.accept(task)
    assert _in_memory(world) == _recount(world)  # what a reload would count

    world.update_task(task, assignment_status="completed")
    assert all(load == (0, 0) for load in _in_memory(world).values()), _in_memory(world)


def test_an_idle_time_read_from_the_scan_goes_into_the_next_checkpoint(world: World):
    from datetime import timedelta

    from services.queue_dispatcher.state import WorkspaceState

    alice = world.worker("alice")
    channel_sid = alice.model.channels[0].task_channel_sid
    # A load: the checkpoint was taken at `at`; alice was offered something 5 s later.
    state = WorkspaceState(world.state.config)
    copy = documents.worker_from_document(documents.worker_document(alice))
    state.workers[copy.sid] = copy
    at = world.now
    worker_load.apply_checkpoint(state, {"at": at, "workers": {}})
    offered = at + timedelta(seconds=5)
    worker_load.apply_recent(
        state, [{"worker_sid": copy.sid, "task_channel_sid": channel_sid, "date_created": offered}]
    )
    assert copy.model.channels[0].last_reserved_at == offered

    # The next checkpoint moves `at` past that reservation, so it must carry alice.
    write = worker_load.checkpoint_write(state, at + timedelta(seconds=10))
    assert write is not None
    assert write.operation._doc["$set"][f"workers.{copy.sid}.{channel_sid}"] == offered
