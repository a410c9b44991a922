"""Which task goes to which worker (lifecycle.md §5-§6, workflows.md §4-§5)."""

from __future__ import annotations

from dispatch_world import AVAILABLE, BUSY, OFFLINE, RESERVING, World, sid

from shared.models import QueueOrder, ReservationStatus, TaskStatus


def test_fifo_queue_serves_oldest_task_first(world: World):
    queue = world.add_queue(1)
    old = world.task(queue)
    new = world.task(queue)
    alice = world.worker("alice")

    assert world.offered(old) == ["alice"]
    assert new.status is TaskStatus.PENDING
    assert alice.model.channel("default").reserved_tasks == 1


def test_higher_priority_beats_age_in_fifo(world: World):
    queue = world.add_queue(1)
    old = world.task(queue, priority=1)
    urgent = world.task(queue, priority=5, seconds_later=3600)
    world.worker("alice")

    assert world.offered(urgent) == ["alice"]
    assert old.status is TaskStatus.PENDING


def test_lifo_queue_serves_newest_task_first_ignoring_priority(world: World):
    queue = world.add_queue(1, task_order=QueueOrder.LIFO)
    old = world.task(queue, priority=9)
    new = world.task(queue)
    world.worker("alice")

    assert world.offered(new) == ["alice"]
    assert old.status is TaskStatus.PENDING


def test_longest_idle_worker_is_offered_first(world: World):
    queue = world.add_queue(1)
    world.worker("alice")
    world.worker("bob")

    first = world.task(queue)
    second = world.task(queue)

    # Both became available at creation, alice a second earlier; after her
    # offer her idle clock restarts, so bob gets the next task.
    assert world.offered(first) == ["alice"]
    assert world.offered(second) == ["bob"]


def test_order_by_picks_highest_level_before_idle_time(world: World):
    queue = world.add_queue(1)
    world.worker("junior", {"level": 1})
    world.worker("senior", {"level": 5})
    world.worker("nolevel")

    task = world.task(queue, order_by="worker.level DESC")

    assert world.offered(task) == ["senior"]


def test_step_expression_filters_workers_per_task(world: World):
    queue = world.add_queue(1)
    world.worker("alice", {"languages": ["fr"]})
    world.worker("bob", {"languages": ["en", "es"]})

    task = world.task(
        queue, {"language": "es"}, expression="task.language IN worker.languages"
    )

    assert world.offered(task) == ["bob"]


def test_queue_membership_follows_target_workers(world: World):
    queue = world.add_queue(1, target="skills HAS 'billing'")
    world.worker("alice", {"skills": ["sales"]})
    task = world.task(queue)
    assert task.status is TaskStatus.PENDING

    world.worker("bob", {"skills": ["billing"]})

    assert world.offered(task) == ["bob"]


def test_worker_attribute_change_joins_queue_and_takes_waiting_task(world: World):
    from services.queue_dispatcher import worker_ops
    from shared.commands import UpdateWorker

    queue = world.add_queue(1, target="skills HAS 'billing'")
    alice = world.worker("alice", {"skills": []})
    task = world.task(queue)
    command = world.command(
        UpdateWorker, worker_sid=alice.sid, attributes='{"skills": ["billing"]}'
    )
    world.decide(lambda unit: worker_ops.update_worker(unit, alice, command))

    assert world.offered(task) == ["alice"]
    assert world.last_events() == ["worker.attributes.update", "reservation.created"]


def test_queue_expression_change_rematches_waiting_tasks(world: World):
    from services.queue_dispatcher.config_sync import apply_configuration

    queue = world.add_queue(1, target="1==2")
    world.worker("alice")
    task = world.task(queue)
    assert task.status is TaskStatus.PENDING

    config = world.state.config
    config.queues[queue] = config.queues[queue].model_copy(
        update={"target_workers": "1==1"}
    )
    world.decide(lambda unit: apply_configuration(unit, config))

    assert world.offered(task) == ["alice"]


