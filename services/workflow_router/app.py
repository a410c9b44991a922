"""Wiring of the workflow-router: one event consumer, the deadline loop."""

from __future__ import annotations

from typing import Any

from services.workflow_router.router import Router
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

    @runtime.event_subscriber(durable=WORKFLOW_ROUTER)
    async def on_event(body: dict[str, Any]) -> None:
        await router.on_event(body)

    @runtime.on_ready
    async def start_routing() -> None:
        await runtime.db[c.ROUTING_POSITIONS].create_index("workspace_sid")
        await router.load()
        runtime.background(router.timers.run(), "routing-deadlines")
        runtime.background(router.resync(), "routing-resync")

    return runtime, router
