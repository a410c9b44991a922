r"""Webhook delivery records in `webhook_deliveries`: what is still to be sent.

A record is written before the first attempt (in the same handler that stores
the event), so a restart never loses a delivery. Replicas share the records: a
replica that attempts one first *claims* it by moving `next_attempt_at` one lease
ahead with a versioned update (`{_id, version}`), so two replicas never post the
same attempt. A crash mid-attempt leaves the claim to expire; then the record is
due again and another attempt is made (at-least-once; the idempotency token
stays the same so receivers can tell).

    pending --attempt ok--> delivered
       |  \--failed, retry allowed--> pending (next_attempt_at = backoff)
       \----failed, no retry left---> failed
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field
from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, PyMongoError

from shared.errors import UnavailableError
from shared.storage import collections as c


class DeliveryKind(StrEnum):
    EVENT_CALLBACK = "event_callback"
    ASSIGNMENT_CALLBACK = "assignment_callback"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookDelivery(BaseModel):
    """One webhook to deliver, with its retry state."""

    id: str = Field(
        description="`<event sid>:<kind>`, so a redelivered event adds nothing."
    )
    kind: DeliveryKind
    event_sid: str
    event_type: str
    account_sid: str
    workspace_sid: str
    url: str = Field(
        description="Receiver URL, possibly with a connection-override fragment."
    )
    fallback_url: str | None = None
    params: dict[str, str] = Field(
        description="Form parameters, fixed at the first attempt."
    )
    idempotency_token: str = Field(
        description="Sent with every attempt of this delivery."
    )
    status: DeliveryStatus = DeliveryStatus.PENDING
    stage: str = Field("", description="Where an assignment callback has got to.")
    instruction: dict[str, Any] | None = None
    attempts: int = 0
    version: int = 0
    next_attempt_at: datetime
    created_at: datetime
    last_error: str | None = None
    expires_at: datetime | None = Field(
        None, description="Set when finished; TTL index."
    )

    @staticmethod
    def make_id(event_sid: str, kind: DeliveryKind) -> str:
        return f"{event_sid}:{kind.value}"

    def to_document(self) -> dict[str, Any]:
        doc = self.model_dump(exclude={"id"})
        doc["_id"] = self.id
        return doc

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> WebhookDelivery:
        return cls.model_validate({**doc, "id": doc["_id"]})


class DeliveryStore:
    """Reads and writes `webhook_deliveries`; store errors become UnavailableError."""

    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self._collection = db[c.WEBHOOK_DELIVERIES]

    async def ensure_indexes(self) -> None:
        await self._collection.create_indexes(
            [
                IndexModel([("status", ASCENDING), ("next_attempt_at", ASCENDING)]),
                IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0),
            ]
        )

    async def insert_new(
        self, deliveries: list[WebhookDelivery]
    ) -> list[WebhookDelivery]:
        """Insert `deliveries`; returns those that were not stored already."""
        if not deliveries:
            return []
        try:
            await self._collection.insert_many(
                [d.to_document() for d in deliveries], ordered=False
            )
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != 11000 for e in errors):
                raise UnavailableError("the store refused a webhook delivery") from exc
            duplicates = {e["index"] for e in errors}
            return [d for i, d in enumerate(deliveries) if i not in duplicates]
        except PyMongoError as exc:
            raise UnavailableError(f"the store failed: {type(exc).__name__}") from exc
        return deliveries

    async def claim(self, delivery: WebhookDelivery, lease_until: datetime) -> bool:
        """Take the delivery for one attempt; False when another replica has it."""
        return await self._update(
            delivery,
            {"next_attempt_at": lease_until},
            extra_filter={"status": DeliveryStatus.PENDING.value},
        )

    async def save(self, delivery: WebhookDelivery, **changes: Any) -> bool:
        """Write `changes` if nobody changed the record since it was read."""
        return await self._update(delivery, changes)

    async def due(self, now: datetime, limit: int) -> list[WebhookDelivery]:
        """Pending deliveries whose time has come (retries, expired claims)."""
        cursor = (
            self._collection.find(
                {
                    "status": DeliveryStatus.PENDING.value,
                    "next_attempt_at": {"$lte": now},
                }
            )
            .sort("next_attempt_at", ASCENDING)
            .limit(limit)
        )
        try:
            return [WebhookDelivery.from_document(doc) async for doc in cursor]
        except PyMongoError as exc:
            raise UnavailableError(f"the store failed: {type(exc).__name__}") from exc

    async def get(self, delivery_id: str) -> WebhookDelivery | None:
        doc = await self._collection.find_one({"_id": delivery_id})
        return None if doc is None else WebhookDelivery.from_document(doc)

    async def _update(
        self,
        delivery: WebhookDelivery,
        changes: dict[str, Any],
        extra_filter: dict[str, Any] | None = None,
    ) -> bool:
        where = {
            "_id": delivery.id,
            "version": delivery.version,
            **(extra_filter or {}),
        }
        values = {
            k: v.value if isinstance(v, StrEnum) else v for k, v in changes.items()
        }
        try:
            result = await self._collection.update_one(
                where, {"$set": values, "$inc": {"version": 1}}
            )
        except PyMongoError as exc:
            raise UnavailableError(f"the store failed: {type(exc).__name__}") from exc
        if result.modified_count != 1:
            return False
        for key, value in changes.items():
            setattr(delivery, key, value)
        delivery.version += 1
        return True


def finished_expiry(now: datetime, keep_days: int) -> datetime:
    return now + timedelta(days=keep_days)


class Finished(BaseModel):
    """An attempt ended the delivery: delivered, or failed for good."""

    status: DeliveryStatus
    error: str | None = None
    changes: dict[str, Any] = Field(default_factory=dict)


class RetryLater(BaseModel):
    """An attempt failed and the delivery is tried again after `delay` seconds."""

    delay: float
    error: str | None = None
    changes: dict[str, Any] = Field(default_factory=dict)


AttemptResult = Finished | RetryLater