def test_capacity_per_channel_in_multitasking(world: World):
    queue = world.add_queue(1)
    alice = world.worker("alice")
    world.set_channel(alice, "chat", capacity=2)

    chats = [world.task(queue, channel="chat") for _ in range(3)]
    voice = world.task(queue, channel="voice")

    assert [t.status for t in chats] == [
        TaskStatus.RESERVED,
        TaskStatus.RESERVED,
        TaskStatus.PENDING,
    ]
    assert voice.status is TaskStatus.RESERVED
    assert alice.model.channel("chat").reserved_tasks == 2


def test_accepted_and_wrapping_tasks_hold_capacity_until_completed(world: World):
    queue = world.add_queue(1)
    world.worker("alice")
    first = world.task(queue)
    second = world.task(queue)
    world.accept(first)
    world.update_task(first, assignment_status="wrapping")
    assert second.status is TaskStatus.PENDING

    world.update_task(first, assignment_status="completed", reason="done")

    assert first.status is TaskStatus.COMPLETED
    assert world.offered(second) == ["alice"]


def test_single_tasking_worker_takes_one_task_across_channels(single_world: World):
    world = single_world
    queue = world.add_queue(1)
    world.worker("alice")

    chat = world.task(queue, channel="chat")
    voice = world.task(queue, channel="voice")

    assert chat.status is TaskStatus.RESERVED
    assert voice.status is TaskStatus.PENDING


def test_unavailable_channel_gets_no_offers(world: World):
    queue = world.add_queue(1)
    alice = world.worker("alice")
    world.set_channel(alice, "chat", available=False)
    task = world.task(queue, channel="chat")
    assert task.status is TaskStatus.PENDING

    world.set_channel(alice, "chat", available=True)

    assert world.offered(task) == ["alice"]
    assert "worker.channel.availability.update" in world.events()


def test_capacity_zero_blocks_offers(world: World):
    queue = world.add_queue(1)
    alice = world.worker("alice")
    world.set_channel(alice, "default", capacity=0)

    task = world.task(queue)

    assert task.status is TaskStatus.PENDING


def test_max_reserved_workers_offers_several_and_first_accept_wins(world: World):
    queue = world.add_queue(1, max_reserved_workers=2)
    alice = world.worker("alice")
    world.worker("bob")
    world.worker("carol")

    task = world.task(queue)
    assert world.offered(task) == ["alice", "bob"]
    assert task.model.reservation_rounds == 1

    won = world.accept(task, alice)

    assert task.status is TaskStatus.ASSIGNED
    assert won.reservation_status is ReservationStatus.ACCEPTED
    assert world.last_events() == ["reservation.accepted", "reservation.rescinded"]
    bob = next(
        w for w in world.state.workers.values() if w.model.friendly_name == "bob"
    )
    assert bob.model.channel("default").reserved_tasks == 0


def test_one_worker_gets_one_open_offer_per_task(world: World):
    queue = world.add_queue(1, max_reserved_workers=3)
    alice = world.worker("alice")
    world.set_channel(alice, "default", capacity=5)

    task = world.task(queue)

    assert world.offered(task) == ["alice"]


def test_known_worker_sid_selects_exactly_that_worker(world: World):
    queue = world.add_queue(1)
    world.worker("alice")
    bob = world.worker("bob")

    task = world.task(queue, {"agent": bob.sid}, known_worker_sid="task.agent")
    missing = world.task(queue, {"agent": None}, known_worker_sid="task.agent")

    assert world.offered(task) == ["bob"]
    assert missing.status is TaskStatus.PENDING
    created = [
        e
        for u in world.units
        for e in u.events
        if e.event_type == "reservation.created"
    ]
    assert created[0].event_data["known_worker_sid"] == bob.sid


def test_known_worker_friendly_name_waits_for_that_worker(world: World):
    queue = world.add_queue(1)
    world.worker("alice")
    task = world.task(queue, {"agent": "bob"}, known_worker_friendly_name="task.agent")
    assert task.status is TaskStatus.PENDING

    world.worker("bob")

    assert world.offered(task) == ["bob"]


