"""EventCallbackUrl webhooks: signed form POSTs, filters, retries, restarts, guard."""

from __future__ import annotations

import threading
from datetime import timedelta

import nats
import orjson
import pytest
from events_support import (
    ACCOUNT,
    AUTH_TOKEN,
    WORKSPACE,
    eventually,
    seed_configuration,
    task_event,
)
from twilio.request_validator import RequestValidator

from services.devstack import free_port
from services.events.deliveries import DeliveryKind, WebhookDelivery
from shared import metrics
from shared.events import make_event
from shared.models import utcnow
from shared.storage import collections as c
from shared.storage.mongo import open_database

pytestmark = pytest.mark.integration


def _attempts_counted(result: str) -> float:
    labels = {"kind": "event_callback", "result": result}
    value = metrics.REGISTRY.get_sample_value(
        "taskrouter_webhook_attempts_total", labels
    )
    return value or 0.0


async def _delivery(service, event_sid: str) -> WebhookDelivery | None:
    return await service.deliveries.get(
        WebhookDelivery.make_id(event_sid, DeliveryKind.EVENT_CALLBACK)
    )


async def test_event_callback_is_signed_form_post(
    start_events_service, probe, receiver
):
    service = await start_events_service()
    url = receiver.base_url + "/events?source=taskrouter"
    await seed_configuration(service.runtime, event_callback_url=url)
    event = task_event()

    await probe.committer.commit([], [event])

    request = await receiver.next()
    assert request.path == "/events?source=taskrouter"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.form["EventType"] == "task.created"
    assert request.form["AccountSid"] == ACCOUNT
    assert request.form["WorkspaceSid"] == WORKSPACE
    assert request.form["WorkspaceName"] == "Support"
    assert request.form["ResourceSid"] == event.resource_sid
    assert request.form["TaskAttributes"] == '{"type": "support"}'
    assert request.headers["I-Twilio-Idempotency-Token"]
    signature = request.headers["X-Twilio-Signature"]
    assert RequestValidator(AUTH_TOKEN).validate(url, request.form, signature)


async def test_events_filter_selects_types(start_events_service, probe, receiver):
    service = await start_events_service()
    await seed_configuration(
        service.runtime,
        event_callback_url=receiver.base_url + "/ev",
        events_filter="task.canceled, task.completed",
    )

    await probe.committer.commit(
        [], [task_event("task.created"), task_event("task.canceled")]
    )

    request = await receiver.next()
    assert request.form["EventType"] == "task.canceled"
    assert await service.runtime.db[c.WEBHOOK_DELIVERIES].count_documents({}) == 1


async def test_failing_receiver_gets_retries_with_one_token(
    start_events_service, probe, receiver
):
    service = await start_events_service()
    await seed_configuration(
        service.runtime, event_callback_url=receiver.base_url + "/ev#rc=3&rp=5xx"
    )
    retries_before = _attempts_counted("retry")
    replies = iter([(503, "text/plain", b"busy"), (500, "text/plain", b"oops")])
    receiver.reply = lambda request: next(replies, (204, "application/json", b""))
    event = task_event()

    await probe.committer.commit([], [event])

    requests = [await receiver.next() for _ in range(3)]
    assert len({r.headers["I-Twilio-Idempotency-Token"] for r in requests}) == 1
    assert {r.form["Sid"] for r in requests} == {event.sid}

    async def delivered():
        found = await _delivery(service, event.sid)
        return found if found and found.status == "delivered" else None

    record = await eventually(delivered)
    assert record.attempts == 3
    assert record.last_error is None
    assert _attempts_counted("retry") - retries_before == 2


async def test_server_error_not_retried_by_default(
    start_events_service, probe, receiver
):
    service = await start_events_service()
    await seed_configuration(
        service.runtime, event_callback_url=receiver.base_url + "/ev"
    )
    receiver.reply = lambda request: (500, "text/plain", b"oops")
    event = task_event()

    await probe.committer.commit([], [event])

    async def failed():
        found = await _delivery(service, event.sid)
        return found if found and found.status == "failed" else None

    record = await eventually(failed)
    assert record.attempts == 1
    assert record.last_error == "HTTP 500"
    assert receiver.requests.qsize() == 1


async def test_private_receiver_refused_unless_allowed(
    start_events_service, probe, receiver
):
    service = await start_events_service(TASKROUTER_WEBHOOK_ALLOW_PRIVATE="false")
    await seed_configuration(
        service.runtime, event_callback_url=receiver.base_url + "/ev"
    )
    event = task_event()

    await probe.committer.commit([], [event])

    async def failed():
        found = await _delivery(service, event.sid)
        return found if found and found.status == "failed" else None

    record = await eventually(failed)
    assert "non-public address" in record.last_error
    assert receiver.requests.empty()


