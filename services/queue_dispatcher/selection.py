"""Pure matching decisions: which workers for a task, which task for a worker.

Eligibility of worker W for task T in step S of queue Q (lifecycle.md §6):
W is a member of Q, ready on T's channel (see `matching.idle_keys`), satisfies
S's target `expression`, is the known worker when S names one, and holds no
open reservation of T already. Direct routing (`target_worker_sid`) replaces
the queue by that one worker; with IgnoreCapacity it is eligible whatever its
activity and capacity.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from services.queue_dispatcher.matching import task_order_key
from services.queue_dispatcher.state import (
    RoutingStep,
    TaskState,
    WorkerState,
    WorkspaceState,
)
from shared.expressions import (
    ExpressionError,
    ExpressionKind,
    compile_expression,
    compile_path,
    parse_order_by,
)
from shared.models import QueueOrder

logger = logging.getLogger(__name__)


def eligible_workers(
    state: WorkspaceState, task: TaskState, now: datetime
) -> list[WorkerState]:
    """Workers to offer `task` to now, best first, at most MaxReservedWorkers."""
    step = task.step
    if step is None:
        return []
    if step.target_worker_sid is not None:
        return _direct_worker(state, task, step)
    queue = state.index.queue(step.queue_sid or "")
    if queue is None:
        return []
    limit = max(1, queue.max_reserved_workers)
    known = _known_worker(state, task, step)
    if known is not _NOT_KNOWN:
        ok = known is not None and state.index.is_member(queue.sid, known.sid)
        ready = ok and task.channel_sid in state.index.ready_channels(known.sid)
        return [known] if ready and accepts(task, known, now) else []
    candidates = (
        state.workers[sid]
        for sid in state.index.ready_workers(queue.sid, task.channel_sid)
    )
    if not step.order_by:
        chosen = []
        for worker in candidates:
            if accepts(task, worker, now):
                chosen.append(worker)
                if len(chosen) >= limit:
                    break
        return chosen
    return _ordered(state, task, step.order_by, candidates, now)[:limit]


def best_task_for(
    state: WorkspaceState, worker: WorkerState, now: datetime
) -> TaskState | None:
    """The task `worker` should be offered next, or None (lifecycle.md §6).

    Tasks routed straight to the worker come first; then, over every queue the
    worker belongs to and every channel it is ready on, the head of each queue
    that accepts it, compared by PrioritizeQueueOrder, priority and age.
    """
    ready = state.index.ready_channels(worker.sid)
    for task_sid in state.index.direct_tasks(worker.sid):
        task = state.tasks[task_sid]
        if task.channel_sid in ready or (task.step and task.step.ignores_capacity):
            return task
    if not ready:
        return None
    best: tuple[Any, ...] | None = None
    best_task = None
    first = state.config.workspace.prioritize_queue_order
    for queue_sid in state.index.queues_of(worker.sid):
        queue = state.index.queue(queue_sid)
        if queue is None:
            continue
        for channel_sid in ready:
            task = _head_for(state, worker, queue_sid, channel_sid, now)
            if task is None:
                continue
            key = (
                0 if queue.task_order == first else 1,
                *_cross_key(queue.task_order, task),
            )
            if best is None or key < best:
                best, best_task = key, task
    return best_task


def should_skip(state: WorkspaceState, step: RoutingStep, now: datetime) -> bool:
    """The step's `skip_if` over its queue's worker counters."""
    if not step.skip_if or not step.queue_sid:
        return False
    try:
        expression = compile_expression(step.skip_if, ExpressionKind.SKIP_IF)
    except ExpressionError:
        logger.warning("skip_if does not compile", extra={"skip_if": step.skip_if})
        return False
    counters = state.index.skip_if_counters(step.queue_sid)
    return expression.evaluate({"workers": counters}, now=now)


def accepts(task: TaskState, worker: WorkerState, now: datetime) -> bool:
    """The step-level checks of one worker for one task (queue checks done by the caller)."""
    if worker.sid in task.pending.values():
        return False
    step = task.step
    if step is None or not step.expression:
        return True
    try:
        expression = compile_expression(step.expression, ExpressionKind.TARGET)
    except ExpressionError:
        return False
    document = {"task": task.attributes, "worker": worker.target_document()}
    return expression.evaluate(document, now=now)


# -- helpers --------------------------------------------------------------------
_NOT_KNOWN: Any = object()


def _known_worker(state: WorkspaceState, task: TaskState, step: RoutingStep) -> Any:
    """The known worker the step asks for: a worker, None (nobody), or _NOT_KNOWN."""
    path_text = step.known_worker_sid or step.known_worker_friendly_name
    if not path_text:
        return _NOT_KNOWN
    try:
        value = compile_path(path_text).resolve({"task": task.attributes})
    except ExpressionError:
        return None
    if not isinstance(value, str):
        return None
    if step.known_worker_sid:
        return state.workers.get(value)
    sid = state.names.get(value.lower())
    worker = None if sid is None else state.workers.get(sid)
    return (
        worker if worker is not None and worker.model.friendly_name == value else None
    )


def _direct_worker(
    state: WorkspaceState, task: TaskState, step: RoutingStep
) -> list[WorkerState]:
    worker = state.workers.get(step.target_worker_sid or "")
    if worker is None or worker.sid in task.pending.values():
        return []
    if step.ignores_capacity or task.channel_sid in state.index.ready_channels(
        worker.sid
    ):
        return [worker]
    return []


def _ordered(
    state: WorkspaceState,
    task: TaskState,
    order_by: str,
    candidates: Any,
    now: datetime,
) -> list[WorkerState]:
    try:
        order = parse_order_by(order_by)
    except ExpressionError:
        order = None
    eligible = [w for w in candidates if accepts(task, w, now)]

    def key(worker: WorkerState) -> tuple[Any, ...]:
        idle = state.index.ready_channels(worker.sid).get(
            task.channel_sid, (0, worker.sid)
        )
        return (order.sort_key(worker.attributes) if order else (), idle)

    return sorted(eligible, key=key)


def _head_for(
    state: WorkspaceState,
    worker: WorkerState,
    queue_sid: str,
    channel_sid: str,
    now: datetime,
) -> TaskState | None:
    for task_sid in state.index.waiting_tasks(queue_sid, channel_sid):
        task = state.tasks[task_sid]
        step = task.step
        assert step is not None
        if step.known_worker_sid or step.known_worker_friendly_name:
            if _known_worker(state, task, step) is not worker:
                continue
        if accepts(task, worker, now):
            return task
    return None


def _cross_key(order: QueueOrder, task: TaskState) -> tuple[Any, ...]:
    """Compare heads of queues of one kind: FIFO by priority then age, LIFO newest first."""
    key = task_order_key(order, task)
    return key if order is QueueOrder.FIFO else (0, *key)
