"""The event log: every event of the stream, kept 30 days for the Events API.

The gateway reads the `events` collection directly. Documents are
`Event.to_document()` plus the `keys` of the list filters, in the layout of
`shared.storage.event_log`: `_id` is the event SID, so a redelivered event is a
duplicate key and is skipped; one multikey index serves every filter.

Cost in secantusdb (`.venv/bin/python tests/bench/bench_event_log.py`: 3,000
realistic events, insert_many batches of 20, two runs on a shared 2-core machine):
12 indexes (one per filter) 1,050-1,160 events/s (~0.9 ms each); 3 indexes
(`_id`, TTL, one multikey) 2,030-2,130 events/s (~0.5 ms each), 1.75-2.0x.

A database written by an earlier version has the nine per-filter indexes and
documents without `keys`: `ensure_indexes` fills in their keys first, then drops
those indexes, so a crash in between only repeats the (idempotent) fill.
"""

from __future__ import annotations

import logging
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, PyMongoError

from shared.errors import UnavailableError
from shared.events import Event
from shared.storage import collections as c
from shared.storage.event_log import (
    KEY_SOURCES,
    KEYS_FIELD,
    LEGACY_INDEXES,
    event_document,
    event_indexes,
    event_keys,
)

logger = logging.getLogger(__name__)

# Documents given their keys per write when migrating an earlier version's log.
MIGRATION_BATCH = 500


class EventLog:
    """Appends events to `events`, skipping those already stored."""

    def __init__(self, db: AsyncDatabase[Any], retention_days: int = 30) -> None:
        self._collection = db[c.EVENTS]
        self._retention_days = retention_days

    async def ensure_indexes(self) -> None:
        """Create the indexes; migrate a log written with the per-filter indexes."""
        await self._collection.create_indexes(event_indexes(self._retention_days))
        legacy = [name for name in await self._collection.index_information()
                  if name in LEGACY_INDEXES]
        if legacy:
            await self._add_missing_keys()
            for name in legacy:
                await self._collection.drop_index(name)
            logger.info("event log migrated to filter keys", extra={"dropped": legacy})

    async def _add_missing_keys(self) -> None:
        """Give every document stored without `keys` its keys (one pass)."""
        updates: list[UpdateOne] = []
        async for doc in self._collection.find({KEYS_FIELD: {"$exists": False}}, KEY_SOURCES):
            updates.append(UpdateOne({"_id": doc["_id"]}, {"$set": {KEYS_FIELD: event_keys(doc)}}))
            if len(updates) >= MIGRATION_BATCH:
                await self._collection.bulk_write(updates, ordered=False)
                updates = []
        if updates:
            await self._collection.bulk_write(updates, ordered=False)

    async def append(self, events: list[Event]) -> int:
        """Store `events`; returns how many were new (the rest were redelivered)."""
        if not events:
            return 0
        try:
            await self._collection.insert_many(
                [event_document(event) for event in events], ordered=False
            )
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != 11000 for e in errors):
                raise UnavailableError("the store refused an event") from exc
            logger.warning("redelivered events skipped", extra={"count": len(errors)})
            return len(events) - len(errors)
        except PyMongoError as exc:
            raise UnavailableError(f"the store failed: {type(exc).__name__}") from exc
        return len(events)
