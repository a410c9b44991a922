"""Assignment callbacks: instructions become commands to the queue-dispatcher."""

from __future__ import annotations

import asyncio
import threading

import nats
import orjson
import pytest
from events_support import (
    ACCOUNT,
    AUTH_TOKEN,
    WORKSPACE,
    eventually,
    reservation_created,
    seed_configuration,
)
from twilio.request_validator import RequestValidator

from services.events.deliveries import DeliveryKind, WebhookDelivery
from shared.subjects import QUEUE_DISPATCHER

pytestmark = pytest.mark.integration


@pytest.fixture
async def dispatcher(probe):
    """Stands in for the queue-dispatcher: records commands and answers them."""
    connection = await nats.connect(probe.settings.nats_url)
    received: asyncio.Queue[tuple[str, dict]] = asyncio.Queue()
    answers: dict[str, dict] = {}

    async def on_command(message) -> None:
        action = ".".join(message.subject.split(".")[-2:])
        await received.put((message.subject, orjson.loads(message.data)))
        reply = answers.get(action, {"ok": True, "result": None})
        await message.respond(orjson.dumps(reply))

    for action in ("reservation.update", "reservation.callback-failed"):
        await connection.subscribe(
            probe.subjects.command_listener(QUEUE_DISPATCHER, action), cb=on_command
        )
    await connection.flush()
    yield received, answers
    await connection.close()


def _json(payload: dict) -> tuple[int, str, bytes]:
    return 200, "application/json", orjson.dumps(payload)


async def test_accept_instruction_sends_update_reservation(
    start_events_service, probe, receiver, dispatcher
):
    received, _ = dispatcher
    service = await start_events_service()
    url = receiver.base_url + "/assign"
    await seed_configuration(service.runtime, assignment_callback_url=url)
    receiver.reply = lambda request: _json({"instruction": "accept"})
    event = reservation_created()

    await probe.committer.commit([], [event])

    callback = await receiver.next()
    assert callback.form["ReservationSid"] == event.resource_sid
    assert callback.form["WorkerAttributes"] == '{"languages": ["fr"]}'
    assert RequestValidator(AUTH_TOKEN).validate(
        url, callback.form, callback.headers["X-Twilio-Signature"]
    )
    subject, command = await asyncio.wait_for(received.get(), 30)
    assert subject == probe.subjects.command(
        QUEUE_DISPATCHER, "reservation.update", WORKSPACE
    )
    assert command["action"] == "reservation.update"
    assert command["account_sid"] == ACCOUNT
    assert command["reservation_sid"] == event.resource_sid
    assert command["task_sid"] == event.event_data["task_sid"]
    assert command["reservation_status"] == "accepted"


async def test_reject_from_fallback_carries_activity(
    start_events_service, probe, receiver, dispatcher
):
    received, _ = dispatcher
    service = await start_events_service()
    await seed_configuration(
        service.runtime,
        assignment_callback_url=receiver.base_url + "/assign",
        fallback_assignment_callback_url=receiver.base_url + "/fallback",
    )

    def reply(request):
        if request.path == "/assign":
            return 502, "text/plain", b"bad gateway"
        return _json({"instruction": "reject", "activity_sid": "WA" + "7" * 32})

    receiver.reply = reply

    await probe.committer.commit([], [reservation_created()])

    assert [(await receiver.next()).path for _ in range(2)] == ["/assign", "/fallback"]
    _, command = await asyncio.wait_for(received.get(), 30)
    assert command["reservation_status"] == "rejected"
    assert command["worker_activity_sid"] == "WA" + "7" * 32