def test_skip_if_counts_workers_of_the_queue(world: World):
    queue = world.add_queue(1, target="team == 'a'")
    world.worker("alice", {"team": "a"}, available=False)
    world.worker("bob", {"team": "b"})

    outcome = world.route(world.task(None), queue, skip_if="workers.available == 0")
    kept = world.route(world.task(None), queue, skip_if=f"workers.{OFFLINE} == 0")

    assert outcome == "skipped"
    assert kept == "waiting"
    assert world.state.index.skip_if_counters(queue) == {
        OFFLINE: 1,
        "available": 0,
        "unavailable": 1,
    }


def test_skipped_task_does_not_wait_in_the_queue(world: World):
    queue = world.add_queue(1)
    task = world.task(None)
    assert world.route(task, queue, skip_if="workers.available == 0") == "skipped"

    world.worker("alice")

    assert task.status is TaskStatus.PENDING
    assert not task.pending


def test_direct_route_ignores_capacity_and_activity_by_default(world: World):
    alice = world.worker("alice", available=False)
    task = world.task(None, target_worker_sid=alice.sid)

    assert world.offered(task) == ["alice"]
    assert task.model.task_queue_sid is None


def test_direct_route_without_ignore_capacity_waits_for_the_worker(world: World):
    queue = world.add_queue(1)
    alice = world.worker("alice", available=False)
    world.worker("bob")
    task = world.task(None, target_worker_sid=alice.sid, ignore_capacity=False)
    other = world.task(queue, seconds_later=5)
    assert task.status is TaskStatus.PENDING
    assert world.offered(other) == ["bob"]

    world.set_activity(alice, AVAILABLE)

    assert world.offered(task) == ["alice"]


def test_worker_serves_prioritized_queue_kind_first(world: World):
    fifo = world.add_queue(1)
    lifo = world.add_queue(2, task_order=QueueOrder.LIFO)
    in_lifo = world.task(lifo, priority=10)
    in_fifo = world.task(fifo, seconds_later=10)

    world.worker("alice")

    assert world.offered(in_fifo) == ["alice"]
    assert in_lifo.status is TaskStatus.PENDING


def test_task_queue_events_on_entering_and_moving(world: World):
    first = world.add_queue(1, target="1==2")
    second = world.add_queue(2, target="1==2")
    task = world.task(first)
    world.route(task, second)

    assert world.events() == [
        "task.created",
        "task-queue.entered",
        "task-queue.moved",
        "task-queue.entered",
    ]
    moved = world.units[-1].events[0]
    assert moved.event_data["task_queue_sid"] == first
    assert task.model.task_queue_sid == second


def test_repeated_route_is_harmless_and_older_step_is_stale(world: World):
    queue = world.add_queue(1, target="1==2")
    task = world.task(queue)
    count = len(world.events())

    assert world.route(task, queue, seq=1) == "waiting"
    assert world.route(task, queue, seq=0 + 1) == "waiting"
    assert len(world.events()) == count
    world.route(task, queue, seq=2)
    assert world.route(task, queue, seq=1) == "stale"


def test_single_tasking_moves_worker_to_queue_activities(single_world: World):
    world = single_world
    queue = world.add_queue(
        1, reservation_activity_sid=RESERVING, assignment_activity_sid=BUSY
    )
    alice = world.worker("alice")
    task = world.task(queue)
    assert alice.model.activity_sid == RESERVING
    assert world.last_events() == [
        "task-queue.entered",
        "reservation.created",
        "worker.activity.update",
    ]

    world.accept(task)

    assert alice.model.activity_sid == BUSY
    assert not alice.model.available


def test_unknown_known_worker_path_keeps_waiting(world: World):
    queue = world.add_queue(1)
    world.worker("alice")
    task = world.task(queue, {"agent": sid("WK", 99)}, known_worker_sid="task.agent")
    assert task.status is TaskStatus.PENDING
