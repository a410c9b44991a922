"""A ServiceRuntime with a metrics port: probes, command counts, consumer lag."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from services.devstack import free_port
from shared.bus import command_reply
from shared.events import make_event
from shared.metrics import REGISTRY
from shared.models import utcnow
from shared.runtime import ServiceRuntime
from shared.settings import CommonSettings, load

pytestmark = pytest.mark.integration


async def _wait_for_status(client: httpx.AsyncClient, path: str, status: int) -> None:
    """Poll `path` until it answers `status` (connection refusals count as not yet)."""
    deadline = time.monotonic() + 10
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = (await client.get(path)).status_code
        except httpx.TransportError as exc:
            last = exc
        if last == status:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{path} answered {last!r}, not {status}, within 10 s")


@pytest.fixture
def metrics_env(isolated_env: dict[str, str]) -> dict[str, str]:
    return {**isolated_env, "TASKROUTER_METRICS_PORT": str(free_port())}


async def test_readyz_answers_503_until_ready_then_metrics_count_commands(metrics_env):
    service = f"probe-{metrics_env['TASKROUTER_SUBJECT_PREFIX']}"
    runtime = ServiceRuntime(service, load(CommonSettings, metrics_env))
    release = asyncio.Event()
    runtime.on_ready(release.wait)

    @runtime.command_subscriber("thing.get")
    @command_reply
    async def get_thing(body: dict[str, Any]) -> dict[str, Any]:
        return {"sid": body["sid"]}

    starting = asyncio.ensure_future(runtime.start())
    url = f"http://127.0.0.1:{metrics_env['TASKROUTER_METRICS_PORT']}"
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            await _wait_for_status(client, "/readyz", 503)
            assert (await client.get("/livez")).status_code == 200

            release.set()
            await starting
            assert (await client.get("/readyz")).status_code == 200

            await runtime.commands.request(runtime.name, "thing.get", {"sid": "WT1"})
            scraped = (await client.get("/metrics")).text

        line = (
            f'taskrouter_commands_total{{action="thing.get",outcome="ok",'
            f'service="{runtime.name}"}} 1.0'
        )
        assert line in scraped.splitlines()
    finally:
        release.set()
        await starting
        await runtime.stop()


async def test_stopped_runtime_closes_its_health_server(metrics_env):
    runtime = ServiceRuntime("probe", load(CommonSettings, metrics_env))
    await runtime.start()
    url = f"http://127.0.0.1:{metrics_env['TASKROUTER_METRICS_PORT']}"

    await runtime.stop()

    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(base_url=url) as client:
            await client.get("/livez")


async def test_consumer_lag_reports_events_not_yet_delivered(metrics_env):
    service = f"lag-{metrics_env['TASKROUTER_SUBJECT_PREFIX']}"
    runtime = ServiceRuntime(service, load(CommonSettings, metrics_env))
    handled = asyncio.Event()
    gate = asyncio.Event()

    @runtime.event_subscriber(durable=service, batch=1)
    async def on_event(body: dict[str, Any]) -> None:
        handled.set()
        await gate.wait()

    await runtime.start()
    try:
        for n in range(3):
            event = make_event(
                "task.created",
                account_sid="AC1",
                workspace_sid="WS1",
                resource_type="task",
                resource_sid=f"WT{n}",
                at=utcnow(),
            )
            await runtime.publish_event(event)
        await asyncio.wait_for(handled.wait(), 10)

        await runtime.report_consumer_lag()

        lag = REGISTRY.get_sample_value(
            "taskrouter_consumer_lag", {"service": service, "consumer": service}
        )
        # The first event is being handled (delivered, not acknowledged); with a
        # batch of one the other two are not fetched until it is done.
        assert lag == 2
    finally:
        gate.set()
        await runtime.stop()
