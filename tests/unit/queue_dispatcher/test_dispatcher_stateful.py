"""Random worker/task/reservation operations on the pure core, checking invariants.

Invariants after every decision:
- a task has at most MaxReservedWorkers pending offers and at most one accepted;
- a task is reserved exactly when it has pending offers, assigned/wrapping
  exactly when it has an accepted one;
- a worker never holds more than its channel capacity (one task in a
  single-tasking workspace), and the channel counters equal its reservations;
- statuses move only along the transition tables; terminal ones never move;
- no waiting task is left with an eligible worker (the indexes are current).
"""

from __future__ import annotations

from collections import Counter

import hypothesis.strategies as st
from dispatch_world import AVAILABLE, BUSY, OFFLINE, World, make_config
from hypothesis import HealthCheck, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from services.queue_dispatcher import offers, reservation_ops, task_ops, worker_ops
from services.queue_dispatcher.matching import idle_keys
from services.queue_dispatcher.selection import eligible_workers
from services.queue_dispatcher.state_machine import (
    RESERVATION_TRANSITIONS,
    TASK_TRANSITIONS,
)
from shared.models import ReservationStatus, TaskStatus

R = ReservationStatus
T = TaskStatus
CHANNELS = ["default", "voice", "chat"]


def _closure(pairs):
    reach = {}
    for a, b in pairs:
        reach.setdefault(a, set()).add(b)
    changed = True
    while changed:
        changed = False
        for a in list(reach):
            for b in list(reach[a]):
                extra = reach.get(b, set()) - reach[a]
                if extra:
                    reach[a] |= extra
                    changed = True
    return reach


TASK_REACH = _closure(TASK_TRANSITIONS)
RESERVATION_REACH = _closure(RESERVATION_TRANSITIONS)


