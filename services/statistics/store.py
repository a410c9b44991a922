"""The statistics service's storage: buckets and intervals, de-duplication, snapshots.

Owned collections (this service is their only writer):

    statistics_buckets  counter buckets
                        `{_id, g: "m"|"h", ws, scope, sid, ch, t, c, d, h}`
                        and activity intervals `{_id: "iv|<EV>", g: "iv", ws, scope:
                        "worker", sid, activity_sid, start, t: end}`; both expire after
                        32 days (`expire_at`)
    statistics_seen     `{_id: <event SID>, at}`: events already counted; expire after
                        the event stream's retention plus a day

A batch of events is counted in one commit that also marks them seen, so a
redelivered event is either dropped by `unseen()` or, if it raced in, makes the
commit fail on the unique `_id` and is redelivered again, then dropped.

Read-only: the queue-dispatcher's `tasks` and `workers`, for the start-up snapshot.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, InsertOne, ReplaceOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from services.statistics.aggregates import WORKER, ActivityInterval, BucketBatch, Delta
from services.statistics.realtime import OPEN_STATUSES
from services.statistics.windows import Window, bucket_ranges
from shared.models import Task, Worker
from shared.storage import collections as c
from shared.storage.committer import Committer, Write
from shared.storage.mongo import translate_errors


class StatisticsStore:
    """Reads and writes of the statistics service."""

    def __init__(
        self, db: AsyncDatabase[Any], committer: Committer, *, seen_retention: timedelta
    ) -> None:
        self._db = db
        self._committer = committer
        self._buckets = db[c.STATISTICS_BUCKETS]
        self._seen = db[c.STATISTICS_SEEN]
        self._seen_retention = seen_retention

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
        await self._seen.create_index(
            "at", expireAfterSeconds=int(self._seen_retention.total_seconds())
        )

    # -- writing ---------------------------------------------------------------------
    async def unseen(self, event_sids: Iterable[str]) -> set[str]:
        """The SIDs among `event_sids` not counted yet."""
        wanted = set(event_sids)
        if not wanted:
            return wanted
        cursor = self._seen.find({"_id": {"$in": list(wanted)}}, {"_id": 1})
        seen = {doc["_id"] async for doc in cursor}
        return wanted - seen

    async def record(
        self, event_sids: Iterable[str], batch: BucketBatch, now: datetime
    ) -> None:
        """Add `batch` to the buckets and mark `event_sids` seen, in one commit.

        Raises ConflictError when one of the events was counted meanwhile.
        """
        writes = [
            Write(c.STATISTICS_SEEN, InsertOne({"_id": sid, "at": now}))
            for sid in event_sids
        ]
        for key, delta in batch.deltas.items():
            update = {**delta.update_operators(), "$setOnInsert": key.identity()}
            writes.append(
                Write(
                    c.STATISTICS_BUCKETS,
                    UpdateOne({"_id": key.document_id}, update, upsert=True),
                )
            )
        for interval in batch.intervals:
            doc = interval.to_document()
            writes.append(
                Write(
                    c.STATISTICS_BUCKETS,
                    ReplaceOne({"_id": doc["_id"]}, doc, upsert=True),
                )
            )
        if writes:
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
