"""Matching passes: turn waiting tasks and ready workers into reservations.

A decision marks what may have become matchable (`unit.match_task`,
`unit.match_worker`); `settle()` then runs the passes until nothing is left, in
the same decision, so a rejected task is offered again in the same commit.
"""

from __future__ import annotations

import logging

from services.queue_dispatcher import offers
from services.queue_dispatcher.selection import best_task_for, eligible_workers
from services.queue_dispatcher.state import TaskState, WorkerState
from services.queue_dispatcher.unit import Unit

logger = logging.getLogger(__name__)

MAX_ROUNDS = 1000
ROUND_CAP_REASON = "Task TTL Exceeded or Max assignment count exceeded"
# A worker takes at most this many tasks in one pass (50 is the capacity limit).
_MAX_TASKS_PER_PASS = 51


def match_task(unit: Unit, task: TaskState) -> int:
    """Offer a waiting task to its eligible workers; returns how many offers were made.

    One pending→reserved transition is one round; the 1,001st round cancels the
    task instead (lifecycle.md §1).
    """
    if not task.is_waiting:
        return 0
    workers = eligible_workers(unit.state, task, unit.now)
    if not workers:
        return 0
    if task.model.reservation_rounds >= MAX_ROUNDS:
        logger.info(
            "task reached the reservation round cap", extra={"task_sid": task.sid}
        )
        offers.cancel_task(unit, task, ROUND_CAP_REASON)
        return 0
    unit.changed(task)
    task.model.reservation_rounds += 1
    for worker in workers:
        offers.offer(unit, task, worker)
    logger.debug(
        "task offered",
        extra={"task_sid": task.sid, "workers": [w.sid for w in workers]},
    )
    return len(workers)


def match_worker(unit: Unit, worker: WorkerState) -> None:
    """Offer the worker the best waiting tasks while it has room."""
    for _ in range(_MAX_TASKS_PER_PASS):
        task = best_task_for(unit.state, worker, unit.now)
        if task is None or match_task(unit, task) == 0:
            return


def settle(unit: Unit) -> None:
    """Run matching passes for everything the decision marked, until none is left."""
    state = unit.state
    while unit.dirty_tasks or unit.dirty_workers:
        while unit.dirty_tasks:
            sid = next(iter(unit.dirty_tasks))
            del unit.dirty_tasks[sid]
            task = state.tasks.get(sid)
            if task is not None:
                match_task(unit, task)
        if unit.dirty_workers:
            sid = next(iter(unit.dirty_workers))
            del unit.dirty_workers[sid]
            worker = state.workers.get(sid)
            if worker is not None:
                match_worker(unit, worker)
