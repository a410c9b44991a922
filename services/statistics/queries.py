"""Answers to `StatisticsQuery` commands, one method per route.

Real-time figures come from `RealtimeState`; cumulative ones from the buckets and
activity intervals in the store. Answers carry the contract's fields for the route
except `url`, which the gateway adds (it knows the public base URL).

Decisions on points the specification leaves open:
- `TaskChannel` (SID or unique name) restricts tasks and reservations to that
  channel; for queue availability a worker counts only if its channel on that task
  channel is available with capacity above 0. Worker counts by activity ignore it.
- `FriendlyName` (task queues and workers) matches exactly, case-sensitively.
- `TaskQueueSid`/`TaskQueueName` of an unknown queue select no workers (zeros).
- Activity durations of many workers: per activity, each worker's time in it
  within the window, then avg/min/max over the workers with any such time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.statistics import aggregates as agg
from services.statistics import reports
from services.statistics.aggregates import Delta
from services.statistics.params import bulk_queue_sids, channel_sid, parse_thresholds
from services.statistics.realtime import OpenTask, RealtimeState, WorkerState
from services.statistics.store import StatisticsStore
from services.statistics.windows import Window, parse_window
from shared.commands import StatisticsQuery
from shared.config_view import ConfigView, WorkspaceConfig
from shared.errors import DomainValidationError, NotFoundError
from shared.models import Activity

Clock = Callable[[], datetime]


@dataclass
class _Context:
    """One query, resolved: its workspace configuration, time and parameters."""

    query: StatisticsQuery
    config: WorkspaceConfig
    now: datetime
    channel_sid: str | None

    @property
    def workspace_sid(self) -> str:
        return self.config.workspace.sid

    @property
    def params(self) -> dict[str, Any]:
        return self.query.params

    @property
    def ids(self) -> dict[str, str]:
        return {
            "account_sid": self.config.workspace.account_sid,
            "workspace_sid": self.workspace_sid,
        }

    @property
    def activities(self) -> list[Activity]:
        return sorted(
            self.config.activities.values(), key=lambda a: (a.date_created, a.sid)
        )

    def window(self) -> Window:
        return parse_window(self.params, self.now)

    def thresholds(self) -> list[int] | None:
        return parse_thresholds(self.params.get("split_by_wait_time"))


class StatisticsQueries:
    """Answers every statistics route from memory and the store."""

    def __init__(
        self,
        state: RealtimeState,
        store: StatisticsStore,
        config: ConfigView,
        clock: Clock,
    ) -> None:
        self._state = state
        self._store = store
        self._config = config
        self._clock = clock
        self._routes = {
            "workspace": self._workspace,
            "workspace.realtime": self._workspace_realtime,
            "workspace.cumulative": self._workspace_cumulative,
            "task_queue": self._task_queue,
            "task_queue.realtime": self._task_queue_realtime,
            "task_queue.cumulative": self._task_queue_cumulative,
            "task_queues": self._task_queues,
            "task_queues.realtime_bulk": self._task_queues_bulk,
            "workers": self._workers,
            "workers.realtime": self._workers_realtime,
            "workers.cumulative": self._workers_cumulative,
            "worker": self._worker,
            "workflow": self._workflow,
            "workflow.realtime": self._workflow_realtime,
            "workflow.cumulative": self._workflow_cumulative,
        }

    async def answer(self, query: StatisticsQuery) -> Any:
        """The answer to one query; NotFoundError or DomainValidationError otherwise."""
        route = self._routes.get(query.route)
        if route is None:
            raise DomainValidationError(f"unknown statistics route {query.route!r}")
        context = await self._context(query)
        return await route(context)

    async def _context(self, query: StatisticsQuery) -> _Context:
        config = await self._config.get(query.workspace_sid)
        if config is None or config.workspace.account_sid != query.account_sid:
            raise NotFoundError("Workspace", query.workspace_sid)
        channel = channel_sid(config, query.params.get("task_channel"))
        return _Context(query, config, self._clock(), channel)

    # -- workspace -------------------------------------------------------------------
    async def _workspace(self, ctx: _Context) -> dict[str, Any]:
        return {
            **ctx.ids,
            "cumulative": await self._workspace_cumulative_figures(ctx),
            "realtime": self._workspace_realtime_figures(ctx),
        }

    async def _workspace_realtime(self, ctx: _Context) -> dict[str, Any]:
        return {**ctx.ids, **self._workspace_realtime_figures(ctx)}

    async def _workspace_cumulative(self, ctx: _Context) -> dict[str, Any]:
        return {**ctx.ids, **await self._workspace_cumulative_figures(ctx)}

    def _workspace_realtime_figures(self, ctx: _Context) -> dict[str, Any]:
        workers = self._state.workers(ctx.workspace_sid).values()
        figures = reports.task_figures(self._tasks(ctx), ctx.now)
        figures["total_workers"] = len(workers)
        figures["activity_statistics"] = reports.activity_statistics(
            workers, ctx.activities
        )
        return figures

    async def _workspace_cumulative_figures(self, ctx: _Context) -> dict[str, Any]:
        window = ctx.window()
        sums = await self._store.sum_buckets(
            ctx.workspace_sid, agg.WORKSPACE, window, channel_sid=ctx.channel_sid
        )
        totals = sums.get(ctx.workspace_sid) or Delta()
        return reports.cumulative_figures(
            totals, reports.WORKSPACE_SHAPE, window, ctx.thresholds()
        )

    # -- task queues -----------------------------------------------------------------
    async def _task_queue(self, ctx: _Context) -> dict[str, Any]:
        queue_sid = self._queue_sid(ctx)
        window = ctx.window()
        sums = await self._queue_sums(ctx, window, [queue_sid])
        return self._queue_combined(ctx, queue_sid, window, sums)

    async def _task_queue_realtime(self, ctx: _Context) -> dict[str, Any]:
        queue_sid = self._queue_sid(ctx)
        return {
            **ctx.ids,
            "task_queue_sid": queue_sid,
            **self._queue_realtime(ctx, queue_sid),
        }

    async def _task_queue_cumulative(self, ctx: _Context) -> dict[str, Any]:
        queue_sid = self._queue_sid(ctx)
        window = ctx.window()
        sums = await self._queue_sums(ctx, window, [queue_sid])
        figures = self._queue_cumulative(ctx, sums.get(queue_sid), window)
        return {**ctx.ids, "task_queue_sid": queue_sid, **figures}

    async def _task_queues(self, ctx: _Context) -> list[dict[str, Any]]:
        """Combined statistics of every queue, or of those named `friendly_name`."""
        name = ctx.params.get("friendly_name")
        queues = sorted(
            ctx.config.queues.values(), key=lambda q: (q.date_created, q.sid)
        )
        sids = [q.sid for q in queues if name in (None, "") or q.friendly_name == name]
        window = ctx.window()
        sums = await self._queue_sums(ctx, window, sids) if sids else {}
        return [self._queue_combined(ctx, sid, window, sums) for sid in sids]

    async def _task_queues_bulk(self, ctx: _Context) -> dict[str, Any]:
        sids = bulk_queue_sids(ctx.params.get("queue_sids"))
        data = []
        for sid in sids:
            figures = self._queue_realtime(ctx, sid)
            figures.pop("longest_relative_task_age_in_queue")
            figures.pop("longest_relative_task_sid_in_queue")
            data.append({"task_queue_sid": sid, **figures})
        return {
            **ctx.ids,
            "task_queue_data": data,
            "task_queue_response_count": len(data),
        }

    def _queue_sid(self, ctx: _Context) -> str:
        sid = ctx.query.resource_sid or ctx.params.get("task_queue_sid") or ""
        if sid not in ctx.config.queues:
            raise NotFoundError("TaskQueue", sid)
        return sid

    async def _queue_sums(
        self, ctx: _Context, window: Window, sids: Sequence[str]
    ) -> dict[str, Delta]:
        return await self._store.sum_buckets(
            ctx.workspace_sid,
            agg.TASK_QUEUE,
            window,
            scope_sids=sids,
            channel_sid=ctx.channel_sid,
        )

    def _queue_combined(
        self, ctx: _Context, queue_sid: str, window: Window, sums: dict[str, Delta]
    ) -> dict[str, Any]:
        return {
            **ctx.ids,
            "task_queue_sid": queue_sid,
            "cumulative": self._queue_cumulative(ctx, sums.get(queue_sid), window),
            "realtime": self._queue_realtime(ctx, queue_sid),
        }

    def _queue_cumulative(
        self, ctx: _Context, totals: Delta | None, window: Window
    ) -> dict[str, Any]:
        return reports.cumulative_figures(
            totals or Delta(), reports.TASK_QUEUE_SHAPE, window, ctx.thresholds()
        )

    def _queue_realtime(self, ctx: _Context, queue_sid: str) -> dict[str, Any]:
        tasks = (t for t in self._tasks(ctx) if t.queue_sid == queue_sid)
        figures = reports.task_figures(tasks, ctx.now, in_queue=True)
        eligible = self._eligible(ctx, queue_sid)
        figures["total_eligible_workers"] = len(eligible)
        figures["total_available_workers"] = reports.available_workers(
            eligible, ctx.activities, ctx.channel_sid
        )
        figures["activity_statistics"] = reports.activity_statistics(
            eligible, ctx.activities
        )
        return figures

    def _eligible(self, ctx: _Context, queue_sid: str) -> list[WorkerState]:
        workers = self._state.workers(ctx.workspace_sid)
        sids = self._state.eligible_workers(ctx.workspace_sid, queue_sid)
        return [workers[sid] for sid in sids if sid in workers]

    # -- workflows -------------------------------------------------------------------
    async def _workflow(self, ctx: _Context) -> dict[str, Any]:
        workflow_sid = self._workflow_sid(ctx)
        return {
            **ctx.ids,
            "workflow_sid": workflow_sid,
            "cumulative": await self._workflow_cumulative_figures(ctx, workflow_sid),
            "realtime": self._workflow_realtime_figures(ctx, workflow_sid),
        }

    async def _workflow_realtime(self, ctx: _Context) -> dict[str, Any]:
        workflow_sid = self._workflow_sid(ctx)
        figures = self._workflow_realtime_figures(ctx, workflow_sid)
        return {**ctx.ids, "workflow_sid": workflow_sid, **figures}

    async def _workflow_cumulative(self, ctx: _Context) -> dict[str, Any]:
        workflow_sid = self._workflow_sid(ctx)
        figures = await self._workflow_cumulative_figures(ctx, workflow_sid)
        return {**ctx.ids, "workflow_sid": workflow_sid, **figures}

    def _workflow_sid(self, ctx: _Context) -> str:
        sid = ctx.query.resource_sid or ""
        if sid not in ctx.config.workflows:
            raise NotFoundError("Workflow", sid)
        return sid

    def _workflow_realtime_figures(
        self, ctx: _Context, workflow_sid: str
    ) -> dict[str, Any]:
        tasks = (t for t in self._tasks(ctx) if t.workflow_sid == workflow_sid)
        return reports.task_figures(tasks, ctx.now)

    async def _workflow_cumulative_figures(
        self, ctx: _Context, workflow_sid: str
    ) -> dict[str, Any]:
        window = ctx.window()
        sums = await self._store.sum_buckets(
            ctx.workspace_sid,
            agg.WORKFLOW,
            window,
            scope_sids=[workflow_sid],
            channel_sid=ctx.channel_sid,
        )
        totals = sums.get(workflow_sid) or Delta()
        return reports.cumulative_figures(
            totals, reports.WORKFLOW_SHAPE, window, ctx.thresholds()
        )

    # -- workers ---------------------------------------------------------------------
    async def _workers(self, ctx: _Context) -> dict[str, Any]:
        selected = self._selected_workers(ctx)
        return {
            **ctx.ids,
            "cumulative": await self._workers_cumulative_figures(ctx, selected),
            "realtime": self._workers_realtime_figures(ctx, selected),
        }

    async def _workers_realtime(self, ctx: _Context) -> dict[str, Any]:
        return {**ctx.ids, **self._workers_realtime_figures(ctx, None)}

    async def _workers_cumulative(self, ctx: _Context) -> dict[str, Any]:
        return {**ctx.ids, **await self._workers_cumulative_figures(ctx, None)}

    async def _worker(self, ctx: _Context) -> dict[str, Any]:
        worker_sid = ctx.query.resource_sid or ""
        worker = self._state.worker(ctx.workspace_sid, worker_sid)
        if worker is None:
            raise NotFoundError("Worker", worker_sid)
        window = ctx.window()
        sums = await self._store.sum_buckets(
            ctx.workspace_sid,
            agg.WORKER,
            window,
            scope_sids=[worker_sid],
            channel_sid=ctx.channel_sid,
        )
        intervals = await self._store.intervals(ctx.workspace_sid, window, [worker_sid])
        intervals += reports.open_intervals([worker], ctx.now)
        cumulative = {
            "start_time": window.start_time,
            "end_time": window.end_time,
            **reports.reservation_figures(sums.get(worker_sid) or Delta()),
            "activity_durations": reports.worker_activity_durations(
                intervals, ctx.activities, window
            ),
        }
        return {**ctx.ids, "worker_sid": worker_sid, "cumulative": cumulative}

    def _workers_realtime_figures(
        self, ctx: _Context, selected: list[WorkerState] | None
    ) -> dict[str, Any]:
        workers = selected if selected is not None else self._all_workers(ctx)
        return {
            "total_workers": len(workers),
            "activity_statistics": reports.activity_statistics(workers, ctx.activities),
        }

    async def _workers_cumulative_figures(
        self, ctx: _Context, selected: list[WorkerState] | None
    ) -> dict[str, Any]:
        window = ctx.window()
        if selected is None:
            sums = await self._store.sum_buckets(
                ctx.workspace_sid, agg.WORKSPACE, window, channel_sid=ctx.channel_sid
            )
            intervals = await self._store.intervals(ctx.workspace_sid, window)
            workers = self._all_workers(ctx)
        else:
            sids = [w.sid for w in selected]
            sums = await self._store.sum_buckets(
                ctx.workspace_sid,
                agg.WORKER,
                window,
                scope_sids=sids,
                channel_sid=ctx.channel_sid,
            )
            intervals = await self._store.intervals(ctx.workspace_sid, window, sids)
            workers = selected
        totals = Delta()
        for delta in sums.values():
            totals.merge(delta)
        intervals += reports.open_intervals(workers, ctx.now)
        return {
            "start_time": window.start_time,
            "end_time": window.end_time,
            **reports.reservation_figures(totals),
            "activity_durations": reports.workers_activity_durations(
                intervals, ctx.activities, window
            ),
        }

    def _selected_workers(self, ctx: _Context) -> list[WorkerState] | None:
        """Workers picked by FriendlyName / TaskQueueSid / TaskQueueName; None = all."""
        name = ctx.params.get("friendly_name")
        queue_sid = ctx.params.get("task_queue_sid")
        queue_name = ctx.params.get("task_queue_name")
        if not (name or queue_sid or queue_name):
            return None
        workers: Iterable[WorkerState] = self._all_workers(ctx)
        if name:
            workers = [w for w in workers if w.friendly_name == name]
        if queue_sid:
            eligible = self._state.eligible_workers(ctx.workspace_sid, queue_sid)
            workers = [w for w in workers if w.sid in eligible]
        if queue_name:
            named = [
                q.sid
                for q in ctx.config.queues.values()
                if q.friendly_name == queue_name
            ]
            eligible = set().union(
                *(self._state.eligible_workers(ctx.workspace_sid, sid) for sid in named)
            )
            workers = [w for w in workers if w.sid in eligible]
        return list(workers)

    # -- shared -----------------------------------------------------------------------
    def _all_workers(self, ctx: _Context) -> list[WorkerState]:
        workers = self._state.workers(ctx.workspace_sid).values()
        return sorted(workers, key=lambda w: w.sid)

    def _tasks(self, ctx: _Context) -> Iterable[OpenTask]:
        # TODO: real-time task figures scan the workspace's open tasks on every query;
        # a workspace with hundreds of thousands of open tasks answers slowly.
        tasks = self._state.tasks(ctx.workspace_sid)
        if ctx.channel_sid is None:
            return tasks
        return [t for t in tasks if t.channel_sid == ctx.channel_sid]
