"""Prometheus metrics shared by the five services, in one registry per process.

Every metric of the system is defined here, so names and labels stay the same
across services. A service records through the helpers below; `render_metrics()`
gives the text exposition that `/metrics` answers with (see `shared.health`).

Metric (labels), and who records it:

- `taskrouter_requests_total` (service, route, method, status) and
  `taskrouter_request_duration_seconds` (service, route, method):
  `RequestMetricsMiddleware`, in the gateway.
- `taskrouter_commands_total` (service, action, outcome) and
  `taskrouter_command_duration_seconds` (service, action):
  `ServiceRuntime.command_subscriber`.
- `taskrouter_events_consumed_total` (service, event_type) and
  `taskrouter_event_handler_failures_total` (service):
  `ServiceRuntime.event_subscriber`.
- `taskrouter_routing_latency_seconds`: the queue-dispatcher, through
  `observe_routing_latency`.
- `taskrouter_queue_depth` (workspace_sid, task_queue_sid): the queue-dispatcher,
  through `set_queue_depth`.
- `taskrouter_consumer_lag` (service, consumer): `ServiceRuntime`, from the
  JetStream consumer info of its durable consumers.
- `taskrouter_webhook_attempts_total` (kind, result): the events service, through
  `note_webhook_attempt`; kind `event_callback` or `assignment_callback`, result
  `delivered`, `retry` or `failed`.

A command's outcome is `ok` (a result was returned), `refused` (a domain error
such as not found or conflict, answered to the caller) or `failed` (an
unexpected exception). Labels hold only bounded sets: route templates, never
raw paths; SIDs only for task queues, whose number an operator controls.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    gc_collector,
    generate_latest,
    platform_collector,
    process_collector,
)

# NOTE: no `*_created` series: they double the series count and Prometheus derives
# resets itself. The switch is process-wide, which suits one registry per process.
disable_created_metrics()

REGISTRY = CollectorRegistry(auto_describe=True)
process_collector.ProcessCollector(registry=REGISTRY)
platform_collector.PlatformCollector(registry=REGISTRY)
gc_collector.GCCollector(registry=REGISTRY)

# Seconds; the performance budget is a p99 under 50 ms from REST create to
# reservation, so the buckets are finest around it.
_LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

REQUESTS = Counter(
    "taskrouter_requests",
    "HTTP requests answered, by route template and status code.",
    ["service", "route", "method", "status"],
    registry=REGISTRY,
)
REQUEST_DURATION = Histogram(
    "taskrouter_request_duration_seconds",
    "Time from receiving an HTTP request to the end of its response.",
    ["service", "route", "method"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
COMMANDS = Counter(
    "taskrouter_commands",
    "Commands handled by request/reply, by outcome (ok, refused, failed).",
    ["service", "action", "outcome"],
    registry=REGISTRY,
)
COMMAND_DURATION = Histogram(
    "taskrouter_command_duration_seconds",
    "Time a service spent handling one command.",
    ["service", "action"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
EVENTS_CONSUMED = Counter(
    "taskrouter_events_consumed",
    "Events a service's durable consumer handled successfully.",
    ["service", "event_type"],
    registry=REGISTRY,
)
EVENT_HANDLER_FAILURES = Counter(
    "taskrouter_event_handler_failures",
    "Event deliveries whose handler raised (they are delivered again).",
    ["service"],
    registry=REGISTRY,
)
ROUTING_LATENCY = Histogram(
    "taskrouter_routing_latency_seconds",
    "Time from a task entering a TaskQueue to its reservation being created.",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "taskrouter_queue_depth",
    "Tasks waiting (pending or reserved) in a TaskQueue.",
    ["workspace_sid", "task_queue_sid"],
    registry=REGISTRY,
)
CONSUMER_LAG = Gauge(
    "taskrouter_consumer_lag",
    "Events in the stream not yet delivered to a durable consumer (num_pending).",
    ["service", "consumer"],
    registry=REGISTRY,
)

WEBHOOK_ATTEMPTS = Counter(
    "taskrouter_webhook_attempts",
    "Webhook delivery attempts by the events service, by kind and result.",
    ["kind", "result"],
    registry=REGISTRY,
)

OK = "ok"
REFUSED = "refused"
FAILED = "failed"

# The outcome slot of the command being handled in this context; `command_reply`
# fills it, because it turns domain errors into replies before they could be seen.
_command_outcome: ContextVar[list[str] | None] = ContextVar(
    "taskrouter_command_outcome", default=None
)


def render_metrics() -> tuple[bytes, str]:
    """The registry in Prometheus' text format, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def note_command_outcome(outcome: str) -> None:
    """Record how the command being handled ended; no-op outside a counted command."""
    slot = _command_outcome.get()
    if slot is not None:
        slot[0] = outcome


