"""Delivery records in the real store: idempotent inserts, one claim per attempt."""

from __future__ import annotations

from datetime import timedelta

import pytest
from events_support import ACCOUNT, WORKSPACE, events_settings, eventually

from services.events.deliverer import Deliverer
from services.events.deliveries import (
    DeliveryKind,
    DeliveryStatus,
    DeliveryStore,
    WebhookDelivery,
)
from shared.errors import UnavailableError
from shared.models import utcnow
from shared.storage.mongo import open_database

pytestmark = pytest.mark.integration


@pytest.fixture
async def store(isolated_env):
    async with open_database(
        isolated_env["MONGODB_URL"], isolated_env["MONGODB_DATABASE"]
    ) as db:
        deliveries = DeliveryStore(db)
        await deliveries.ensure_indexes()
        yield deliveries


def _delivery(event_sid: str, due_in: float = 0.0) -> WebhookDelivery:
    now = utcnow()
    return WebhookDelivery(
        id=WebhookDelivery.make_id(event_sid, DeliveryKind.EVENT_CALLBACK),
        kind=DeliveryKind.EVENT_CALLBACK,
        event_sid=event_sid,
        event_type="task.created",
        account_sid=ACCOUNT,
        workspace_sid=WORKSPACE,
        url="https://hooks.example.com/ev",
        params={"EventType": "task.created"},
        idempotency_token="t",
        next_attempt_at=now + timedelta(seconds=due_in),
        created_at=now,
    )


async def test_insert_new_returns_only_new_records(store):
    first = [_delivery("EV1"), _delivery("EV2")]
    await store.insert_new(first)

    new = await store.insert_new([_delivery("EV2"), _delivery("EV3")])

    assert [d.event_sid for d in new] == ["EV3"]


async def test_only_one_replica_claims_a_delivery(store):
    await store.insert_new([_delivery("EV1", due_in=-1)])
    [mine] = await store.due(utcnow(), 10)
    [theirs] = await store.due(utcnow(), 10)
    lease = utcnow() + timedelta(seconds=60)

    assert await store.claim(mine, lease)
    assert not await store.claim(theirs, lease)
    assert await store.due(utcnow(), 10) == []


async def test_finished_delivery_is_never_due_or_claimed(store):
    await store.insert_new([_delivery("EV1", due_in=-1)])
    [record] = await store.due(utcnow(), 10)
    assert await store.save(record, status=DeliveryStatus.DELIVERED, attempts=1)

    assert await store.due(utcnow() + timedelta(days=1), 10) == []
    assert not await store.claim(record, utcnow())
    stored = await store.get(record.id)
    assert stored.status is DeliveryStatus.DELIVERED
    assert stored.version == 1


class _CrashingHandler:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def attempt(self, delivery):
        raise self.error


@pytest.mark.parametrize(
    ("error", "status", "message"),
    [
        (KeyError("ReservationSid"), "failed", "internal error: KeyError"),
        (UnavailableError("store down"), "pending", "store down"),
    ],
    ids=["bug-ends-delivery", "outage-is-retried"],
)
async def test_crashing_attempt_is_recorded(
    store, isolated_env, error, status, message
):
    settings = events_settings(isolated_env, TASKROUTER_WEBHOOK_BACKOFF_SECONDS="30")
    deliverer = Deliverer(
        store, {DeliveryKind.EVENT_CALLBACK: _CrashingHandler(error)}, settings
    )
    [delivery] = await store.insert_new([_delivery("EV1", due_in=60)])

    deliverer.submit([delivery])

    async def attempted():
        found = await store.get(delivery.id)
        return found if found.attempts == 1 else None

    record = await eventually(attempted)
    assert record.status == status
    assert record.last_error == message
    await deliverer.stop()
