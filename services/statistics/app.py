"""Wiring of the statistics service: one batched event consumer, one query handler."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.consumer import EventConsumer
from services.statistics.handlers import StatisticsHandlers
from services.statistics.realtime import RealtimeState
from services.statistics.settings import StatisticsSettings
from services.statistics.store import StatisticsStore
from shared.bus import command_reply
from shared.config_view import ConfigView
from shared.runtime import ServiceRuntime
from shared.subjects import STATISTICS
from shared.timers import system_clock

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
    store = StatisticsStore(
        runtime.db, runtime.committer, seen_retention=seen_retention
    )
    handlers = StatisticsHandlers(RealtimeState(), store, ConfigView(runtime.db), clock)
    # TODO: replicas share this durable consumer, so each sees only part of the
    # events; cumulative figures stay right, but real-time figures are only right
    # with one replica. Several replicas need a per-replica consumer for the state.
    consumer = EventConsumer(
        settings.nats_url,
        stream=runtime.subjects.event_stream,
        filter_subject=runtime.subjects.events_matching(),
        durable=STATISTICS,
        handler=handlers.on_events,
        batch_size=settings.event_batch_size,
        wait=settings.event_batch_wait,
    )

    @runtime.command_subscriber(QUERY_ACTION)
    @command_reply
    async def on_statistics_query(body: dict[str, Any]) -> Any:
        return await handlers.on_query(body)

    # The snapshot is loaded before consuming: events held back meanwhile wait in
    # the durable consumer, and the ones the snapshot already reflects are no-ops.
    @runtime.on_ready
    async def load_state() -> None:
        await handlers.load()
        await consumer.start()

    runtime.on_stop(consumer.stop)

    return StatisticsService(runtime, handlers)
