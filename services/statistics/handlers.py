"""What the statistics service does with each batch of events and each query.

Events arrive in batches, in stream order. For each batch:
1. follow configuration changes (reload the workspace, recompute eligibility),
2. bring the real-time state up to date (idempotent, see `realtime`),
3. count the events not counted before into buckets, in one commit that also
   marks them seen (see `store`).
A failure in step 3 raises, so the whole batch is redelivered; steps 1-2 then
repeat harmlessly and step 3 skips what was already counted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from services.statistics.aggregates import ActivityInterval, BucketBatch
from services.statistics.queries import StatisticsQueries
from services.statistics.realtime import RealtimeState
from services.statistics.store import StatisticsStore
from shared.commands import StatisticsQuery
from shared.config_view import ConfigView, WorkspaceConfig, is_configuration_event
from shared.errors import ConflictError, DomainValidationError
from shared.events import Event

logger = logging.getLogger(__name__)

_COMMIT_ATTEMPTS = 3


class StatisticsHandlers:
    """Keeps the real-time state and the buckets current; answers queries."""

    def __init__(
        self,
        state: RealtimeState,
        store: StatisticsStore,
        config: ConfigView,
        clock: Callable[[], datetime],
    ) -> None:
        self.state = state
        self.store = store
        self.config = config
        self.queries = StatisticsQueries(state, store, config, clock)
        self._clock = clock
        self._closed_by_deletion: dict[str, ActivityInterval] = {}
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

    async def on_events(self, bodies: Sequence[dict[str, Any]]) -> None:
        """Follow and count a batch of event envelopes, in order."""
        events = [event for event in map(_parse_event, bodies) if event is not None]
        loaded: set[str] = set()
        for event in events:
            await self._follow_configuration(event, loaded)
            self._remember_deletion(event)
            self.state.apply_event(event)
        await self._count(events)
        for event in events:
            self._closed_by_deletion.pop(event.sid, None)

    async def on_query(self, body: dict[str, Any]) -> Any:
        """Answer one `StatisticsQuery`."""
        try:
            query = StatisticsQuery.model_validate(body)
        except ValidationError as exc:
            raise DomainValidationError(
                f"malformed statistics query: {exc.errors()[0]['msg']}"
            ) from None
        return await self.queries.answer(query)

    # -- steps -----------------------------------------------------------------------
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

    def _remember_deletion(self, event: Event) -> None:
        """A deleted worker's last activity interval ends with its deletion.

        Kept until the batch is counted: if the commit fails, the redelivered
        `worker.deleted` finds the worker already gone from the state.
        """
        if event.event_type != "worker.deleted":
            return
        worker = self.state.worker(event.workspace_sid, event.resource_sid)
        if worker is None:
            return
        self._closed_by_deletion[event.sid] = ActivityInterval(
            event.workspace_sid,
            worker.sid,
            worker.activity_sid,
            worker.activity_since,
            event.event_date,
            event.sid,
        )

    async def _count(self, events: list[Event]) -> None:
        """Count events not counted before; retry when a repeat raced in meanwhile."""
        for attempt in range(1, _COMMIT_ATTEMPTS + 1):
            unseen = await self.store.unseen(e.sid for e in events)
            batch = _bucket_batch(events, unseen, self._closed_by_deletion)
            try:
                await self.store.record(unseen, batch, self._clock())
                return
            except ConflictError:
                if attempt == _COMMIT_ATTEMPTS:
                    raise
                logger.warning("events counted meanwhile; counting the rest again")


def _bucket_batch(
    events: Iterable[Event], unseen: set[str], closed: dict[str, ActivityInterval]
) -> BucketBatch:
    batch = BucketBatch()
    counted: set[str] = set()
    for event in events:
        if event.sid not in unseen or event.sid in counted:
            continue
        counted.add(event.sid)
        batch.add_event(event)
        if event.sid in closed:
            batch.add_interval(closed[event.sid])
    return batch


def _parse_event(body: Any) -> Event | None:
    try:
        return Event.model_validate(body)
    except ValidationError:
        logger.warning("event envelope not understood; skipped")
        return None
