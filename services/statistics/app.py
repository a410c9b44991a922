"""Wiring of the statistics service: one batched event consumer, one query handler.

Counted events are kept in memory and flushed to the store periodically (see
`tally`); at start the consumer resumes right after the last flushed event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nats.js.errors import NotFoundError as JsNotFoundError

from services.statistics.handlers import StatisticsHandlers
from services.statistics.realtime import RealtimeState
from services.statistics.settings import StatisticsSettings
from services.statistics.store import StatisticsStore
from services.statistics.tally import Tally
from shared.bus import command_reply
from shared.config_view import ConfigView
from shared.consumer import EventConsumer
from shared.runtime import ServiceRuntime
from shared.subjects import STATISTICS
from shared.timers import system_clock

logger = logging.getLogger(__name__)

QUERY_ACTION = "statistics.query"


@dataclass
class StatisticsService:
    runtime: ServiceRuntime
    handlers: StatisticsHandlers
    consumer: EventConsumer


def build(
    settings: StatisticsSettings, clock: Callable[[], datetime] = system_clock
) -> StatisticsService:
    """The runtime with the statistics handlers registered (not started)."""
    runtime = ServiceRuntime(STATISTICS, settings)
    store = StatisticsStore(runtime.db, runtime.committer)
    tally = Tally(store, max_pending=settings.flush_events)
    handlers = StatisticsHandlers(
        RealtimeState(), store, ConfigView(runtime.db), clock, tally
    )
    # TODO: exactly one replica: the consumer is recreated at start from this
    # replica's progress, and real-time figures live in its memory. Several
    # replicas need a consumer and a progress per replica (and a way to share
    # the counting), not this durable consumer.
    consumer = EventConsumer(
        settings.nats_url,
        stream=runtime.subjects.event_stream,
        filter_subject=runtime.subjects.events_matching(),
        durable=STATISTICS,
        handler=handlers.on_events,
        batch_size=settings.event_batch_size,
        wait=settings.event_batch_wait,
        with_sequence=True,
    )

    @runtime.command_subscriber(QUERY_ACTION)
    @command_reply
    async def on_statistics_query(body: dict[str, Any]) -> Any:
        return await handlers.on_query(body)

    # The snapshot is loaded before consuming: events held back meanwhile wait in
    # the stream, and the ones the snapshot already reflects are no-ops.
    @runtime.on_ready
    async def load_state() -> None:
        await handlers.load()
        progress = await resume_point(runtime, store)
        tally.resume(progress)
        await consumer.start(from_sequence=progress + 1)
        runtime.background(
            tally.flush_periodically(settings.flush_seconds), "statistics-flush"
        )
        logger.info("statistics resumed", extra={"after_sequence": progress})

    runtime.on_stop(consumer.stop)
    runtime.on_stop(handlers.flush)  # after the consumer: nothing is counted later

    return StatisticsService(runtime, handlers, consumer)


async def resume_point(runtime: ServiceRuntime, store: StatisticsStore) -> int:
    """The stream sequence the buckets include, recorded as the progress.

    Before the first flush there is no progress: then it is what the durable
    consumer acknowledged (earlier versions counted an event before
    acknowledging it), or 0 for a new system. A progress beyond the end of the
    stream means the stream was created anew: counting starts at its start.
    """
    js = runtime.broker.connection.jetstream()
    stream = runtime.subjects.event_stream
    progress = await store.progress()
    if progress is None:
        try:
            info = await js.consumer_info(stream, STATISTICS)
            progress = info.ack_floor.stream_seq if info.ack_floor else 0
        except JsNotFoundError:
            progress = 0
    last = (await js.stream_info(stream)).state.last_seq
    if progress > last:
        logger.error(
            "statistics progress is beyond the event stream; counting from its start",
            extra={"progress": progress, "stream_last_sequence": last},
        )
        progress = 0
    await store.set_progress(progress)
    return progress
