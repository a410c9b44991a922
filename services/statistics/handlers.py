"""What the statistics service does with each batch of events and each query.

Events arrive in batches, in stream order, as (stream sequence, envelope). For
each event not counted before (see `tally` for how repeats are recognised):
1. follow configuration changes (reload the workspace, recompute eligibility),
2. bring the real-time state up to date (idempotent, see `realtime`),
3. count it in memory; the tally writes the counts to the store periodically,
   at once when many wait, before a cumulative query, and at stop.

Nothing here raises, so the consumer never redelivers out of order: counting
by sequence needs every event handled in stream order. A step that fails
because the store is unreachable is retried (holding back later events) until
it succeeds; one that fails for any other reason is logged and the event is
counted without it.

TODO: a `worker.deleted` counted but not flushed before a crash loses the
worker's last activity interval: after the restart the snapshot no longer
holds the worker, so its time in its last activity is unknown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from pymongo.errors import ConnectionFailure

from services.statistics.aggregates import ActivityInterval
from services.statistics.queries import StatisticsQueries
from services.statistics.realtime import RealtimeState
from services.statistics.store import StatisticsStore
from services.statistics.tally import Tally
from shared.commands import StatisticsQuery
from shared.config_view import ConfigView, WorkspaceConfig, is_configuration_event
from shared.consumer import is_transient, retry_delay
from shared.errors import DomainValidationError
from shared.events import Event

logger = logging.getLogger(__name__)

# Back-off of a step retried while the store is unreachable (first, longest).
_RETRY_DELAYS = (0.5, 10.0)


class StatisticsHandlers:
    """Keeps the real-time state and the buckets current; answers queries."""

    def __init__(
        self,
        state: RealtimeState,
        store: StatisticsStore,
        config: ConfigView,
        clock: Callable[[], datetime],
        tally: Tally,
    ) -> None:
        self.state = state
        self.store = store
        self.config = config
        self.tally = tally
        self.queries = StatisticsQueries(state, store, config, clock)
        config.on_change(self._on_configuration_change)

    async def load(self) -> None:
        """Rebuild the real-time state from the store (at start)."""
        await self.store.ensure_indexes()
        await self.config.load_all()
        tasks = workers = 0
        async for task in self.store.open_tasks():
            self.state.load_task(task)
            tasks += 1
        async for worker in self.store.workers():
            self.state.load_worker(worker)
            workers += 1
        logger.info(
            "statistics state loaded", extra={"open_tasks": tasks, "workers": workers}
        )

    async def on_events(self, batch: Sequence[tuple[int, dict[str, Any]]]) -> None:
        """Follow and count a batch of (stream sequence, envelope), in order."""
        loaded: set[str] = set()
        for sequence, body in batch:
            if self.tally.is_counted(sequence):
                continue  # redelivered
            event = _parse_event(body)
            if event is None or self.tally.is_counted(sequence, event.sid):
                self.tally.pass_over(sequence)  # not understood, or published twice
                continue
            closed = await self._follow(event, loaded)
            self._count(sequence, event, closed)
        if self.tally.full:
            await self._flush_now()

    async def on_query(self, body: dict[str, Any]) -> Any:
        """Answer one `StatisticsQuery`; cumulative figures include every counted event."""
        try:
            query = StatisticsQuery.model_validate(body)
        except ValidationError as exc:
            raise DomainValidationError(
                f"malformed statistics query: {exc.errors()[0]['msg']}"
            ) from None
        if not is_realtime_only(query.route):
            await self.tally.flush()
        return await self.queries.answer(query)

    async def flush(self) -> None:
        """Write every counted event to the store (periodically and at stop)."""
        await self.tally.flush()

    # -- steps -----------------------------------------------------------------------
    def _count(self, sequence: int, event: Event, closed: ActivityInterval | None) -> None:
        """Step 3; an event whose figures cannot be computed is passed over, not raised."""
        try:
            self.tally.add(sequence, event, closed)
        except Exception:
            logger.exception(
                "event not counted",
                extra={"event_sid": event.sid, "event_type": event.event_type},
            )
            self.tally.pass_over(sequence)

    async def _flush_now(self) -> None:
        """Flush, holding back later events while the store is unreachable."""
        try:
            await _until_done(self.tally.flush, "flush of many pending events")
        except Exception:
            logger.exception("statistics flush failed; the events stay pending")

    async def _follow(self, event: Event, loaded: set[str]) -> ActivityInterval | None:
        """Steps 1 and 2 for one event; the activity interval a deletion closes."""
        try:
            await _until_done(
                lambda: self._follow_configuration(event, loaded), "configuration load"
            )
            closed = self._closed_by_deletion(event)
            self.state.apply_event(event)
            return closed
        except Exception:
            logger.exception(
                "event not followed; counted all the same",
                extra={"event_sid": event.sid, "event_type": event.event_type},
            )
            return None

    async def _follow_configuration(self, event: Event, loaded: set[str]) -> None:
        """Reload on configuration events; load a workspace first seen (once a batch,
        so events of a workspace that no longer exists do not each read the store)."""
        ws = event.workspace_sid
        if is_configuration_event(event.event_type):
            await self.config.refresh(ws)
        elif self.config.cached(ws) is None and ws not in loaded:
            await self.config.get(ws)
        loaded.add(ws)

    async def _on_configuration_change(
        self, workspace_sid: str, config: WorkspaceConfig | None
    ) -> None:
        if config is None:
            self.state.forget_workspace(workspace_sid)
            return
        targets = {sid: queue.target_workers for sid, queue in config.queues.items()}
        self.state.set_queues(workspace_sid, targets)

    def _closed_by_deletion(self, event: Event) -> ActivityInterval | None:
        """A deleted worker's last activity interval ends with its deletion."""
        if event.event_type != "worker.deleted":
            return None
        worker = self.state.worker(event.workspace_sid, event.resource_sid)
        if worker is None:
            return None
        return ActivityInterval(
            event.workspace_sid,
            worker.sid,
            worker.activity_sid,
            worker.activity_since,
            event.event_date,
            event.sid,
        )


def is_realtime_only(route: str) -> bool:
    """Routes answered from memory alone (no buckets, so no flush needed first)."""
    return route.endswith((".realtime", ".realtime_bulk"))


async def _until_done(step: Callable[[], Awaitable[None]], what: str) -> None:
    """Run `step`, again and again with back-off while the store is unreachable.

    This holds back the events after it, which is what keeps them in order; a
    failure that is not transient is raised. `ConnectionFailure` counts as
    transient too: the configuration view reads the store without translating
    its errors.
    """
    attempt = 1
    while True:
        try:
            await step()
            return
        except Exception as error:
            if not (is_transient(error) or isinstance(error, ConnectionFailure)):
                raise
            delay = retry_delay(attempt, *_RETRY_DELAYS)
            logger.warning(
                "%s failed; retrying",
                what,
                extra={"attempt": attempt, "reason": str(error)},
            )
            await asyncio.sleep(delay)
            attempt += 1


def _parse_event(body: Any) -> Event | None:
    try:
        return Event.model_validate(body)
    except ValidationError:
        logger.warning("event envelope not understood; skipped")
        return None