async def test_both_callbacks_failing_reports_callback_failed(
    start_events_service, probe, receiver, dispatcher
):
    received, _ = dispatcher
    service = await start_events_service()
    await seed_configuration(
        service.runtime,
        assignment_callback_url=receiver.base_url + "/assign",
        fallback_assignment_callback_url=receiver.base_url + "/fallback",
    )
    receiver.reply = lambda request: (500, "text/plain", b"down")
    event = reservation_created()

    await probe.committer.commit([], [event])

    subject, command = await asyncio.wait_for(received.get(), 30)
    assert subject.endswith(".reservation.callback-failed")
    assert command == {
        "account_sid": ACCOUNT,
        "workspace_sid": WORKSPACE,
        "reservation_sid": event.resource_sid,
    }
    record_id = WebhookDelivery.make_id(event.sid, DeliveryKind.ASSIGNMENT_CALLBACK)

    async def failed():
        found = await service.deliveries.get(record_id)
        return found if found and found.status == "failed" else None

    assert (await eventually(failed)).last_error == "HTTP 500; HTTP 500"


async def test_empty_reply_leaves_reservation_to_the_application(
    start_events_service, probe, receiver, dispatcher
):
    received, _ = dispatcher
    service = await start_events_service()
    await seed_configuration(
        service.runtime, assignment_callback_url=receiver.base_url + "/a"
    )
    event = reservation_created()

    await probe.committer.commit([], [event])

    await receiver.next()
    record_id = WebhookDelivery.make_id(event.sid, DeliveryKind.ASSIGNMENT_CALLBACK)

    async def delivered():
        found = await service.deliveries.get(record_id)
        return found if found and found.status == "delivered" else None

    record = await eventually(delivered)
    assert record.instruction is None
    assert received.empty()


async def test_unsupported_instruction_is_recorded_not_sent(
    start_events_service, probe, receiver, dispatcher
):
    received, _ = dispatcher
    service = await start_events_service()
    await seed_configuration(
        service.runtime, assignment_callback_url=receiver.base_url + "/a"
    )
    receiver.reply = lambda request: _json(
        {"instruction": "dequeue", "from": "+15550100"}
    )
    event = reservation_created()

    await probe.committer.commit([], [event])

    record_id = WebhookDelivery.make_id(event.sid, DeliveryKind.ASSIGNMENT_CALLBACK)

    async def delivered():
        found = await service.deliveries.get(record_id)
        return found if found and found.status == "delivered" else None

    record = await eventually(delivered)
    assert record.instruction == {"instruction": "dequeue", "from": "+15550100"}
    assert record.last_error == "instruction 'dequeue' is not supported"
    assert received.empty()


async def test_unreachable_dispatcher_is_retried_without_posting_again(
    start_events_service, probe, receiver, dispatcher
):
    received, answers = dispatcher
    service = await start_events_service()
    await seed_configuration(
        service.runtime, assignment_callback_url=receiver.base_url + "/a"
    )
    receiver.reply = lambda request: _json({"instruction": "accept"})
    unavailable = {"type": "UnavailableError", "message": "store down", "param": None}
    answers["reservation.update"] = {"ok": False, "error": unavailable}

    await probe.committer.commit([], [reservation_created()])

    await asyncio.wait_for(received.get(), 30)
    answers["reservation.update"] = {"ok": True, "result": None}
    _, second = await asyncio.wait_for(received.get(), 30)
    assert second["reservation_status"] == "accepted"
    assert receiver.requests.qsize() == 1


async def test_callback_timeout_goes_to_fallback(
    start_events_service, probe, receiver, dispatcher
):
    received, _ = dispatcher
    service = await start_events_service(
        TASKROUTER_ASSIGNMENT_CALLBACK_TIMEOUT_SECONDS="0.3"
    )
    await seed_configuration(
        service.runtime,
        assignment_callback_url=receiver.base_url + "/slow",
        fallback_assignment_callback_url=receiver.base_url + "/fallback",
    )
    release = threading.Event()

    def reply(request):
        if request.path == "/slow":
            release.wait(10)
        return _json({"instruction": "accept"})

    receiver.reply = reply

    await probe.committer.commit([], [reservation_created()])

    try:
        _, command = await asyncio.wait_for(received.get(), 30)
    finally:
        release.set()
    assert command["reservation_status"] == "accepted"
    paths = {(await receiver.next()).path for _ in range(2)}
    assert paths == {"/slow", "/fallback"}