def counted_command(
    handler: Callable[..., Awaitable[Any]], service: str, action: str
) -> Callable[..., Awaitable[Any]]:
    """Wrap a command handler so each call counts in `taskrouter_commands_total`.

    The wrapper keeps the handler's signature, which FastStream reads to decode
    the message body.
    """
    outcomes = (OK, REFUSED, FAILED)
    commands = {
        outcome: COMMANDS.labels(service, action, outcome) for outcome in outcomes
    }
    duration = COMMAND_DURATION.labels(service, action)

    async def counted(*args: Any, **kwargs: Any) -> Any:
        slot = [OK]
        token = _command_outcome.set(slot)
        started = time.perf_counter()
        try:
            return await handler(*args, **kwargs)
        except Exception:
            slot[0] = FAILED
            raise
        finally:
            _command_outcome.reset(token)
            duration.observe(time.perf_counter() - started)
            commands[slot[0]].inc()

    return _same_signature(counted, handler)


def counted_events(
    handler: Callable[..., Awaitable[Any]], service: str, whole_batch: bool
) -> Callable[..., Awaitable[Any]]:
    """Wrap an event handler so handled events count in `taskrouter_events_consumed`.

    The handler's first argument is the event envelope (a dict), or with
    `whole_batch` a list of them. Only events whose handler returned are counted;
    a raise counts once in `taskrouter_event_handler_failures_total`.
    """
    failures = EVENT_HANDLER_FAILURES.labels(service)
    body_name = next(iter(inspect.signature(handler).parameters), None)

    async def counted(*args: Any, **kwargs: Any) -> Any:
        try:
            result = await handler(*args, **kwargs)
        except Exception:
            failures.inc()
            raise
        body = args[0] if args else kwargs.get(body_name or "")
        for event in body if whole_batch and isinstance(body, list) else (body,):
            EVENTS_CONSUMED.labels(service, _event_type(event)).inc()
        return result

    return _same_signature(counted, handler)


def note_webhook_attempt(kind: str, result: str) -> None:
    """Count one webhook attempt: `result` is delivered, retry or failed."""
    WEBHOOK_ATTEMPTS.labels(kind, result).inc()


def observe_routing_latency(entered_at: datetime, reserved_at: datetime) -> None:
    """Record the time from a task entering a TaskQueue to its reservation.

    Both datetimes must be tz-aware; a negative difference (clock skew between
    services) counts as zero.
    """
    seconds = (reserved_at - entered_at).total_seconds()
    ROUTING_LATENCY.observe(max(seconds, 0.0))


def set_queue_depth(workspace_sid: str, task_queue_sid: str, depth: int) -> None:
    """Set the number of tasks waiting in a TaskQueue."""
    QUEUE_DEPTH.labels(workspace_sid, task_queue_sid).set(depth)


def forget_queue_depth(workspace_sid: str, task_queue_sid: str) -> None:
    """Drop the gauge of a deleted TaskQueue, so it stops being exported."""
    try:
        QUEUE_DEPTH.remove(workspace_sid, task_queue_sid)
    except KeyError:
        pass


def set_consumer_lag(service: str, consumer: str, pending: int) -> None:
    """Set how many events a durable consumer has not yet been delivered."""
    CONSUMER_LAG.labels(service, consumer).set(pending)


class RequestMetricsMiddleware:
    """ASGI middleware counting and timing HTTP requests by route template.

    Add it in an app factory: `app.add_middleware(RequestMetricsMiddleware,
    service="gateway")`; with `access_log=<logger>` it also logs one line per
    request (method, path, status, duration). The route label is the matched route's path template
    (`/v1/Workspaces/{WorkspaceSid}`), or `unmatched` when no route matched, so a
    scan of random paths cannot grow the number of series.
    """

    def __init__(self, app: Any, service: str, access_log: logging.Logger | None = None) -> None:
        self.app = app
        self.service = service
        self.access_log = access_log

    async def __call__(
        self, scope: MutableMapping[str, Any], receive: Any, send: Any
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_with_status(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route, method = _route_template(scope), scope["method"]
            seconds = time.perf_counter() - started
            REQUESTS.labels(self.service, route, method, str(status)).inc()
            REQUEST_DURATION.labels(self.service, route, method).observe(seconds)
            if self.access_log is not None and self.access_log.isEnabledFor(logging.INFO):
                self.access_log.info(
                    "http request",
                    extra={
                        "method": method,
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round(seconds * 1000, 1),
                    },
                )


def _route_template(scope: MutableMapping[str, Any]) -> str:
    # NOTE: Starlette's router writes the matched route into the same scope dict
    # the middleware passed down, so it is readable once the app has answered.
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


def _event_type(event: Any) -> str:
    if isinstance(event, dict):
        return str(event.get("event_type") or "unknown")
    return "unknown"


def _same_signature(
    wrapper: Callable[..., Awaitable[Any]], handler: Callable[..., Awaitable[Any]]
) -> Callable[..., Awaitable[Any]]:
    # FastStream builds the body decoder from the signature; evaluated annotations
    # keep it independent of this module's globals.
    wrapper.__signature__ = inspect.signature(handler, eval_str=True)  # type: ignore[attr-defined]
    wrapper.__name__ = handler.__name__
    wrapper.__qualname__ = handler.__qualname__
    wrapper.__doc__ = handler.__doc__
    return wrapper
