"""A worker's channel load stays in memory; what is written to recover it (worker_load)."""

from __future__ import annotations

from dispatch_world import World

from services.queue_dispatcher import documents, worker_load
from services.queue_dispatcher.state import WorkspaceState
from services.queue_dispatcher.worker_ops import delete_worker
from shared.commands import DeleteWorker
from shared.storage import collections as c


def _collections(world: World) -> list[str]:
    return sorted(w.collection for w in world.units[-1].writes())


def test_offers_write_no_worker_and_one_first_checkpoint(world: World):
    queue = world.add_queue(1)
    alice = world.worker("alice")
    world.set_channel(alice, "default", capacity=3)

    first = world.task(queue)
    assert _collections(world) == [c.RESERVATIONS, c.TASKS, c.WORKER_IDLE]
    world.tick(1)
    world.task(queue)
    assert _collections(world) == [c.RESERVATIONS, c.TASKS]
    world.accept(first)
    assert _collections(world) == [c.RESERVATIONS, c.TASKS]

    channel = alice.model.channels[0]
    assert (channel.reserved_tasks, channel.assigned_tasks) == (1, 1)
    assert channel.last_reserved_at == world.now
    stored = documents.worker_document(alice)["channels"][0]
    assert "reserved_tasks" not in stored and "assigned_tasks" not in stored


def test_checkpoint_sets_the_workers_offered_something_since_the_last(world: World):
    queue = world.add_queue(1)
    world.worker("alice")
    bob = world.worker("bob")
    world.task(queue)  # to alice; the first checkpoint goes with it
    assert worker_load.checkpoint_write(world.state, world.now) is None

    world.tick(5)
    world.task(queue)  # to bob, idle longest
    bob_offered = world.now
    write = worker_load.checkpoint_write(world.state, world.now)

    assert write is not None and write.collection == c.WORKER_IDLE
    update = write.operation._doc
    channel_sid = bob.model.channels[0].task_channel_sid
    assert update["$set"]["at"] == world.now
    assert update["$set"][f"workers.{bob.sid}.{channel_sid}"] == bob_offered
    assert world.state.idle_dirty == set()
    assert worker_load.checkpoint_write(world.state, world.now) is None


def test_deleted_worker_leaves_the_checkpoint(world: World):
    gone = world.worker("gone")
    world.decide(
        lambda unit: delete_worker(unit, gone, world.command(DeleteWorker, worker_sid=gone.sid))
    )
    write = worker_load.checkpoint_write(world.state, world.now)
    assert write is not None
    assert write.operation._doc["$unset"] == {f"workers.{gone.sid}": ""}


def test_loading_counts_reservations_and_takes_the_latest_idle_time(world: World):
    queue = world.add_queue(1)
    alice = world.worker("alice")
    task = world.task(queue)
    reservation = world.reservations(task)[0]
    channel_sid = alice.model.channels[0].task_channel_sid
    offered = reservation.date_created

    # A fresh copy of the worker, as read from the store.
    state = WorkspaceState(world.state.config)
    copy = documents.worker_from_document(documents.worker_document(alice))
    copy.model.channels[0].last_reserved_at = None
    worker_load.clear_load(copy)
    state.workers[copy.sid] = copy

    worker_load.count_reservation(copy, reservation)
    older = offered.replace(year=offered.year - 1)
    worker_load.apply_checkpoint(
        state, {"at": offered, "workers": {copy.sid: {channel_sid: older}}}
    )
    channel = copy.model.channels[0]
    assert (channel.reserved_tasks, channel.assigned_tasks) == (1, 0)
    assert channel.last_reserved_at == offered  # the reservation is later than the checkpoint
    later = offered.replace(year=offered.year + 1)
    worker_load.apply_recent(
        state,
        [{"worker_sid": copy.sid, "task_channel_sid": channel_sid, "date_created": later}],
    )
    assert channel.last_reserved_at == later
    assert worker_load.recent_since(state) == offered - worker_load.SCAN_MARGIN
