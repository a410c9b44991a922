"""The statistics service's storage: buckets and intervals, progress, snapshots.

Owned collections (this service is their only writer):

    statistics_buckets   counter buckets
                         `{_id, g: "m"|"h", ws, scope, sid, ch, t, c, d, h}`
                         and activity intervals `{_id: "iv|<EV>", g: "iv", ws, scope:
                         "worker", sid, activity_sid, start, t: end}`; both expire after
                         32 days (`expire_at`)
    statistics_progress  `{_id: "events", sequence}`: the last event-stream sequence
                         whose events the buckets include

Counted events reach the store in one commit per flush (see `tally`): the bucket
increments and the new progress, written only if the progress is still what
the flush started from, so a flush applied twice (retried after an answer that
was lost) fails on the progress instead of counting twice. (A store without
transactions, a standalone MongoDB, applies the buckets even then; see the
committer.)

The collection `statistics_seen` of earlier versions (one document per counted
event) is no longer written; its documents expire on their own.

Read-only: the queue-dispatcher's `tasks` and `workers`, for the start-up snapshot.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

from pymongo import ASCENDING, ReplaceOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from services.statistics.aggregates import (
    WORKER,
    ActivityInterval,
    BucketBatch,
    BucketKey,
    Delta,
)
from services.statistics.realtime import OPEN_STATUSES
from services.statistics.windows import Window, bucket_ranges
from shared.models import Task, Worker
from shared.storage import collections as c
from shared.storage.committer import Committer, Write
from shared.storage.mongo import translate_errors

PROGRESS_ID = "events"


class StatisticsStore:
    """Reads and writes of the statistics service."""

    def __init__(self, db: AsyncDatabase[Any], committer: Committer) -> None:
        self._db = db
        self._committer = committer
        self._buckets = db[c.STATISTICS_BUCKETS]
        self._progress = db[c.STATISTICS_PROGRESS]

    async def ensure_indexes(self) -> None:
        await self._buckets.create_index(
            [
                ("ws", ASCENDING),
                ("scope", ASCENDING),
                ("g", ASCENDING),
                ("sid", ASCENDING),
                ("t", ASCENDING),
            ],
            name="by_scope_and_time",
        )
        await self._buckets.create_index("expire_at", expireAfterSeconds=0)

    # -- progress --------------------------------------------------------------------
    async def progress(self) -> int | None:
        """The last stream sequence the buckets include; None before the first start."""
        doc = await translate_errors(
            lambda: self._progress.find_one({"_id": PROGRESS_ID})
        )
        return None if doc is None else int(doc["sequence"])

    async def set_progress(self, sequence: int) -> None:
        """Set the progress outright (at start, before counting)."""
        await translate_errors(
            lambda: self._progress.replace_one(
                {"_id": PROGRESS_ID},
                {"_id": PROGRESS_ID, "sequence": sequence},
                upsert=True,
            )
        )

    # -- writing ---------------------------------------------------------------------
    async def record(self, batch: BucketBatch, previous: int, sequence: int) -> None:
        """Add `batch` to the buckets and move the progress from `previous` to
        `sequence`, in one commit.

        Raises ConflictError when the progress is not `previous` (nothing is written).
        """
        writes = [_bucket_write(key, delta) for key, delta in batch.deltas.items()]
        writes.extend(_interval_write(interval) for interval in batch.intervals)
        writes.append(
            Write(
                c.STATISTICS_PROGRESS,
                UpdateOne(
                    {"_id": PROGRESS_ID, "sequence": previous},
                    {"$set": {"sequence": sequence}},
                ),
                must_match=True,
            )
        )
        await self._committer.commit(writes, [])

    # -- reading ---------------------------------------------------------------------
    async def sum_buckets(
        self,
        workspace_sid: str,
        scope: str,
        window: Window,
        *,
        scope_sids: Iterable[str] | None = None,
        channel_sid: str | None = None,
    ) -> dict[str, Delta]:
        """Per scope SID, the sum of its buckets covering `window`."""
        sums: dict[str, Delta] = {}
        base: dict[str, Any] = {"ws": workspace_sid, "scope": scope}
        if scope_sids is not None:
            base["sid"] = {"$in": list(scope_sids)}
        if channel_sid is not None:
            base["ch"] = channel_sid
        for bucket_range in bucket_ranges(window):
            query = {
                **base,
                "g": bucket_range.granularity,
                "t": {"$gte": bucket_range.start, "$lt": bucket_range.stop},
            }
            async for doc in self._find(query):
                sums.setdefault(doc["sid"], Delta()).merge(Delta.from_document(doc))
        return sums

    async def intervals(
        self,
        workspace_sid: str,
        window: Window,
        worker_sids: Iterable[str] | None = None,
    ) -> list[ActivityInterval]:
        """Closed activity intervals that overlap `window`."""
        query: dict[str, Any] = {
            "ws": workspace_sid,
            "scope": WORKER,
            "g": "iv",
            "t": {"$gte": window.start},
            "start": {"$lte": window.end},
        }
        if worker_sids is not None:
            query["sid"] = {"$in": list(worker_sids)}
        return [ActivityInterval.from_document(doc) async for doc in self._find(query)]

    async def _find(self, query: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        docs = await translate_errors(lambda: self._buckets.find(query).to_list(None))
        for doc in docs:
            yield doc

    # -- the dispatcher's state, read once at start ------------------------------------
    async def open_tasks(self) -> AsyncIterator[Task]:
        query = {"assignment_status": {"$in": [str(s) for s in OPEN_STATUSES]}}
        async for doc in self._db[c.TASKS].find(query):
            yield Task.from_document(doc)

    async def workers(self) -> AsyncIterator[Worker]:
        async for doc in self._db[c.WORKERS].find({}):
            yield Worker.from_document(doc)


def _bucket_write(key: BucketKey, delta: Delta) -> Write:
    update = {**delta.update_operators(), "$setOnInsert": key.identity()}
    return Write(
        c.STATISTICS_BUCKETS, UpdateOne({"_id": key.document_id}, update, upsert=True)
    )


def _interval_write(interval: ActivityInterval) -> Write:
    doc = interval.to_document()
    return Write(
        c.STATISTICS_BUCKETS, ReplaceOne({"_id": doc["_id"]}, doc, upsert=True)
    )
