"""Wiring of the statistics service: one batched event consumer, one query handler."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from faststream import AckPolicy
from faststream.nats import JStream, PullSub

from shared.bus import command_reply
from shared.config_view import ConfigView
from shared.runtime import ServiceRuntime
from shared.subjects import STATISTICS
from shared.timers import system_clock

from services.statistics.handlers import StatisticsHandlers
from services.statistics.realtime import RealtimeState
from services.statistics.settings import StatisticsSettings
from services.statistics.store import StatisticsStore

QUERY_ACTION = "statistics.query"


@dataclass
class StatisticsService:
    runtime: ServiceRuntime
    handlers: StatisticsHandlers


def build(
    settings: StatisticsSettings, clock: Callable[[], datetime] = system_clock
) -> StatisticsService:
    """The runtime with the statistics handlers registered (not started)."""
    runtime = ServiceRuntime(STATISTICS, settings)
    seen_retention = timedelta(days=settings.event_stream_max_age_days + 1)
    store = StatisticsStore(runtime.db, runtime.committer, seen_retention=seen_retention)
    handlers = StatisticsHandlers(RealtimeState(), store, ConfigView(runtime.db), clock)
    loaded = asyncio.Event()

    # NOTE: a batched pull consumer, not `runtime.event_subscriber`: counting a whole
    # batch in one commit is what keeps up with the stream, and NACK_ON_ERROR makes
    # a failed batch come back (the default policy would terminate it).
    @runtime.broker.subscriber(
        runtime.subjects.events_matching(),
        stream=JStream(runtime.subjects.event_stream, declare=False),
        durable=STATISTICS,
        pull_sub=PullSub(
            batch_size=settings.event_batch_size, timeout=settings.event_batch_wait, batch=True
        ),
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )
    async def on_events(bodies: list[dict[str, Any]]) -> None:
        await loaded.wait()
        await handlers.on_events(bodies)

    @runtime.command_subscriber(QUERY_ACTION)
    @command_reply
    async def on_statistics_query(body: dict[str, Any]) -> Any:
        return await handlers.on_query(body)

    @runtime.on_ready
    async def load_state() -> None:
        await handlers.load()
        loaded.set()

    return StatisticsService(runtime, handlers)
