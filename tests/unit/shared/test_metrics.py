"""The metrics module without I/O: counting wrappers, helpers, the ASGI middleware."""

from __future__ import annotations

import logging
import inspect
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from shared import metrics
from shared.bus import command_reply
from shared.errors import NotFoundError
from shared.metrics import REGISTRY, RequestMetricsMiddleware


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _service() -> str:
    """A service label no other test uses, so counts start at zero."""
    return f"svc-{uuid.uuid4().hex[:8]}"


def test_render_metrics_lists_every_metric_family():
    body, content_type = metrics.render_metrics()

    text = body.decode()
    assert content_type.startswith("text/plain")
    for name in (
        "taskrouter_requests_total",
        "taskrouter_request_duration_seconds",
        "taskrouter_commands_total",
        "taskrouter_command_duration_seconds",
        "taskrouter_events_consumed_total",
        "taskrouter_event_handler_failures_total",
        "taskrouter_routing_latency_seconds",
        "taskrouter_queue_depth",
        "taskrouter_consumer_lag",
        "process_cpu_seconds_total",
    ):
        assert f"# TYPE {name} " in text, name


async def test_counted_command_counts_each_outcome_of_command_reply():
    service = _service()

    @command_reply
    async def get_thing(body: dict[str, Any]) -> dict[str, Any]:
        if body["sid"] == "boom":
            raise RuntimeError("unexpected")
        if body["sid"] != "WT1":
            raise NotFoundError("Task", body["sid"])
        return {"sid": "WT1"}

    counted = metrics.counted_command(get_thing, service, "thing.get")
    await counted({"sid": "WT1"})
    await counted({"sid": "WT1"})
    await counted({"sid": "WT2"})
    await counted({"sid": "boom"})

    labels = {"service": service, "action": "thing.get"}
    assert _sample("taskrouter_commands_total", **labels, outcome="ok") == 2
    assert _sample("taskrouter_commands_total", **labels, outcome="refused") == 1
    assert _sample("taskrouter_commands_total", **labels, outcome="failed") == 1
    assert _sample("taskrouter_command_duration_seconds_count", **labels) == 4


async def test_counted_command_counts_a_raising_plain_handler_as_failed():
    service = _service()

    async def on_thing(body: dict[str, Any]) -> None:
        raise ValueError("no reply wrapper")

    with pytest.raises(ValueError):
        await metrics.counted_command(on_thing, service, "thing.do")({})

    labels = {"service": service, "action": "thing.do", "outcome": "failed"}
    assert _sample("taskrouter_commands_total", **labels) == 1


def test_counted_wrappers_keep_the_handler_signature_for_faststream():
    async def on_thing(body: dict[str, Any]) -> None:
        """Doc."""

    wrapped = metrics.counted_events(on_thing, "svc", whole_batch=False)

    parameter = inspect.signature(wrapped).parameters["body"]
    assert parameter.annotation == dict[str, Any]
    assert wrapped.__name__ == "on_thing"
    assert wrapped.__doc__ == "Doc."


async def test_counted_events_counts_event_types_of_single_events_and_batches():
    service = _service()
    seen: list[Any] = []

    async def on_event(body: dict[str, Any]) -> None:
        seen.append(body)

    async def on_events(bodies: list[dict[str, Any]]) -> None:
        seen.extend(bodies)

    await metrics.counted_events(on_event, service, whole_batch=False)(
        {"event_type": "task.created"}
    )
    await metrics.counted_events(on_events, service, whole_batch=True)(
        bodies=[{"event_type": "task.created"}, {"event_type": "worker.created"}]
    )

    assert len(seen) == 3
    created = {"service": service, "event_type": "task.created"}
    assert _sample("taskrouter_events_consumed_total", **created) == 2
    worker = {"service": service, "event_type": "worker.created"}
    assert _sample("taskrouter_events_consumed_total", **worker) == 1