async def test_pending_delivery_is_sent_after_restart(
    start_events_service, receiver, isolated_env
):
    # Stored by a replica that went away before sending it; its claim expired.
    event = task_event()
    now = utcnow()
    left_over = WebhookDelivery(
        id=WebhookDelivery.make_id(event.sid, DeliveryKind.EVENT_CALLBACK),
        kind=DeliveryKind.EVENT_CALLBACK,
        event_sid=event.sid,
        event_type=event.event_type,
        account_sid=ACCOUNT,
        workspace_sid=WORKSPACE,
        url=receiver.base_url + "/ev",
        params={"EventType": event.event_type, "Sid": event.sid},
        idempotency_token="token-from-before",
        next_attempt_at=now - timedelta(seconds=1),
        created_at=now - timedelta(minutes=1),
    )
    async with open_database(
        isolated_env["MONGODB_URL"], isolated_env["MONGODB_DATABASE"]
    ) as db:
        await db[c.WEBHOOK_DELIVERIES].insert_one(left_over.to_document())

    service = await start_events_service()

    request = await receiver.next()
    assert request.form == {"EventType": "task.created", "Sid": event.sid}
    assert request.headers["I-Twilio-Idempotency-Token"] == "token-from-before"

    async def delivered():
        found = await _delivery(service, event.sid)
        return found if found and found.status == "delivered" else None

    assert (await eventually(delivered)).attempts == 1


async def test_refused_connection_is_retried_once_by_default(
    start_events_service, probe
):
    service = await start_events_service()
    closed_port = free_port()
    await seed_configuration(
        service.runtime, event_callback_url=f"http://127.0.0.1:{closed_port}/ev"
    )
    event = task_event()

    await probe.committer.commit([], [event])

    async def failed():
        found = await _delivery(service, event.sid)
        return found if found and found.status == "failed" else None

    record = await eventually(failed)
    assert record.attempts == 2
    assert record.last_error.startswith("ct:")


async def test_slow_receiver_times_out_without_blocking_others(
    start_events_service, probe, receiver
):
    service = await start_events_service()
    release = threading.Event()

    def reply(request):
        if request.path.startswith("/slow"):
            release.wait(10)
        return 204, "application/json", b""

    receiver.reply = reply
    await seed_configuration(
        service.runtime, event_callback_url=receiver.base_url + "/slow#rt=300&tt=300"
    )
    slow = task_event()
    await probe.committer.commit([], [slow])

    async def timed_out():
        found = await _delivery(service, slow.sid)
        return found if found and found.status == "failed" else None

    try:
        record = await eventually(timed_out)
    finally:
        release.set()
    assert record.last_error == "rt: timed out"


async def test_workspace_update_changes_the_callback_url(
    start_events_service, probe, receiver
):
    service = await start_events_service()
    await seed_configuration(service.runtime)
    before = task_event(task_sid="WT" + "3" * 32)
    await probe.committer.commit([], [before])

    async def stored():
        return await service.runtime.db[c.EVENTS].find_one({"_id": before.sid})

    await eventually(stored)
    await service.runtime.db[c.WORKSPACES].update_one(
        {"_id": WORKSPACE}, {"$set": {"event_callback_url": receiver.base_url + "/new"}}
    )
    updated = make_event(
        "workspace.updated",
        account_sid=ACCOUNT,
        workspace_sid=WORKSPACE,
        resource_type="workspace",
        resource_sid=WORKSPACE,
        at=utcnow(),
    )
    after = task_event(task_sid="WT" + "4" * 32)

    # Two commits: the events of one commit are published concurrently, in any order.
    await probe.committer.commit([], [updated])
    await probe.committer.commit([], [after])

    first = await receiver.next()
    assert first.path == "/new"
    assert first.form["EventType"] == "workspace.updated"
    assert (await receiver.next()).form["Sid"] == after.sid
    assert await service.runtime.db[c.WEBHOOK_DELIVERIES].count_documents({}) == 2


async def test_a_rotated_auth_token_signs_the_next_webhook_at_once(start_events_service, probe):
    """The admin command's credentials-changed broadcast drops the cached token."""
    from pymongo import UpdateOne

    from shared.secrets import encrypt_secret
    from shared.storage.committer import Write

    service = await start_events_service()
    await seed_configuration(probe)
    assert await service.tokens(ACCOUNT) == AUTH_TOKEN  # now cached

    new_token = "f" * 32
    encrypted = encrypt_secret(probe.settings.secret_key, new_token)
    await probe.committer.commit([Write(c.ACCOUNTS, UpdateOne(
        {"_id": ACCOUNT}, {"$set": {"auth_token_encrypted": encrypted}}))])
    assert await service.tokens(ACCOUNT) == AUTH_TOKEN  # the cache does not know yet

    connection = await nats.connect(probe.settings.nats_url)
    await connection.publish(probe.subjects.credentials_changed(),
                             orjson.dumps({"account_sid": ACCOUNT, "key_sid": None}))
    await connection.flush()

    async def rotated() -> bool:
        return await service.tokens(ACCOUNT) == new_token

    await eventually(rotated)
    await connection.close()
