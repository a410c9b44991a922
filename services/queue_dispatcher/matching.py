"""In-memory matching indexes of one workspace (lifecycle.md §5-§6).

Per TaskQueue the index keeps:

- `members`: workers whose attributes satisfy `target_workers`, computed when a
  worker's attributes or the queue's expression change, never per decision;
- `ready[channel]`: members that could take a task on that channel right now
  (available activity, channel available, free capacity), longest idle first;
- `waiting[channel]`: pending tasks of the queue on that channel, in queue order
  (FIFO: priority desc, then virtual_start_time asc; LIFO: newest first);
- `activity_counts`: members per activity, for `skip_if` counters.

So a decision walks only workers that can take the task; workers that cannot
(busy, unavailable, not members) are never visited. Sorted lists keep every
insert and removal at O(log n).

Idle key (longest idle first): time of the worker's last reservation on that
channel, else `date_status_changed`, tie broken by SID. In a single-tasking
workspace a worker is ready on every channel while it holds no task, and its
idle key is its last reservation on any channel.

NOTE: the idle key is per channel whatever the task channel's
`channel_optimized_routing` says (the recommended key of lifecycle.md §6).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sortedcontainers import SortedList

from shared.expressions import (
    CompiledExpression,
    ExpressionError,
    ExpressionKind,
    compile_expression,
)
from shared.models import QueueOrder, TaskQueue

if TYPE_CHECKING:
    from services.queue_dispatcher.state import TaskState, WorkerState, WorkspaceState

logger = logging.getLogger(__name__)

_NOBODY = compile_expression("", ExpressionKind.WORKER)


def queue_expression(queue: TaskQueue) -> CompiledExpression:
    """The queue's TargetWorkers; an expression that does not compile matches nobody."""
    try:
        return compile_expression(queue.target_workers, ExpressionKind.WORKER)
    except ExpressionError:
        logger.warning(
            "queue expression does not compile", extra={"task_queue_sid": queue.sid}
        )
        return _NOBODY


def idle_keys(state: WorkspaceState, worker: WorkerState) -> dict[str, tuple[int, str]]:
    """Channels the worker could take a task on now, each with its idle key."""
    model = worker.model
    if not model.available:
        return {}
    since = _ms(model.date_status_changed)
    if not state.multi_task:
        if any(ch.used_capacity for ch in model.channels):
            return {}
        last = [
            _ms(ch.last_reserved_at) for ch in model.channels if ch.last_reserved_at
        ]
        key = (max(last) if last else since, model.sid)
        return {ch.task_channel_sid: key for ch in model.channels}
    return {
        ch.task_channel_sid: (
            _ms(ch.last_reserved_at) if ch.last_reserved_at else since,
            model.sid,
        )
        for ch in model.channels
        if ch.available and ch.used_capacity < ch.configured_capacity
    }


def task_order_key(order: QueueOrder, task: TaskState) -> tuple[Any, ...]:
    """Sort key of a waiting task inside a queue: smaller is served first."""
    model = task.model
    start = _ms(model.virtual_start_time or model.date_created)
    if order is QueueOrder.LIFO:
        return (-start, model.sid)
    return (-model.priority, start, model.sid)


class _QueueIndex:
    def __init__(self, queue: TaskQueue) -> None:
        self.queue = queue
        self.target = queue_expression(queue)
        self.members: set[str] = set()
        self.activity_counts: Counter[str] = Counter()
        self.ready: dict[str, SortedList] = {}
        self.waiting: dict[str, SortedList] = {}

    def sorted_list(self, table: dict[str, SortedList], channel_sid: str) -> SortedList:
        found = table.get(channel_sid)
        if found is None:
            found = table[channel_sid] = SortedList()
        return found


