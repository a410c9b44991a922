"""Counted events kept in memory and written to the store a few times a second.

Why: the local store pays per written document and per transaction, and the
buckets an event counts in are the same for many events (the same minute, hour,
queue, worker). So events are counted into one in-memory `BucketBatch`, and a
flush writes it, merged per bucket, with the progress in ONE commit every
`flush_interval` seconds, or sooner when `max_pending` events wait.

De-duplication is by event-stream sequence, not by event SID: the service reads
one durable consumer in stream order, so "counted" is "sequence <= the highest
counted sequence". The store holds the sequence its buckets include (the
progress); at start the consumer is recreated to deliver from the progress + 1
(`EventConsumer.start(from_sequence=...)`), so events acknowledged but not yet
flushed when the process died are delivered and counted again, and nothing
flushed is counted twice. This needs one replica (see `app`).

Its limit: an event published twice under different stream sequences is not
caught by its sequence. That happens when the outbox relay publishes an event
again after JetStream's duplicate window (2 minutes). The SIDs of the most
recently counted events (`RECENT_SIDS`) are kept to drop such repeats within a
process lifetime; one arriving after a restart, or after that many later
events, is counted twice.

A flush that failed is retried as it was, before anything newer: its
progress write is conditional on the progress it started from, so if the first
attempt was in fact committed (its answer lost), the retry finds the progress
already at its target and is dropped instead of applied twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from services.statistics.aggregates import ActivityInterval, BucketBatch
from services.statistics.store import StatisticsStore
from shared.errors import ConflictError
from shared.events import Event

logger = logging.getLogger(__name__)

RECENT_SIDS = 200_000

Sleep = Callable[[float], Awaitable[None]]


@dataclass
class _Pending:
    """Events counted since `after`, up to stream sequence `upto`."""

    after: int
    upto: int
    batch: BucketBatch = field(default_factory=BucketBatch)
    events: int = 0


class Tally:
    """The counts not yet in the store, the progress, and the flushes."""

    def __init__(
        self,
        store: StatisticsStore,
        *,
        max_pending: int = 10_000,
        recent_sids: int = RECENT_SIDS,
    ) -> None:
        self._store = store
        self._max_pending = max_pending
        self._recent_limit = recent_sids
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._durable = 0  # the progress the store holds
        self._open = _Pending(0, 0)
        self._sealed: _Pending | None = None  # a flush that failed, to retry first
        self._lock = asyncio.Lock()

    def resume(self, sequence: int) -> None:
        """Start counting after `sequence`, the progress the store holds."""
        self._durable = sequence
        self._open = _Pending(sequence, sequence)
        self._sealed = None

    # -- counting --------------------------------------------------------------------
    @property
    def sequence(self) -> int:
        """The highest stream sequence counted (or passed over), flushed or not."""
        return self._open.upto

    def is_counted(self, sequence: int, event_sid: str | None = None) -> bool:
        """Whether the event at `sequence` (or one with this SID) was counted."""
        return sequence <= self.sequence or (
            event_sid is not None and event_sid in self._recent
        )

    def counted_all(self, event_sids: Iterable[str]) -> bool:
        """Whether every one of these events was counted recently in this process."""
        return all(sid in self._recent for sid in event_sids)

    def add(
        self, sequence: int, event: Event, closed: ActivityInterval | None = None
    ) -> None:
        """Count `event` (at stream sequence `sequence`), with an interval it closed."""
        self._open.batch.add_event(event)
        if closed is not None:
            self._open.batch.add_interval(closed)
        self._open.events += 1
        self._remember(event.sid)
        self.pass_over(sequence)

    def pass_over(self, sequence: int) -> None:
        """Move past an event without counting it (a repeat, or not understood)."""
        self._open.upto = max(self._open.upto, sequence)

    @property
    def full(self) -> bool:
        """Whether enough events wait that they should be flushed now."""
        return self._open.events >= self._max_pending

    def _remember(self, event_sid: str) -> None:
        self._recent[event_sid] = None
        if len(self._recent) > self._recent_limit:
            self._recent.popitem(last=False)

    # -- flushing --------------------------------------------------------------------
    async def flush(self) -> None:
        """Write everything counted so far; on return the store includes it.

        Raises what the store raised; the counts stay pending and the next
        flush retries them.
        """
        async with self._lock:
            if self._sealed is not None:
                await self._commit(self._sealed)
            if self._open.upto == self._durable:
                return
            self._sealed = self._open
            self._open = _Pending(self._sealed.upto, self._sealed.upto)
            await self._commit(self._sealed)

    async def _commit(self, pending: _Pending) -> None:
        try:
            await self._store.record(pending.batch, pending.after, pending.upto)
        except ConflictError:
            if await self._store.progress() != pending.upto:
                logger.error(
                    "statistics progress changed by someone else; is a second "
                    "replica running?",
                    extra={"expected": pending.after},
                )
                raise
            logger.warning("an earlier flush was committed after all")
        self._durable = pending.upto
        self._sealed = None

    async def flush_periodically(
        self, interval: float, sleep: Sleep = asyncio.sleep
    ) -> None:
        """Flush every `interval` seconds, forever; a failed flush waits for the next."""
        while True:
            await sleep(interval)
            try:
                await self.flush()
            except Exception:
                logger.warning("statistics flush failed; will retry", exc_info=True)
