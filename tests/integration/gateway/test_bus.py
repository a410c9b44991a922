"""The gateway on the bus: configuration events, readiness of the other services."""

from __future__ import annotations

import asyncio

import httpx
import nats
import orjson
import pytest

from shared.runtime import ServiceRuntime
from shared.settings import CommonSettings, load
from shared.subjects import SERVICES, Subjects

pytestmark = pytest.mark.integration


async def test_fifo_workspace_creation_publishes_one_event_per_object(gateway):
    connection = await nats.connect(gateway.env["NATS_URL"])
    received: asyncio.Queue = asyncio.Queue()
    subjects = Subjects(gateway.env["TASKROUTER_SUBJECT_PREFIX"])
    await connection.subscribe(subjects.events_matching(), cb=received.put)
    async with httpx.AsyncClient(base_url=gateway.url,
                                 auth=(gateway.account_sid, gateway.auth_token)) as http:
        response = await http.post("/v1/Workspaces",
                                   data={"FriendlyName": "evented", "Template": "FIFO"})
    ws_sid = response.json()["sid"]

    events = []
    while len(events) < 11:
        message = await asyncio.wait_for(received.get(), 10)
        events.append(orjson.loads(message.data))
    await connection.close()

    types = sorted(e["event_type"] for e in events)
    assert types == sorted(
        ["workspace.created"] + ["activity.created"] * 3 + ["task-channel.created"] * 5
        + ["task-queue.created", "workflow.created"]
    )
    assert {e["workspace_sid"] for e in events} == {ws_sid}
    assert {e["actor_sid"] for e in events} == {gateway.account_sid}


async def test_healthz_answers_200_when_every_service_is_ready(gateway):
    settings = load(CommonSettings, gateway.env)
    others = [ServiceRuntime(name, settings) for name in SERVICES if name != "gateway"]
    for runtime in others:
        await runtime.start()
    try:
        async with httpx.AsyncClient(base_url=gateway.url) as http:
            response = await http.get("/healthz")
    finally:
        for runtime in others:
            await runtime.stop()
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