class MatchingIndex:
    """Queue membership, ready workers and waiting tasks of one workspace."""

    def __init__(self, state: WorkspaceState) -> None:
        self._state = state
        self._queues: dict[str, _QueueIndex] = {}
        self._memberships: dict[str, set[str]] = {}
        self._ready: dict[str, dict[str, tuple[int, str]]] = {}
        self._activity: dict[str, str] = {}
        self._entries: dict[str, tuple[str, str, tuple[Any, ...]]] = {}
        self._direct: dict[str, SortedList] = {}

    # -- reading ------------------------------------------------------------------
    def queue(self, queue_sid: str) -> TaskQueue | None:
        index = self._queues.get(queue_sid)
        return None if index is None else index.queue

    def is_member(self, queue_sid: str, worker_sid: str) -> bool:
        index = self._queues.get(queue_sid)
        return index is not None and worker_sid in index.members

    def queues_of(self, worker_sid: str) -> set[str]:
        return self._memberships.get(worker_sid, set())

    def members(self, queue_sid: str) -> set[str]:
        index = self._queues.get(queue_sid)
        return set() if index is None else set(index.members)

    def ready_channels(self, worker_sid: str) -> dict[str, tuple[int, str]]:
        return self._ready.get(worker_sid, {})

    # NOTE: the iterators below walk the live sorted lists lazily, so a caller
    # must finish (or drop) one before changing the index.
    def ready_workers(self, queue_sid: str, channel_sid: str) -> Iterator[str]:
        """Member workers ready on the channel, longest idle first."""
        index = self._queues.get(queue_sid)
        ready = None if index is None else index.ready.get(channel_sid)
        for _, worker_sid in ready or ():
            yield worker_sid

    def waiting_tasks(self, queue_sid: str, channel_sid: str) -> Iterator[str]:
        """Pending tasks of the queue on the channel, in queue order."""
        index = self._queues.get(queue_sid)
        waiting = None if index is None else index.waiting.get(channel_sid)
        for key in waiting or ():
            yield key[-1]

    def waiting_in_queue(self, queue_sid: str) -> list[str]:
        """Every waiting task of the queue, in queue order across channels."""
        index = self._queues.get(queue_sid)
        if index is None:
            return []
        keys = sorted(key for waiting in index.waiting.values() for key in waiting)
        return [key[-1] for key in keys]

    def direct_tasks(self, worker_sid: str) -> Iterator[str]:
        """Tasks routed straight to this worker and waiting for its capacity."""
        for key in self._direct.get(worker_sid, ()):
            yield key[-1]

    def skip_if_counters(self, queue_sid: str) -> dict[str, int]:
        """`workers.available`, `workers.unavailable` and `workers.WA…` of the queue."""
        index = self._queues.get(queue_sid)
        counts: Counter[str] = Counter() if index is None else index.activity_counts
        activities = self._state.config.activities
        available = sum(
            n
            for sid, n in counts.items()
            if sid in activities and activities[sid].available
        )
        total = sum(counts.values())
        return {
            **dict(counts),
            "available": available,
            "unavailable": total - available,
        }

    # -- queues -------------------------------------------------------------------
    def sync_queues(self) -> set[str]:
        """Follow the configuration's queues; returns queues whose membership or order changed."""
        changed: set[str] = set()
        queues = self._state.config.queues
        for sid in set(self._queues) - set(queues):
            self._drop_queue(sid)
        for sid, queue in queues.items():
            old = self._queues.get(sid)
            if old is not None and (old.queue.target_workers, old.queue.task_order) == (
                queue.target_workers,
                queue.task_order,
            ):
                old.queue = queue
                continue
            self._build_queue(queue)
            changed.add(sid)
        return changed

    def _drop_queue(self, queue_sid: str) -> None:
        index = self._queues.pop(queue_sid)
        for worker_sid in index.members:
            self._memberships.get(worker_sid, set()).discard(queue_sid)
        for task_sid, (container, _, _) in list(self._entries.items()):
            if container == queue_sid:
                del self._entries[task_sid]

    def _build_queue(self, queue: TaskQueue) -> None:
        if queue.sid in self._queues:
            self._drop_queue(queue.sid)
        index = self._queues[queue.sid] = _QueueIndex(queue)
        for worker in self._state.workers.values():
            if index.target.evaluate(worker.attributes):
                self._join(index, worker.sid)
        for task in self._state.tasks.values():
            if task.step is not None and task.step.queue_sid == queue.sid:
                self.refresh_task(task)

    def _join(self, index: _QueueIndex, worker_sid: str) -> None:
        index.members.add(worker_sid)
        self._memberships.setdefault(worker_sid, set()).add(index.queue.sid)
        if worker_sid in self._activity:
            index.activity_counts[self._activity[worker_sid]] += 1
        for channel_sid, key in self._ready.get(worker_sid, {}).items():
            index.sorted_list(index.ready, channel_sid).add(key)

    def _leave(self, index: _QueueIndex, worker_sid: str) -> None:
        index.members.discard(worker_sid)
        self._memberships.get(worker_sid, set()).discard(index.queue.sid)
        activity = self._activity.get(worker_sid)
        if activity is not None:
            index.activity_counts[activity] -= 1
            if index.activity_counts[activity] <= 0:
                del index.activity_counts[activity]
        for channel_sid, key in self._ready.get(worker_sid, {}).items():
            index.ready[channel_sid].discard(key)

    # -- workers ------------------------------------------------------------------
    def update_membership(self, worker: WorkerState) -> set[str]:
        """Re-evaluate every queue's TargetWorkers for the worker; returns queues joined."""
        joined: set[str] = set()
        current = self._memberships.get(worker.sid, set())
        for sid, index in self._queues.items():
            member = index.target.evaluate(worker.attributes)
            if member and sid not in current:
                self._join(index, worker.sid)
                joined.add(sid)
            elif not member and sid in current:
                self._leave(index, worker.sid)
        return joined

    def refresh_worker(self, worker: WorkerState) -> None:
        """Follow a change of the worker's activity, capacity or idle time."""
        sid = worker.sid
        queues = [
            self._queues[q] for q in self._memberships.get(sid, ()) if q in self._queues
        ]
        old_activity = self._activity.get(sid)
        new_activity = worker.model.activity_sid
        if old_activity != new_activity:
            for index in queues:
                if old_activity is not None:
                    index.activity_counts[old_activity] -= 1
                    if index.activity_counts[old_activity] <= 0:
                        del index.activity_counts[old_activity]
                index.activity_counts[new_activity] += 1
            self._activity[sid] = new_activity
        old = self._ready.get(sid, {})
        new = idle_keys(self._state, worker)
        if old == new:
            return
        for index in queues:
            for channel_sid, key in old.items():
                if new.get(channel_sid) != key:
                    index.ready[channel_sid].discard(key)
            for channel_sid, key in new.items():
                if old.get(channel_sid) != key:
                    index.sorted_list(index.ready, channel_sid).add(key)
        self._ready[sid] = new

    def remove_worker(self, worker_sid: str) -> None:
        for queue_sid in list(self._memberships.get(worker_sid, ())):
            index = self._queues.get(queue_sid)
            if index is not None:
                self._leave(index, worker_sid)
        self._memberships.pop(worker_sid, None)
        self._ready.pop(worker_sid, None)
        self._activity.pop(worker_sid, None)

    # -- tasks --------------------------------------------------------------------
    def refresh_task(self, task: TaskState) -> None:
        """Put the task in, move it within, or take it out of its waiting list."""
        place = self._place(task)
        old = self._entries.get(task.sid)
        if old == place:
            return
        if old is not None:
            self._discard_entry(old)
            del self._entries[task.sid]
        if place is not None:
            self._container(place[0], place[1]).add(place[2])
            self._entries[task.sid] = place

    def remove_task(self, task_sid: str) -> None:
        old = self._entries.pop(task_sid, None)
        if old is not None:
            self._discard_entry(old)

    def _place(self, task: TaskState) -> tuple[str, str, tuple[Any, ...]] | None:
        if not task.is_waiting or task.step is None:
            return None
        if task.step.target_worker_sid is not None:
            key = task_order_key(QueueOrder.FIFO, task)
            return ("WK:" + task.step.target_worker_sid, task.channel_sid, key)
        index = self._queues.get(task.step.queue_sid or "")
        if index is None:
            return None
        return (
            index.queue.sid,
            task.channel_sid,
            task_order_key(index.queue.task_order, task),
        )

    def _container(self, container: str, channel_sid: str) -> SortedList:
        if container.startswith("WK:"):
            return self._direct.setdefault(container[3:], SortedList())
        index = self._queues[container]
        return index.sorted_list(index.waiting, channel_sid)

    def _discard_entry(self, entry: tuple[str, str, tuple[Any, ...]]) -> None:
        container, channel_sid, key = entry
        if container.startswith("WK:"):
            self._direct.get(container[3:], SortedList()).discard(key)
            return
        index = self._queues.get(container)
        if index is not None and channel_sid in index.waiting:
            index.waiting[channel_sid].discard(key)


def _ms(moment: Any) -> int:
    return int(moment.timestamp() * 1000)
