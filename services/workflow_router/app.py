"""Wiring of the workflow-router: one event consumer, the deadline loop."""

from __future__ import annotations

from typing import Any

from services.workflow_router.partitioning import (
    PartitionedRouting,
    ensure_routing_stream,
)
from services.workflow_router.router import ROUTING_EVENT_TYPES, Router, is_routing_barrier
from services.workflow_router.settings import RouterSettings
from shared.config_view import ConfigView
from shared.runtime import ServiceRuntime
from shared.storage import collections as c
from shared.subjects import WORKFLOW_ROUTER
from shared.timers import Clock, system_clock


def build(settings: RouterSettings, clock: Clock = system_clock) -> tuple[ServiceRuntime, Router]:
    """The runtime with the router's handlers registered (not started)."""
    runtime = ServiceRuntime(WORKFLOW_ROUTER, settings)
    router = Router(runtime, ConfigView(runtime.db), clock)
    if settings.partitioned:
        _partitioned(runtime, router, settings)
        return runtime, router

    subjects = [runtime.subjects.events_matching(event_type=t) for t in ROUTING_EVENT_TYPES]

    @runtime.event_subscriber(
        durable=WORKFLOW_ROUTER, filter_subject=subjects, key_of=_routing_key,
        is_barrier=is_routing_barrier,
    )
    async def on_event(body: dict[str, Any]) -> None:
        await router.on_event(body)

    @runtime.on_ready
    async def start_routing() -> None:
        await runtime.db[c.ROUTING_POSITIONS].create_index("workspace_sid")
        await router.load()
        runtime.background(router.timers.run(), "routing-deadlines")
        runtime.background(router.resync(), "routing-resync")

    return runtime, router


def _partitioned(
    runtime: ServiceRuntime, router: Router, settings: RouterSettings
) -> None:
    """Wiring with workspaces split between replicas (see `partitioning`)."""
    routing = PartitionedRouting(runtime, settings, router, _routing_key)
    router.partitioning = routing

    @runtime.on_ready
    async def start_partitioned() -> None:
        await runtime.db[c.ROUTING_POSITIONS].create_index("workspace_sid")
        await ensure_routing_stream(settings)
        runtime.background(router.timers.run(), "routing-deadlines")
        await routing.leases.start()

    @runtime.on_stop
    async def hand_partitions_back() -> None:
        await routing.leases.stop()


def _routing_key(body: dict[str, Any]) -> str | None:
    """Events of one task in stream order; configuration events per workspace."""
    return (body.get("event_data") or {}).get("task_sid") or body.get("workspace_sid")