async def test_counted_events_counts_a_failure_and_no_consumed_event_when_raising():
    service = _service()

    async def on_event(body: dict[str, Any]) -> None:
        raise RuntimeError("store down")

    with pytest.raises(RuntimeError):
        await metrics.counted_events(on_event, service, whole_batch=False)(
            {"event_type": "task.created"}
        )

    assert _sample("taskrouter_event_handler_failures_total", service=service) == 1
    consumed = {"service": service, "event_type": "task.created"}
    assert _sample("taskrouter_events_consumed_total", **consumed) == 0


def test_observe_routing_latency_counts_clock_skew_as_zero():
    before = _sample("taskrouter_routing_latency_seconds_count")
    below_1ms = _sample("taskrouter_routing_latency_seconds_bucket", le="0.001")
    entered = datetime(2026, 1, 1, tzinfo=UTC)

    metrics.observe_routing_latency(entered, entered + timedelta(milliseconds=20))
    metrics.observe_routing_latency(entered, entered - timedelta(seconds=1))

    assert _sample("taskrouter_routing_latency_seconds_count") == before + 2
    assert (
        _sample("taskrouter_routing_latency_seconds_bucket", le="0.001")
        == below_1ms + 1
    )


def test_queue_depth_is_set_and_forgotten():
    queue = {
        "workspace_sid": "WS" + "a" * 32,
        "task_queue_sid": "WQ" + uuid.uuid4().hex,
    }

    metrics.set_queue_depth(queue["workspace_sid"], queue["task_queue_sid"], 7)
    assert _sample("taskrouter_queue_depth", **queue) == 7

    metrics.forget_queue_depth(queue["workspace_sid"], queue["task_queue_sid"])
    metrics.forget_queue_depth(queue["workspace_sid"], queue["task_queue_sid"])
    assert REGISTRY.get_sample_value("taskrouter_queue_depth", queue) is None


async def test_request_middleware_labels_requests_by_route_template():
    service = _service()
    app = FastAPI()

    @app.middleware("http")  # as the gateway's request log: the scope passes through
    async def log_request(request: Any, call_next: Any) -> Any:
        return await call_next(request)

    app.add_middleware(RequestMetricsMiddleware, service=service)

    @app.get("/v1/Workspaces/{WorkspaceSid}")
    async def fetch_workspace(WorkspaceSid: str) -> dict[str, str]:
        return {"sid": WorkspaceSid}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/v1/Workspaces/WS1")).status_code == 200
        assert (await client.get("/v1/Workspaces/WS2")).status_code == 200
        assert (await client.get("/nothing/here")).status_code == 404

    route = {
        "service": service,
        "route": "/v1/Workspaces/{WorkspaceSid}",
        "method": "GET",
    }
    assert _sample("taskrouter_requests_total", **route, status="200") == 2
    assert _sample("taskrouter_request_duration_seconds_count", **route) == 2
    unmatched = {"service": service, "route": "unmatched", "method": "GET"}
    assert _sample("taskrouter_requests_total", **unmatched, status="404") == 1


async def test_request_middleware_logs_one_line_per_request_when_given_a_logger(caplog):
    app = FastAPI()
    log = logging.getLogger("tests.access")
    app.add_middleware(RequestMetricsMiddleware, service=_service(), access_log=log)

    @app.post("/v1/Workspaces/{WorkspaceSid}/Tasks", status_code=201)
    async def create_task(WorkspaceSid: str) -> dict[str, str]:
        return {"workspace_sid": WorkspaceSid}

    transport = httpx.ASGITransport(app=app)
    with caplog.at_level(logging.INFO, logger="tests.access"):
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            assert (await client.post("/v1/Workspaces/WS1/Tasks")).status_code == 201

    (line,) = [r for r in caplog.records if r.name == "tests.access"]
    assert line.getMessage() == "http request"
    assert (line.method, line.path, line.status) == ("POST", "/v1/Workspaces/WS1/Tasks", 201)
    assert line.duration_ms >= 0
