"""Due-time timers in one loop: a heap, woken early when an earlier timer arrives.

Timers are kept by key; scheduling a key again replaces its timer. The clock is
injectable, and `fire_due()` fires whatever is due at a given moment, so tests
drive timers without sleeping.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

K = TypeVar("K")
Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


class Timers(Generic[K]):
    """Calls `on_due(key)` once each timer's due time has passed."""

    def __init__(self, on_due: Callable[[K], Awaitable[None]], clock: Clock = system_clock) -> None:
        self._on_due = on_due
        self._clock = clock
        self._heap: list[tuple[datetime, int, K]] = []
        self._due: dict[K, tuple[datetime, int]] = {}
        self._counter = 0
        self._wake = asyncio.Event()

    def __len__(self) -> int:
        return len(self._due)

    def schedule(self, key: K, due: datetime) -> None:
        self._counter += 1
        self._due[key] = (due, self._counter)
        heapq.heappush(self._heap, (due, self._counter, key))
        if self._heap[0][1] == self._counter:
            self._wake.set()

    def cancel(self, key: K) -> None:
        self._due.pop(key, None)
        # Cancelled entries stay in the heap until due; rebuild it when they
        # dominate, so many short-lived timers with long due times (task TTLs)
        # do not pile up.
        if len(self._heap) > 2 * len(self._due) + 1024:
            self._heap = [(due, counter, k) for k, (due, counter) in self._due.items()]
            heapq.heapify(self._heap)

    def cancel_where(self, predicate: Callable[[K], bool]) -> int:
        """Cancel every timer whose key satisfies `predicate`; returns how many."""
        keys = [key for key in self._due if predicate(key)]
        for key in keys:
            self.cancel(key)
        return len(keys)

    def due_at(self, key: K) -> datetime | None:
        entry = self._due.get(key)
        return None if entry is None else entry[0]

    async def fire_due(self, now: datetime | None = None) -> int:
        """Fire every timer due at `now` (default: the clock); returns how many."""
        now = now or self._clock()
        fired = 0
        while self._heap and self._heap[0][0] <= now:
            due, counter, key = heapq.heappop(self._heap)
            if self._due.get(key) != (due, counter):
                continue  # replaced or cancelled
            del self._due[key]
            fired += 1
            try:
                await self._on_due(key)
            except Exception:
                logger.exception("timer handler failed", extra={"timer": str(key)})
        return fired

    async def run(self) -> None:
        """Fire timers as they fall due, forever."""
        while True:
            await self.fire_due()
            self._wake.clear()
            timeout = None
            if self._heap:
                timeout = max(0.0, (self._heap[0][0] - self._clock()).total_seconds())
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass
