"""The event log: every event of the stream, kept 30 days for the Events API.

The gateway reads the `events` collection directly; the indexes below serve its
filters (events.md §1). Documents are `Event.to_document()`: `_id` is the event
SID, so a redelivered event is a duplicate key and is skipped.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, PyMongoError

from shared.errors import UnavailableError
from shared.events import Event
from shared.storage import collections as c

logger = logging.getLogger(__name__)

# The gateway lists newest first by `event_date_ms`, then `_id` (events.md §1).
_NEWEST_FIRST = [("event_date_ms", DESCENDING), ("_id", DESCENDING)]

# One index per Events API filter, each inside a workspace and newest first.
_FILTER_FIELDS = (
    "event_type",
    "resource_sid",
    "event_data.task_sid",
    "event_data.reservation_sid",
    "event_data.worker_sid",
    "event_data.task_queue_sid",
    "event_data.workflow_sid",
    "event_data.task_channel_sid",
    "event_data.task_channel_unique_name",
)


def event_indexes(retention_days: int) -> list[IndexModel]:
    """The TTL index on `event_date` and the indexes of the list filters."""
    ttl = int(timedelta(days=retention_days).total_seconds())
    indexes = [
        IndexModel(
            [("event_date", ASCENDING)], expireAfterSeconds=ttl, name="ttl_event_date"
        ),
        IndexModel([("workspace_sid", ASCENDING), *_NEWEST_FIRST], name="by_workspace"),
    ]
    for field in _FILTER_FIELDS:
        keys = [("workspace_sid", ASCENDING), (field, ASCENDING), *_NEWEST_FIRST]
        indexes.append(IndexModel(keys, name=f"by_{field.replace('.', '_')}"))
    return indexes


class EventLog:
    """Appends events to `events`, skipping those already stored."""

    def __init__(self, db: AsyncDatabase[Any], retention_days: int = 30) -> None:
        self._collection = db[c.EVENTS]
        self._retention_days = retention_days

    async def ensure_indexes(self) -> None:
        await self._collection.create_indexes(event_indexes(self._retention_days))

    async def append(self, events: list[Event]) -> int:
        """Store `events`; returns how many were new (the rest were redelivered)."""
        if not events:
            return 0
        try:
            await self._collection.insert_many(
                [event.to_document() for event in events], ordered=False
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