class DispatcherMachine(RuleBasedStateMachine):
    @initialize(multi_task=st.booleans(), max_reserved=st.integers(1, 3))
    def setup(self, multi_task, max_reserved):
        # Random SIDs break ties (idle time, queue order); sequential ones keep
        # every run of one example the same, as hypothesis requires.
        counter = iter(range(1, 1_000_000))
        self.saved_new_sid = offers.new_sid
        for module in (offers, task_ops, worker_ops):
            module.new_sid = lambda prefix: f"{prefix}{next(counter):032x}"
        self.world = World(make_config(multi_task=multi_task))
        self.queues = [
            self.world.add_queue(1, max_reserved_workers=max_reserved),
            self.world.add_queue(2, target="team == 'b'", max_reserved_workers=1),
        ]
        self.task_status = {}
        self.reservation_status = {}
        self.names = 0
        self.used = {}

    # -- rules ---------------------------------------------------------------------------
    @rule(team=st.sampled_from(["a", "b"]), available=st.booleans())
    def create_worker(self, team, available):
        self.names += 1
        self.world.worker(f"w{self.names}", {"team": team}, available=available)

    @precondition(lambda self: self.world.state.workers)
    @rule(data=st.data(), activity=st.sampled_from([AVAILABLE, OFFLINE, BUSY]))
    def change_activity(self, data, activity):
        worker = data.draw(
            st.sampled_from(
                sorted(self.world.state.workers.values(), key=lambda w: w.sid)
            )
        )
        self.world.set_activity(worker, activity)

    @precondition(lambda self: self.world.state.workers)
    @rule(data=st.data(), channel=st.sampled_from(CHANNELS), capacity=st.integers(0, 3))
    def change_capacity(self, data, channel, capacity):
        worker = data.draw(
            st.sampled_from(
                sorted(self.world.state.workers.values(), key=lambda w: w.sid)
            )
        )
        self.world.set_channel(worker, channel, capacity=capacity)

    @rule(
        queue=st.integers(0, 1),
        channel=st.sampled_from(CHANNELS),
        priority=st.integers(0, 3),
    )
    def create_task(self, queue, channel, priority):
        self.world.task(self.queues[queue], priority=priority, channel=channel)

    @precondition(lambda self: self._pending())
    @rule(
        data=st.data(),
        action=st.sampled_from(["accepted", "rejected", "timeout", "callback"]),
    )
    def end_offer(self, data, action):
        reservation = data.draw(st.sampled_from(self._pending()))
        if action == "timeout":
            self.world.tick(121)
            self.world.decide(
                lambda unit: reservation_ops.expire_reservation(unit, reservation.sid)
            )
        elif action == "callback":
            self.world.decide(
                lambda unit: reservation_ops.fail_callback(unit, reservation)
            )
        else:
            self.world.update_reservation(reservation, reservation_status=action)

    @precondition(lambda self: self._tasks({T.ASSIGNED, T.WRAPPING}))
    @rule(data=st.data(), status=st.sampled_from(["wrapping", "completed"]))
    def finish_task(self, data, status):
        task = data.draw(st.sampled_from(self._tasks({T.ASSIGNED, T.WRAPPING})))
        if status == "wrapping" and task.status is T.WRAPPING:
            status = "completed"
        self.world.update_task(task, assignment_status=status, reason="done")

    @precondition(lambda self: self._tasks({T.PENDING, T.RESERVED}))
    @rule(data=st.data())
    def cancel_task(self, data):
        task = data.draw(st.sampled_from(self._tasks({T.PENDING, T.RESERVED})))
        self.world.update_task(
            task, assignment_status="canceled", reason="no longer needed"
        )

    # -- invariants ------------------------------------------------------------------------
    @invariant()
    def offers_are_bounded(self):
        state = self.world.state
        for task in state.tasks.values():
            queue = state.config.queues.get(task.model.task_queue_sid or "")
            limit = queue.max_reserved_workers if queue else 1
            assert len(task.pending) <= limit
            assert len(set(task.pending.values())) == len(task.pending)
            accepted = [
                r
                for r in state.reservations.values()
                if r.task_sid == task.sid
                and r.reservation_status in (R.ACCEPTED, R.WRAPPING)
            ]
            assert len(accepted) <= 1
            assert (task.status is T.RESERVED) == bool(task.pending)
            assert (task.status in (T.ASSIGNED, T.WRAPPING)) == (
                task.accepted is not None
            )

    @invariant()
    def capacity_is_respected_and_counted(self):
        state = self.world.state
        for worker in state.workers.values():
            held = Counter()
            assigned = Counter()
            for sid in worker.reservations:
                reservation = state.reservations[sid]
                target = (
                    held if reservation.reservation_status is R.PENDING else assigned
                )
                target[reservation.task_channel_sid] += 1
            total = 0
            for channel in worker.model.channels:
                assert channel.reserved_tasks == held[channel.task_channel_sid]
                assert channel.assigned_tasks == assigned[channel.task_channel_sid]
                total += channel.used_capacity
            if state.multi_task:
                for channel in worker.model.channels:
                    # Capacity may be lowered below what is held; then nothing new is added.
                    key = (worker.sid, channel.task_channel_sid)
                    before = self.used.get(key, 0)
                    assert channel.used_capacity <= max(
                        channel.configured_capacity, before
                    )
                    self.used[key] = channel.used_capacity
            else:
                assert total <= 1

    @invariant()
    def statuses_move_along_the_tables(self):
        state = self.world.state
        tasks = {**state.recent_tasks, **state.tasks}
        for sid, task in tasks.items():
            before = self.task_status.get(sid)
            if before is not None and before != task.status:
                assert task.status in TASK_REACH.get(before, set()), (
                    before,
                    task.status,
                )
            self.task_status[sid] = task.status
        reservations = {**state.recent_reservations, **state.reservations}
        for sid, reservation in reservations.items():
            before = self.reservation_status.get(sid)
            now = reservation.reservation_status
            if before is not None and before != now:
                assert now in RESERVATION_REACH.get(before, set()), (before, now)
            self.reservation_status[sid] = now

    @invariant()
    def no_waiting_task_has_an_eligible_worker(self):
        state = self.world.state
        for worker in state.workers.values():
            assert state.index.ready_channels(worker.sid) == idle_keys(state, worker)
        for task in state.tasks.values():
            if task.is_waiting:
                assert eligible_workers(state, task, self.world.now) == [], task.sid

    def teardown(self):
        if hasattr(self, "saved_new_sid"):
            for module in (offers, task_ops, worker_ops):
                module.new_sid = self.saved_new_sid

    # -- helpers -----------------------------------------------------------------------------
    def _pending(self):
        state = self.world.state
        return sorted(
            (
                r
                for r in state.reservations.values()
                if r.reservation_status is R.PENDING
            ),
            key=lambda r: r.sid,
        )

    def _tasks(self, statuses):
        return sorted(
            (t for t in self.world.state.tasks.values() if t.status in statuses),
            key=lambda t: t.sid,
        )


DispatcherMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_dispatcher_invariants = DispatcherMachine.TestCase
