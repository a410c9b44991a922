"""Fakes for the statistics tally and handler tests: a store, some events."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

from services.statistics.aggregates import BucketBatch
from shared.errors import ConflictError, UnavailableError
from shared.events import Event, make_event

WS = "WS" + "a" * 32
QUEUE = "WQ" + "1" * 32
AT = datetime(2026, 1, 5, 10, 30, 15, tzinfo=UTC)


@functools.cache
def created(n: int) -> Event:
    """Task n's `task.created` (the same event, SID included, on every call)."""
    return make_event(
        "task.created",
        account_sid="AC" + "a" * 32,
        workspace_sid=WS,
        resource_type="task",
        resource_sid=f"WT{n:032d}",
        at=AT,
        data={"task_queue_sid": QUEUE},
    )


class FakeStore:
    """Applies records like the store: only when the progress is the expected one."""

    def __init__(self, progress: int = 0) -> None:
        self.stored_progress = progress
        self.records: list[tuple[int, int, int]] = []  # (after, upto, tasks_created)
        self.fail_next: Exception | None = None
        self.lose_answer_of_next = False

    async def progress(self) -> int:
        return self.stored_progress

    async def record(self, batch: BucketBatch, previous: int, sequence: int) -> None:
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        if previous != self.stored_progress:
            raise ConflictError("progress moved")
        self.stored_progress = sequence
        self.records.append((previous, sequence, _workspace_tasks(batch)))
        if self.lose_answer_of_next:
            self.lose_answer_of_next = False
            raise UnavailableError("the store did not answer")


def _workspace_tasks(batch: BucketBatch) -> int:
    return sum(
        delta.counters.get("tasks_created", 0)
        for key, delta in batch.deltas.items()
        if key.scope == "workspace" and key.granularity == "m"
    )
