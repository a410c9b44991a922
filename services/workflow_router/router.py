"""The workflow-router: walks each task through its workflow's routing steps.

It owns each task's routing position (filter, step, deadline). Most tasks
arrive already in their first step: the queue-dispatcher takes it while creating
the task (a plain queue step, no `skip_if`), and `task.created` names the queue;
the router makes the same choice again, records it and arms its deadline.
Otherwise, on `task.created` it picks the first step, records it, and tells the
queue-dispatcher to place the task in that step's queue (`task.route`); the
dispatcher answers whether it reserved a worker, is waiting, or the step was
skipped (`skip_if`). Deadlines
fire here, move the task on, and wait while a reservation is pending
(`deferred`), finishing the move when that reservation is rejected or times out.

Order of writes: a move that cannot be refused (entering, after a skip) is
recorded first and then sent; the dispatcher ignores a repeat of the same step
(`seq`), so a crash in between is healed by re-sending at start. A move that
may be deferred (timeout, re-evaluation) is sent first and recorded after; a
crash in between leaves the dispatcher ahead (`stale` answer), and the router
then replays the same deterministic move.

Decision: a step's `timeout` is compared with the task's age (seconds since
creation), so the timeouts of a filter's steps are cumulative, as in TaskRouter.
A step whose timeout has already passed when it is entered still gets one
matching attempt before the task moves on.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import orjson

from services.workflow_router import positions
from services.workflow_router.positions import PositionRecord
from shared.commands import RemoveTask, RouteTask
from shared.config_view import CONFIGURATION_EVENT_TYPES, ConfigView, is_configuration_event
from shared.errors import ConflictError
from shared.events import Event, make_event, target_matched_data, workflow_task_data
from shared.runtime import ServiceRuntime
from shared.storage import collections as c
from shared.subjects import QUEUE_DISPATCHER
from shared.timers import Clock, Timers, system_clock
from shared.workflow_config import RoutingTarget, WorkflowConfiguration
from shared.workflow_routing import (
    ParsedWorkflows,
    RoutingAction,
    RoutingDecision,
    enter_workflow,
    next_after_skip,
    next_after_timeout,
    step_fields,
    target_at,
    workflow_version,
)

logger = logging.getLogger(__name__)

_FINISHED = {"task.canceled", "task.completed", "task.deleted", "task.system-deleted"}
# Tasks whose routing ended, remembered so a late redelivery of their
# `task.created` does not record a position again (bounded; oldest forgotten).
FINISHED_REMEMBERED = 100_000
# A task.created handled this long after the task's creation is checked with the
# dispatcher before its first step is adopted silently.
LATE_ARRIVAL = timedelta(seconds=5)
_RESERVATION_ENDED = {"reservation.rejected", "reservation.timeout", "reservation.canceled"}
# Every event type `Router.on_event` acts on, as subject patterns: the router's
# consumer takes only these (a task's queue, workflow and worker events, most of
# the stream, are never delivered to it).
ROUTING_EVENT_TYPES = (
    "task.>",
    "reservation.accepted",
    *sorted(_RESERVATION_ENDED),
    *CONFIGURATION_EVENT_TYPES,
)


def is_routing_barrier(body: Mapping[str, Any]) -> bool:
    """Configuration events are handled after every event before them, before any after.

    Without this, a task created right after a workflow update could be routed with
    the configuration from before the update (events of different keys run at once).
    """
    return is_configuration_event(body.get("event_type", ""))


def _attributes(text: str | None) -> dict[str, Any]:
    try:
        value = orjson.loads(text or "{}")
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _same_first_step(decision: RoutingDecision, queue_sid: str) -> bool:
    target = decision.target
    return (
        decision.action is RoutingAction.ROUTE
        and target is not None
        and target.queue_sid == queue_sid
        and target.skip_if is None
    )


def _ms_to_datetime(value: Any, default: datetime) -> datetime:
    from datetime import UTC

    try:
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    except (TypeError, ValueError):
        return default


class Router:
    """Routing positions in memory, their deadlines, and the moves between steps."""

    def __init__(self, runtime: ServiceRuntime, view: ConfigView, clock: Clock = system_clock):
        self.runtime = runtime
        self.view = view
        self.clock = clock
        self.records: dict[str, PositionRecord] = {}
        self.timers: Timers[str] = Timers(self.on_deadline, clock)
        self._locks: dict[str, asyncio.Lock] = {}
        self._parsed = ParsedWorkflows()
        self._finished: OrderedDict[str, None] = OrderedDict()
        # Set by the partitioned wiring (`partitioning.PartitionedRouting`), for tests.
        self.partitioning: Any = None

    # -- start-up --------------------------------------------------------------
    async def load(self) -> None:
        """Read every position from the store and arm its deadline."""
        async for doc in self.runtime.db[c.ROUTING_POSITIONS].find({}):
            record = PositionRecord.model_validate(doc)
            self._remember(record)
        logger.info("routing positions loaded", extra={"count": len(self.records)})

    async def load_partition(self, workspace_sids: set[str]) -> int:
        """Take over the positions of some workspaces (one partition); returns how many.

        Cached configuration of these workspaces is read again: while another
        replica owned them this one saw none of their configuration events.
        """
        for config in self.view.all_cached():
            if config.workspace.sid in workspace_sids:
                await self.view.refresh(config.workspace.sid)
        where = {"workspace_sid": {"$in": sorted(workspace_sids)}}
        count = 0
        async for doc in self.runtime.db[c.ROUTING_POSITIONS].find(where):
            self._remember(PositionRecord.model_validate(doc))
            count += 1
        return count

    async def release_workspaces(self, inside: Callable[[str], bool]) -> None:
        """Forget the positions of workspaces `inside` (their partition moved away)."""
        for task_sid in [
            r.task_sid for r in self.records.values() if inside(r.workspace_sid)
        ]:
            async with self._lock(task_sid):
                self.records.pop(task_sid, None)
                self.timers.cancel(task_sid)
            self._locks.pop(task_sid, None)

    async def resync(self, inside: Callable[[str], bool] | None = None) -> None:
        """Re-send every current step (of the workspaces `inside`, if given).

        Heals a crash between recording a position and sending it.
        """
        for task_sid in list(self.records):
            record = self.records.get(task_sid)
            if record is None:
                continue
            if inside is not None and not inside(record.workspace_sid):
                continue
            async with self._lock(task_sid):
                record = self.records.get(task_sid)
                if record is not None and await self._send_current(record) == "gone":
                    await self._finish(task_sid)

    # -- events ------------------------------------------------------------------
    async def on_event(self, body: Mapping[str, Any]) -> None:
        """Dispatch one event from the stream. Idempotent: redelivery is harmless."""
        event_type = body["event_type"]
        data = body.get("event_data") or {}
        workspace_sid = body["workspace_sid"]
        if is_configuration_event(event_type):
            await self._on_configuration(event_type, workspace_sid, data)
            return
        task_sid = data.get("task_sid")
        if not task_sid:
            return
        async with self._lock(task_sid):
            if event_type == "task.created":
                await self._on_task_created(body, data)
            elif event_type in _FINISHED or event_type == "reservation.accepted":
                self._remember_finished(task_sid)
                await self._finish(task_sid)
            elif event_type in _RESERVATION_ENDED:
                await self._on_reservation_ended(task_sid)
            elif event_type == "task.updated":
                await self._on_task_updated(task_sid, data)

    async def _on_configuration(self, event_type: str, workspace_sid: str, data: Mapping[str, Any]) -> None:
        await self.view.refresh(workspace_sid)
        if event_type == "workspace.deleted":
            for record in [r for r in self.records.values() if r.workspace_sid == workspace_sid]:
                await self._finish(record.task_sid)
        elif event_type == "workflow.updated" and data.get("re_evaluate_tasks") == "true":
            affected = [r.task_sid for r in self.records.values() if r.workflow_sid == data.get("workflow_sid")]
            for task_sid in affected:
                async with self._lock(task_sid):
                    if (record := self.records.get(task_sid)) is not None:
                        await self._reevaluate(record)

    async def _on_task_created(self, body: Mapping[str, Any], data: Mapping[str, Any]) -> None:
        try:
            await self._enter(body, data)
        except ConflictError:
            # The first position exists already: recorded by a replica that owned
            # the workspace before and not loaded here. Go on from where it stands
            # instead of entering the workflow twice.
            stored = await self.runtime.db[c.ROUTING_POSITIONS].find_one({"_id": data["task_sid"]})
            if stored is None:
                raise
            self._remember(PositionRecord.model_validate(stored))
            await self._send_current(self.records[data["task_sid"]])

    async def _enter(self, body: Mapping[str, Any], data: Mapping[str, Any]) -> None:
        task_sid = data["task_sid"]
        if task_sid in self._finished:
            return  # a late redelivery: the task's routing has ended
        if task_sid in self.records:
            if await self._send_current(self.records[task_sid]) == "gone":
                await self._finish(task_sid)
            return
        # Every stored position is in memory (loaded before events are consumed),
        # so a task not in `records` has none: no store read here.
        now = self.clock()
        record = PositionRecord(
            task_sid=task_sid,
            account_sid=body["account_sid"],
            workspace_sid=body["workspace_sid"],
            workflow_sid=data.get("workflow_sid"),
            task_attributes=data.get("task_attributes") or "{}",
            task_channel_sid=data.get("task_channel_sid"),
            task_channel_unique_name=data.get("task_channel_unique_name"),
            task_created_at=_ms_to_datetime(data.get("task_date_created"), now),
            step_entered_at=now,
            ignore_capacity=None if data.get("task_ignore_capacity") is None
            else data.get("task_ignore_capacity") == "true",
        )
        target = data.get("task_routing_target") or ""
        if target.startswith("WQ") or target.startswith("WK"):
            await self._enter_direct(record, target)
            return
        if data.get("task_queue_sid"):
            await self._adopt_first_step(record, data["task_queue_sid"], data.get("workflow_date_updated"))
            return
        decision = await self._decide(record, lambda cfg: enter_workflow(cfg, _attributes(record.task_attributes), now))
        await self._move(record, decision, cause="entered", defer=False)

    async def _adopt_first_step(self, record: PositionRecord, queue_sid: str, used: Any) -> None:
        """The dispatcher took the first step at creation: record it, send nothing.

        `used` names the workflow version the dispatcher chose with (its
        `date_updated` in epoch ms, from `task.created`). With the same version
        the same choice is made here from the same attributes at the same moment
        (the task's creation), so only the position and deadline are recorded.
        With another version (a workflow update reached the dispatcher late), the
        task is re-evaluated as `ReEvaluateTasks` would: moved to this
        configuration's step, after any pending reservation has ended.
        """
        at = record.task_created_at
        attributes = _attributes(record.task_attributes)
        entered = record.model_copy(update={"seq": 1, "queue_sid": queue_sid, "step_entered_at": at})
        used_ms = _int_or_none(used)
        mine = await self._workflow_version(record)
        if mine != used_ms:
            await self.view.refresh(record.workspace_sid)
            mine = await self._workflow_version(record)
        decision = await self._decide(entered, lambda cfg: enter_workflow(cfg, attributes, at))
        if used_ms is None or mine != used_ms or not _same_first_step(decision, queue_sid):
            logger.info(
                "first step taken at creation with another workflow version; re-evaluating",
                extra={"task_sid": record.task_sid, "used": used_ms, "current": mine},
            )
            # Nothing is recorded before the move: if it fails, the redelivered
            # task.created comes here again.
            await self._reevaluate(entered)
            return
        assert decision.position is not None and decision.target is not None
        await self._save(
            entered.model_copy(
                update={
                    "filter_index": decision.position.filter_index,
                    "step_index": decision.position.step_index,
                    "default_filter_allowed": decision.position.default_filter_allowed,
                    "deadline": self._deadline(entered, decision.target),
                }
            ),
            first=True,
        )
        if self.clock() - at > LATE_ARRIVAL:
            # Perhaps a late redelivery after a restart: the task may have finished
            # meanwhile. Re-sending the step is a no-op for a live task, and the
            # dispatcher answers "gone" for a finished one.
            if await self._send_current(self.records[record.task_sid]) == "gone":
                await self._finish(record.task_sid)

    async def _workflow_version(self, record: PositionRecord) -> int | None:
        """This replica's version of the task's workflow: `date_updated` in epoch ms."""
        config = await self.view.get(record.workspace_sid)
        workflow = None if config is None else config.workflows.get(record.workflow_sid or "")
        return None if workflow is None else workflow_version(workflow.date_updated)

    def _remember_finished(self, task_sid: str) -> None:
        self._finished[task_sid] = None
        self._finished.move_to_end(task_sid)
        while len(self._finished) > FINISHED_REMEMBERED:
            self._finished.popitem(last=False)

    async def _on_reservation_ended(self, task_sid: str) -> None:
        record = self.records.get(task_sid)
        if record is not None and record.overdue:
            if record.reenter:
                await self._reevaluate(record)
            else:
                await self._on_deadline_locked(record)

    async def _on_task_updated(self, task_sid: str, data: Mapping[str, Any]) -> None:
        record = self.records.get(task_sid)
        attributes = data.get("task_attributes")
        if record is None or attributes is None or attributes == record.task_attributes:
            return
        # Recorded with the move only: if the move fails, the redelivered event
        # still sees new attributes and tries again.
        await self._reevaluate(record.model_copy(update={"task_attributes": attributes}))

    # -- deadlines ---------------------------------------------------------------
    async def on_deadline(self, task_sid: str) -> None:
        async with self._lock(task_sid):
            record = self.records.get(task_sid)
            # An overdue record waits for its pending reservation to end; that
            # decides the next move (a late timer must not replace it).
            if (
                record is not None
                and not record.overdue
                and record.deadline is not None
                and record.deadline <= self.clock()
            ):
                await self._on_deadline_locked(record)

    async def _on_deadline_locked(self, record: PositionRecord) -> None:
        now = self.clock()
        if record.is_direct:
            return  # a direct target waits for acceptance or the task TTL
        attributes = _attributes(record.task_attributes)
        decision = await self._decide(record, lambda cfg: next_after_timeout(cfg, record.position, attributes, now))
        await self._move(record, decision, cause="timeout", defer=True)

    # -- moves ---------------------------------------------------------------------
    async def _reevaluate(self, record: PositionRecord) -> None:
        if record.is_direct:
            return
        now = self.clock()
        attributes = _attributes(record.task_attributes)
        decision = await self._decide(record, lambda cfg: enter_workflow(cfg, attributes, now))
        await self._move(record, decision, cause="reevaluated", defer=True)

    async def _decide(self, record: PositionRecord, choose) -> RoutingDecision:
        config = await self._configuration(record.workspace_sid, record.workflow_sid)
        if config is None:
            return RoutingDecision(
                RoutingAction.REMOVE, reason="Task canceled on Workflow timeout", event_type="workflow.timeout"
            )
        try:
            return choose(config)
        except ValueError:
            # The position belongs to an older configuration: start the walk again.
            now = self.clock()
            return enter_workflow(config, _attributes(record.task_attributes), now)

    async def _move(self, record: PositionRecord, decision: RoutingDecision, *, cause: str, defer: bool) -> None:
        if decision.action is RoutingAction.REMOVE:
            await self._remove(record, decision, defer=defer, reenter=cause == "reevaluated")
            return
        assert decision.position is not None and decision.target is not None
        target = decision.target
        moved = record.model_copy(
            update={
                "seq": record.seq + 1,
                "filter_index": decision.position.filter_index,
                "step_index": decision.position.step_index,
                "step_entered_at": decision.position.step_entered_at,
                "default_filter_allowed": decision.position.default_filter_allowed,
                "queue_sid": target.queue_sid,
                "deadline": self._deadline(record, target),
                "overdue": False,
                "reenter": False,
            }
        )
        events = self._move_events(record, moved, decision, cause)
        if defer:
            outcome = await self._send(moved, target, defer=True)
            if outcome == "deferred":
                reenter = cause == "reevaluated"
                await self._save(record.model_copy(update={"overdue": True, "reenter": reenter}))
                return
            await self._save(moved, events)
        else:
            await self._save(moved, events, first=cause == "entered")
            outcome = await self._send(moved, target, defer=False)
        await self._after_send(moved, outcome)

    async def _after_send(self, record: PositionRecord, outcome: str) -> None:
        if outcome == "skipped":
            now = self.clock()
            attributes = _attributes(record.task_attributes)
            decision = await self._decide(record, lambda cfg: next_after_skip(cfg, record.position, attributes, now))
            await self._move(record, decision, cause="skipped", defer=False)
        elif outcome == "gone":
            await self._finish(record.task_sid)
        elif outcome == "stale":
            logger.warning("dispatcher is ahead of the routing position", extra={"task_sid": record.task_sid})

    async def _remove(
        self, record: PositionRecord, decision: RoutingDecision, *, defer: bool, reenter: bool = False
    ) -> None:
        command = RemoveTask(
            account_sid=record.account_sid,
            workspace_sid=record.workspace_sid,
            task_sid=record.task_sid,
            reason=decision.reason or "Task canceled on Workflow timeout",
            defer_if_reserved=defer,
            seq=record.seq + 1,
        )
        result = await self.runtime.commands.request(
            QUEUE_DISPATCHER, command.action, command.model_dump(mode="json"), workspace_sid=record.workspace_sid
        )
        if (result or {}).get("outcome") == "deferred":
            await self._save(record.model_copy(update={"overdue": True, "reenter": reenter}))
            return
        event = self._event(record, decision.event_type or "workflow.timeout", {"reason": decision.reason})
        await self.runtime.committer.commit([positions.forget(record.task_sid)], [event])
        self._drop(record.task_sid)

    async def _enter_direct(self, record: PositionRecord, target: str) -> None:
        field = "direct_queue_sid" if target.startswith("WQ") else "direct_worker_sid"
        record = record.model_copy(update={field: target, "queue_sid": target if field == "direct_queue_sid" else None})
        await self._save(record.model_copy(update={"seq": 1}), first=True)
        outcome = await self._send_current(self.records[record.task_sid])
        if outcome == "gone":
            await self._finish(record.task_sid)

    async def _finish(self, task_sid: str) -> None:
        if task_sid not in self.records:
            return
        await self.runtime.committer.commit([positions.forget(task_sid)])
        self._drop(task_sid)

    # -- sending -----------------------------------------------------------------
    async def _send_current(self, record: PositionRecord) -> str:
        if record.is_direct:
            target = RoutingTarget(queue_sid=record.direct_queue_sid or "")
            return await self._send(record, target, defer=False)
        config = await self._configuration(record.workspace_sid, record.workflow_sid)
        if config is None:
            return "gone"
        try:
            target = target_at(config, record.position)
        except ValueError:
            return "stale"
        return await self._send(record, target, defer=record.overdue)

    async def _send(self, record: PositionRecord, target: RoutingTarget, *, defer: bool) -> str:
        command = RouteTask(
            account_sid=record.account_sid,
            workspace_sid=record.workspace_sid,
            task_sid=record.task_sid,
            workflow_sid=record.workflow_sid or "",
            step_key=f"{record.task_sid}:{record.seq}",
            seq=record.seq,
            **step_fields(target),
            defer_if_reserved=defer,
            target_worker_sid=record.direct_worker_sid,
            ignore_capacity=record.ignore_capacity,
        )
        result = await self.runtime.commands.request(
            QUEUE_DISPATCHER, command.action, command.model_dump(mode="json"), workspace_sid=record.workspace_sid
        )
        return (result or {}).get("outcome", "waiting")

    # -- bookkeeping ---------------------------------------------------------------
    async def _save(self, record: PositionRecord, events: list[Event] | None = None, *, first: bool = False) -> None:
        """Record a position; `first` for a task's first one (an insert, cheaper than an upsert)."""
        write = positions.insert(record) if first else positions.save(record)
        await self.runtime.committer.commit([write], events or [])
        self._remember(record)

    def _remember(self, record: PositionRecord) -> None:
        self.records[record.task_sid] = record
        if record.deadline is not None and not record.overdue:
            self.timers.schedule(record.task_sid, record.deadline)
        else:
            self.timers.cancel(record.task_sid)

    def _drop(self, task_sid: str) -> None:
        self.records.pop(task_sid, None)
        self.timers.cancel(task_sid)
        self._locks.pop(task_sid, None)

    def _lock(self, task_sid: str) -> asyncio.Lock:
        return self._locks.setdefault(task_sid, asyncio.Lock())

    def _deadline(self, record: PositionRecord, target: RoutingTarget) -> datetime | None:
        if target.timeout is None:
            return None
        return max(record.task_created_at + timedelta(seconds=target.timeout), self.clock())

    async def _configuration(self, workspace_sid: str, workflow_sid: str | None) -> WorkflowConfiguration | None:
        config = await self.view.get(workspace_sid)
        workflow = None if config is None or workflow_sid is None else config.workflows.get(workflow_sid)
        if workflow is None and workflow_sid is not None:
            # A task can arrive before the event of its just-created workflow:
            # read through to the store before concluding the workflow is gone.
            config = await self.view.refresh(workspace_sid)
            workflow = None if config is None else config.workflows.get(workflow_sid)
        if workflow is None:
            return None
        return self._parsed.get(workflow.sid, workflow.date_updated, workflow.configuration)

    def _event(self, record: PositionRecord, event_type: str, extra: Mapping[str, Any] | None = None) -> Event:
        workflow_name = None
        config = self.view.cached(record.workspace_sid)
        if config is not None and record.workflow_sid in config.workflows:
            workflow_name = config.workflows[record.workflow_sid].friendly_name
        data = workflow_task_data(
            task_sid=record.task_sid,
            task_attributes=record.task_attributes,
            workflow_sid=record.workflow_sid,
            workflow_name=workflow_name,
            task_queue_sid=record.queue_sid,
            task_channel_sid=record.task_channel_sid,
            task_channel_unique_name=record.task_channel_unique_name,
            task_date_created=record.task_created_at,
        )
        data.update({k: v for k, v in (extra or {}).items() if v is not None})
        return make_event(
            event_type,
            account_sid=record.account_sid,
            workspace_sid=record.workspace_sid,
            resource_type="task",
            resource_sid=record.task_sid,
            at=self.clock(),
            description=f"Task {record.task_sid} {event_type}",
            data=data,
        )

    def _move_events(self, old: PositionRecord, new: PositionRecord, decision: RoutingDecision, cause: str) -> list[Event]:
        events = []
        if cause in ("entered", "reevaluated"):
            # The walk starts again from the first filter (workflows.md §3: on
            # create, on ReEvaluateTasks and on a re-route by new attributes).
            events.append(self._event(new, "workflow.entered"))
        if cause == "timeout" and old.queue_sid:
            events.append(self._event(old, "task-queue.timeout"))
        matched = target_matched_data(new.filter_index, decision.filter_friendly_name, new.step_index)
        events.append(self._event(new, "workflow.target-matched", matched))
        return events
