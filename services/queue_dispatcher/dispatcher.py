"""The dispatcher's engine room: one writer per workspace, commits, timers, reloads.

Every change of a workspace runs as a *decision* under that workspace's lock:
the decision reads and changes the in-memory state, records its writes and
events in a `Unit`, runs the matching passes it asked for, and hands the unit
to the committer. The lock is released as soon as the unit is queued, so the
next decision of the workspace can run while the store writes the previous
one; the command is answered only once its own commit is durable.

NOTE: a decision may therefore read state that a previous, still uncommitted
decision produced. If that commit fails, every later write that depends on it
fails too (their version filters no longer match), and the workspace is
reloaded from the store before its next decision; a command is never answered
as done unless its commit succeeded.

Replicas: by default one dispatcher replica is assumed (commands reach replicas
through a queue group, so a second one would be kept safe only by the version
checks). With partitioning on (`partitions` > 1) each replica holds only the
workspaces of the partitions it owns (`shared.partitions`, `shared.leases`):
`load_partition` takes one over, `release_partition` lets it go, and a
decision for a workspace outside them is refused as unavailable; see
`services.queue_dispatcher.partitioning` for the wiring.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from pymongo import DeleteMany

from services.queue_dispatcher import repository, worker_load
from services.queue_dispatcher.config_sync import apply_configuration
from services.queue_dispatcher.reservation_ops import expire_reservation
from services.queue_dispatcher.settle import settle
from services.queue_dispatcher.state import WorkspaceState
from services.queue_dispatcher.task_ops import (
    REMOVABLE,
    assignment_due,
    expire_assignment,
    expire_task,
    remove_finished_tasks,
    ttl_due,
)
from services.queue_dispatcher.unit import SYSTEM, Actor, Unit
from shared.config_view import ConfigView, WorkspaceConfig
from shared.errors import NotFoundError, TaskRouterError, UnavailableError
from shared.models import ReservationStatus, TaskStatus
from shared.partitions import partition_of
from shared.runtime import ServiceRuntime
from shared.storage import collections as c
from shared.storage.committer import Write
from shared.storage.mongo import translate_errors
from shared.timers import Clock, Timers, system_clock

logger = logging.getLogger(__name__)
# Finished tasks removed per round (a backlog after downtime takes several).
REMOVAL_BATCH = 500

R = TypeVar("R")
TimerKey = tuple[str, str, str]  # (kind, workspace_sid, sid)


@dataclass(eq=False)
class _Slot:
    """One workspace: its lock, its state, and its commits still in flight."""

    workspace_sid: str
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    state: WorkspaceState | None = None
    stale: bool = False
    inflight: set[asyncio.Future[None]] = field(default_factory=set)


class Dispatcher:
    """Runs decisions per workspace and keeps their timers."""

    def __init__(
        self, runtime: ServiceRuntime, clock: Clock = system_clock, partitions: int = 1
    ) -> None:
        self.runtime = runtime
        self.db = runtime.db
        self.view = ConfigView(runtime.db)
        self.clock = clock
        self.timers: Timers[TimerKey] = Timers(self._on_timer, clock)
        self.loaded = asyncio.Event()
        self.partitions = partitions
        # Partitions this replica answers for; None: every workspace (one replica).
        self.owned: set[int] | None = None if partitions == 1 else set()
        # The replica's `shared.leases.PartitionLeases` when partitioned, for tests.
        self.leases: Any = None
        self._slots: dict[str, _Slot] = {}
        # Partitions being loaded, with the workspaces whose configuration
        # changed meanwhile (their loaded state may predate the change).
        self._loading: dict[int, set[str]] = {}

    def owns(self, workspace_sid: str) -> bool:
        """True when this replica is the writer of the workspace."""
        if self.owned is None:
            return True
        return partition_of(workspace_sid, self.partitions) in self.owned

    # -- start-up ---------------------------------------------------------------------
    async def load(self) -> None:
        """Read every workspace's live state and arm its timers (before readiness)."""
        await repository.ensure_indexes(self.db)
        sids = await self.view.load_all()
        configs = {
            sid: cfg for sid in sids if (cfg := self.view.cached(sid)) is not None
        }
        states = await repository.load_states(self.db, configs)
        for sid, state in states.items():
            slot = self._slots.setdefault(sid, _Slot(sid))
            slot.state = state
            self._arm_timers(state)
        self.loaded.set()
        for sid in states:
            await self.execute(sid, _match_everything)
        logger.info("dispatcher state loaded", extra={"workspaces": len(states)})

    async def prepare_partitioned(self) -> None:
        """Start-up when partitioned: indexes and configuration, no workspace state.

        State is loaded per partition, when its lease is acquired.
        """
        await repository.ensure_indexes(self.db)
        await self.view.load_all()
        self.loaded.set()

    async def load_partition(self, partition: int) -> None:
        """Take over one partition: load its workspaces, arm their timers, match."""
        assert self.owned is not None, "load_partition needs partitioning on"
        changed = self._loading.setdefault(partition, set())
        try:
            sids = [
                sid
                for sid in await repository.workspace_sids(self.db)
                if partition_of(sid, self.partitions) == partition
            ]
            configs = {}
            for sid in sids:
                if (config := await self.view.refresh(sid)) is not None:
                    configs[sid] = config
            states = await repository.load_states(self.db, configs, only_these=True)
            self.owned.add(partition)
            for sid, state in states.items():
                slot = self._slots.setdefault(sid, _Slot(sid))
                slot.state = state
                slot.stale = sid in changed
                self._arm_timers(state)
        finally:
            self._loading.pop(partition, None)
        for sid in states:
            await self.execute(sid, _match_everything)
        logger.info(
            "partition loaded",
            extra={"partition": partition, "workspaces": len(states)},
        )

    async def release_partition(self, partition: int) -> None:
        """Stop writing a partition: finish its commits, forget its state and timers."""
        if self.owned is not None:
            self.owned.discard(partition)

        def inside(workspace_sid: str) -> bool:
            return partition_of(workspace_sid, self.partitions) == partition

        for sid in [sid for sid in self._slots if inside(sid)]:
            slot = self._slots.get(sid)
            if slot is None:
                continue
            async with slot.lock:
                await asyncio.gather(*slot.inflight, return_exceptions=True)
                slot.state = None
                self._slots.pop(sid, None)
        self.timers.cancel_where(lambda key: inside(key[1]))
        logger.info("partition released", extra={"partition": partition})

    def state(self, workspace_sid: str) -> WorkspaceState | None:
        """The in-memory state of a loaded workspace (for tests and diagnostics)."""
        slot = self._slots.get(workspace_sid)
        return None if slot is None else slot.state

    # -- decisions ----------------------------------------------------------------------
    async def execute(
        self,
        workspace_sid: str,
        decide: Callable[[Unit], R],
        actor: Actor = SYSTEM,
        prepare: Callable[[WorkspaceState], Awaitable[None]] | None = None,
    ) -> R:
        """Run `decide` as one decision of the workspace; returns its result once durable."""
        await self.loaded.wait()
        self._refuse_unless_owned(workspace_sid)
        slot = self._slots.setdefault(workspace_sid, _Slot(workspace_sid))
        async with slot.lock:
            # Checked again: the partition may have been released while waiting.
            self._refuse_unless_owned(workspace_sid)
            state = await self._ready_state(slot)
            if prepare is not None:
                await prepare(state)
            unit = Unit(state, self.clock(), actor)
            try:
                result = decide(unit)
                settle(unit)
            except TaskRouterError:
                slot.stale = slot.stale or unit.touched
                raise
            except Exception:
                slot.stale = True
                raise
            future = self._commit(slot, unit)
        if future is not None:
            try:
                await future
            except TaskRouterError:
                slot.stale = True
                raise
        return result

    def _refuse_unless_owned(self, workspace_sid: str) -> None:
        if not self.owns(workspace_sid):
            raise UnavailableError(
                f"workspace {workspace_sid!r} is now served by another replica"
            )

    def _commit(self, slot: _Slot, unit: Unit) -> asyncio.Future[None] | None:
        for key in unit.cancelled_timers:
            self.timers.cancel(key)
        for timer in unit.timers:
            self.timers.schedule(
                (timer.kind, timer.workspace_sid, timer.sid), timer.due
            )
        if not unit.touched and not unit.events:
            return None
        future = asyncio.ensure_future(
            self.runtime.committer.commit(unit.writes(), unit.events)
        )
        slot.inflight.add(future)
        future.add_done_callback(slot.inflight.discard)
        return future

    async def _ready_state(self, slot: _Slot) -> WorkspaceState:
        """The slot's state, loaded on first use and reloaded after a failed commit."""
        if slot.state is not None and not slot.stale:
            return slot.state
        if slot.inflight:
            await asyncio.gather(*slot.inflight, return_exceptions=True)
        config = await self.view.get(slot.workspace_sid)
        if config is None:
            self._slots.pop(slot.workspace_sid, None)
            raise NotFoundError("Workspace", slot.workspace_sid)
        if slot.stale:
            logger.warning(
                "reloading workspace after a failed decision",
                extra={"workspace_sid": slot.workspace_sid},
            )
        slot.state = await repository.load_state(self.db, config)
        slot.stale = False
        self._arm_timers(slot.state)
        return slot.state

    async def refresh_configuration(self, workspace_sid: str) -> None:
        """Reload the workspace's configuration now (a reference it did not know yet).

        Call only while holding the workspace's lock (from a `prepare` step).
        """
        slot = self._slots.get(workspace_sid)
        config = await self.view.refresh(workspace_sid)
        if slot is None or slot.state is None or config is None:
            return
        self._apply_config_locked(slot, config)

    def _apply_config_locked(self, slot: _Slot, config: WorkspaceConfig) -> None:
        assert slot.state is not None
        unit = Unit(slot.state, self.clock())
        apply_configuration(unit, config)
        settle(unit)
        self._commit(slot, unit)

    # -- configuration events -------------------------------------------------------------
    async def on_configuration_event(self, event_type: str, workspace_sid: str) -> None:
        """Follow a change the gateway made; idempotent, so redelivery is harmless."""
        await self.loaded.wait()
        if not self.owns(workspace_sid):
            # Another replica writes this workspace; keep the view current only.
            # TODO: a workspace deleted while its partition has no owner keeps its
            # workers, tasks and reservations in the store; only a finished task of
            # it found by `remove_finished_tasks` makes a replica drop them.
            await self.view.refresh(workspace_sid)
            self._note_loading_change(workspace_sid)
            return
        slot = self._slots.get(workspace_sid)
        if event_type == "workspace.deleted":
            await self._drop_workspace(workspace_sid, slot)
            return
        if slot is None:
            await self.view.refresh(workspace_sid)
            return
        async with slot.lock:
            config = await self.view.refresh(workspace_sid)
            if config is None:
                await self._forget_slot(workspace_sid, slot)
                await self._drop_workspace(workspace_sid, None)
            elif slot.state is not None and not slot.stale:
                self._apply_config_locked(slot, config)

    def _note_loading_change(self, workspace_sid: str) -> None:
        if self.owned is None:
            return
        changed = self._loading.get(partition_of(workspace_sid, self.partitions))
        if changed is not None:
            changed.add(workspace_sid)

    async def _drop_workspace(self, workspace_sid: str, slot: _Slot | None) -> None:
        """The workspace is gone: forget it and delete its workers, tasks and reservations."""
        if slot is not None:
            async with slot.lock:
                await self._forget_slot(workspace_sid, slot)
                # Before the lock goes: a decision waiting on it finds no workspace.
                await self.view.refresh(workspace_sid)
        else:
            await self.view.refresh(workspace_sid)
        where = {"workspace_sid": workspace_sid}
        writes = [
            Write(name, DeleteMany(where))
            for name in (c.RESERVATIONS, c.TASKS, c.WORKERS, c.WORKER_IDLE)
        ]
        await self.runtime.committer.commit(writes)
        logger.info("workspace dropped", extra={"workspace_sid": workspace_sid})

    async def _forget_slot(self, workspace_sid: str, slot: _Slot) -> None:
        """Under the slot's lock: let its commits finish, then forget its state.

        A decision already waiting on this slot's lock (an idle checkpoint, a
        timer) then finds no state and no configuration instead of writing for
        a dropped workspace (the checkpoint's upsert would bring its document back).
        """
        await asyncio.gather(*slot.inflight, return_exceptions=True)
        slot.state = None
        if self._slots.get(workspace_sid) is slot:
            self._slots.pop(workspace_sid, None)

    # -- the workers' idle checkpoints (see worker_load) --------------------------------------
    async def checkpoint_idle(self) -> int:
        """Write the idle checkpoint of every workspace offered something since the last.

        Returns how many were written; a workspace that cannot be written now
        (moved to another replica, the store down) keeps its changes for the next.
        """
        written = 0
        for sid, slot in list(self._slots.items()):
            if slot.state is None or not slot.state.idle_dirty or not self.owns(sid):
                continue
            try:
                await self.execute(sid, worker_load.write_checkpoint)
                written += 1
            except TaskRouterError as exc:
                logger.warning(
                    "idle checkpoint not written",
                    extra={"workspace_sid": sid, "reason": exc.message},
                )
        return written

    async def run_idle_checkpoints(self, every: float) -> None:
        """`checkpoint_idle` every `every` seconds, forever."""
        while True:
            await asyncio.sleep(every)
            try:
                await self.checkpoint_idle()
            except Exception:  # the next round tries again
                logger.exception("idle checkpoints failed")

    # -- finished tasks leave after a while (TaskRouter: 5 minutes) ------------------------
    async def remove_finished_tasks(
        self, retention: timedelta, limit: int = REMOVAL_BATCH, skip: set[str] | None = None
    ) -> int:
        """Delete up to `limit` completed or canceled tasks (with their reservations)
        whose last change is older than `retention`, in the workspaces this
        replica writes; returns how many were selected.
        """
        cutoff = self.clock() - retention
        skip = set() if skip is None else skip
        query: dict[str, Any] = {
            "assignment_status": {"$in": REMOVABLE}, "date_updated": {"$lt": cutoff}
        }
        if skip:  # another replica's, or failed this round: do not select them again
            query["workspace_sid"] = {"$nin": sorted(skip)}
        found = await translate_errors(
            lambda: self.db[c.TASKS]
            .find(query, {"_id": 1, "workspace_sid": 1})
            .limit(limit)
            .to_list(None)
        )
        by_workspace: dict[str, list[str]] = {}
        for doc in found:
            if self.owns(doc["workspace_sid"]):
                by_workspace.setdefault(doc["workspace_sid"], []).append(doc["_id"])
            else:
                skip.add(doc["workspace_sid"])
        for workspace_sid, sids in by_workspace.items():
            try:
                await self.execute(
                    workspace_sid, lambda unit, chosen=sids: remove_finished_tasks(unit, chosen)
                )
            except NotFoundError:
                # Deleted while no replica wrote it (see on_configuration_event):
                # nobody dropped its documents then; drop them now.
                if await self.view.refresh(workspace_sid) is None:
                    await self._drop_workspace(workspace_sid, self._slots.get(workspace_sid))
                else:
                    skip.add(workspace_sid)
            except TaskRouterError as exc:  # moved to another replica, the store down
                skip.add(workspace_sid)
                logger.warning(
                    "finished tasks not removed",
                    extra={"workspace_sid": workspace_sid, "reason": exc.message},
                )
        return len(found)

    async def run_removals(self, retention: timedelta) -> None:
        """`remove_finished_tasks` about five times per retention period, forever."""
        every = min(30.0, max(1.0, retention.total_seconds() / 5))
        while True:
            await asyncio.sleep(every)
            skip: set[str] = set()
            try:
                while await self.remove_finished_tasks(retention, skip=skip) >= REMOVAL_BATCH:
                    pass  # a backlog (after downtime): keep going in batches
            except Exception:  # the next round tries again
                logger.exception("removing finished tasks failed")

    # -- timers -----------------------------------------------------------------------------
    def _arm_timers(self, state: WorkspaceState) -> None:
        for reservation in state.reservations.values():
            if (
                reservation.reservation_status is ReservationStatus.PENDING
                and reservation.timeout_at
            ):
                self.timers.schedule(
                    ("reservation", state.sid, reservation.sid), reservation.timeout_at
                )
        for task in state.tasks.values():
            if task.status in (TaskStatus.PENDING, TaskStatus.RESERVED):
                self.timers.schedule(("task", state.sid, task.sid), ttl_due(task))
            elif task.status is TaskStatus.ASSIGNED:
                due = assignment_due(state, task)
                self.timers.schedule(("assigned", state.sid, task.sid), due)

    async def _on_timer(self, key: TimerKey) -> None:
        kind, workspace_sid, sid = key
        if workspace_sid not in self._slots or not self.owns(workspace_sid):
            return
        if kind == "reservation":
            await self.execute(
                workspace_sid, lambda unit: expire_reservation(unit, sid)
            )
        elif kind == "task":
            await self.execute(workspace_sid, lambda unit: expire_task(unit, sid))
        elif kind == "assigned":
            await self.execute(workspace_sid, lambda unit: expire_assignment(unit, sid))



def _match_everything(unit: Unit) -> None:
    """A matching pass over every waiting task and every worker (after a restart)."""
    for task_sid, task in unit.state.tasks.items():
        if task.is_waiting:
            unit.match_task(task_sid)
    for worker_sid in unit.state.workers:
        unit.match_worker(worker_sid)


def reply_of(model: Any) -> dict[str, Any]:
    """A resource as a command reply."""
    return model.model_dump(mode="json")
