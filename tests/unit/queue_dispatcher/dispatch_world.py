"""A pure in-memory workspace for the dispatcher's decision tests (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from services.queue_dispatcher import reservation_ops, task_ops, worker_ops
from services.queue_dispatcher.repository import rebuild_index
from services.queue_dispatcher.settle import settle
from services.queue_dispatcher.state import TaskState, WorkerState, WorkspaceState
from services.queue_dispatcher.unit import Unit
from shared.commands import (
    CreateTask,
    CreateWorker,
    RouteTask,
    UpdateReservation,
    UpdateTask,
    UpdateWorker,
    UpdateWorkerChannel,
)
from shared.config_view import WorkspaceConfig
from shared.models import (
    Activity,
    QueueOrder,
    Reservation,
    TaskChannel,
    TaskQueue,
    Workflow,
    Workspace,
)

AC = "AC" + "0" * 32
WS = "WS" + "0" * 32
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def sid(prefix: str, n: int) -> str:
    return f"{prefix}{n:032x}"


AVAILABLE = sid("WA", 1)
OFFLINE = sid("WA", 2)
RESERVING = sid("WA", 3)
BUSY = sid("WA", 4)
WORKFLOW = sid("WW", 1)


def make_config(
    *, multi_task: bool = True, prioritize: QueueOrder = QueueOrder.FIFO
) -> WorkspaceConfig:
    common = {"account_sid": AC, "workspace_sid": WS}
    workspace = Workspace(
        sid=WS,
        account_sid=AC,
        friendly_name="ws",
        default_activity_sid=OFFLINE,
        default_activity_name="Offline",
        timeout_activity_sid=OFFLINE,
        timeout_activity_name="Offline",
        multi_task_enabled=multi_task,
        prioritize_queue_order=prioritize,
    )
    config = WorkspaceConfig(workspace)
    for activity_sid, name, available in (
        (AVAILABLE, "Available", True),
        (OFFLINE, "Offline", False),
        (RESERVING, "Reserving", False),
        (BUSY, "Busy", False),
    ):
        config.activities[activity_sid] = Activity(
            sid=activity_sid, friendly_name=name, available=available, **common
        )
    for n, unique in enumerate(("default", "voice", "chat"), start=1):
        channel = TaskChannel(
            sid=sid("TC", n), friendly_name=unique.title(), unique_name=unique, **common
        )
        config.channels[channel.sid] = channel
    config.workflows[WORKFLOW] = Workflow(
        sid=WORKFLOW,
        friendly_name="flow",
        configuration="{}",
        task_reservation_timeout=120,
        **common,
    )
    return config


class World:
    """A workspace state plus a clock; every call is one decision, settled."""

    def __init__(self, config: WorkspaceConfig) -> None:
        self.state = WorkspaceState(config)
        rebuild_index(self.state)
        self.now = START
        self.units: list[Unit] = []

    # -- plumbing -------------------------------------------------------------------
    def decide(self, fn: Any) -> Any:
        unit = Unit(self.state, self.now)
        result = fn(unit)
        settle(unit)
        self.units.append(unit)
        return result

    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def events(self) -> list[str]:
        return [e.event_type for unit in self.units for e in unit.events]

    def last_events(self) -> list[str]:
        return [e.event_type for e in self.units[-1].events]

    def command(self, cls: Any, **fields: Any) -> Any:
        return cls(account_sid=AC, workspace_sid=WS, **fields)

    # -- configuration ----------------------------------------------------------------
    def add_queue(self, n: int, target: str = "1==1", **fields: Any) -> str:
        queue = TaskQueue(
            sid=sid("WQ", n),
            account_sid=AC,
            workspace_sid=WS,
            friendly_name=f"q{n}",
            target_workers=target,
            **fields,
        )
        self.state.config.queues[queue.sid] = queue
        self.state.index.sync_queues()
        return queue.sid

    # -- workers ----------------------------------------------------------------------
    def worker(
        self, name: str, attributes: dict | None = None, *, available: bool = True
    ) -> WorkerState:
        command = self.command(
            CreateWorker,
            friendly_name=name,
            attributes=orjson.dumps(attributes or {}).decode(),
            activity_sid=AVAILABLE if available else OFFLINE,
        )
        self.tick(1)
        return self.decide(lambda unit: worker_ops.create_worker(unit, command))

    def set_activity(
        self, worker: WorkerState, activity_sid: str, **fields: Any
    ) -> None:
        command = self.command(
            UpdateWorker, worker_sid=worker.sid, activity_sid=activity_sid, **fields
        )
        self.decide(lambda unit: worker_ops.update_worker(unit, worker, command))

    def set_channel(self, worker: WorkerState, channel: str, **fields: Any) -> None:
        command = self.command(
            UpdateWorkerChannel, worker_sid=worker.sid, channel=channel, **fields
        )
        self.decide(
            lambda unit: worker_ops.update_worker_channel(unit, worker, command)
        )

    # -- tasks ------------------------------------------------------------------------
    def task(
        self,
        queue_sid: str | None,
        attributes: dict | None = None,
        *,
        priority: int = 0,
        channel: str = "default",
        seconds_later: float = 1,
        **step: Any,
    ) -> TaskState:
        """Create a task and route it to `queue_sid` (the router's part)."""
        self.tick(seconds_later)
        command = self.command(
            CreateTask,
            attributes=orjson.dumps(attributes or {}).decode(),
            priority=priority,
            task_channel=channel,
            workflow_sid=WORKFLOW,
        )
        task = self.decide(lambda unit: task_ops.create_task(unit, command))
        if queue_sid is not None or step.get("target_worker_sid"):
            self.route(task, queue_sid, **step)
        return task

    def route(
        self,
        task: TaskState,
        queue_sid: str | None,
        seq: int | None = None,
        **step: Any,
    ) -> str:
        seq = seq if seq is not None else (task.step.seq + 1 if task.step else 1)
        command = self.command(
            RouteTask,
            task_sid=task.sid,
            workflow_sid=WORKFLOW,
            step_key=f"{task.sid}:{seq}",
            seq=seq,
            queue_sid=queue_sid,
            **step,
        )
        return self.decide(lambda unit: task_ops.route_task(unit, command))

    def update_task(self, task: TaskState, **fields: Any) -> None:
        command = self.command(UpdateTask, task_sid=task.sid, **fields)
        self.decide(lambda unit: task_ops.update_task(unit, task, command))

    # -- reservations -----------------------------------------------------------------
    def reservations(self, task: TaskState) -> list[Reservation]:
        return [self.state.reservations[r] for r in task.pending]

    def offered(self, task: TaskState) -> list[str]:
        """Names of the workers holding a pending offer of the task."""
        return sorted(
            self.state.workers[w].model.friendly_name for w in task.pending.values()
        )

    def update_reservation(self, reservation: Reservation, **fields: Any) -> None:
        command = self.command(
            UpdateReservation, reservation_sid=reservation.sid, **fields
        )
        self.decide(
            lambda unit: reservation_ops.update_reservation(unit, reservation, command)
        )

    def accept(self, task: TaskState, worker: WorkerState | None = None) -> Reservation:
        reservation = next(
            r
            for r in self.reservations(task)
            if worker is None or r.worker_sid == worker.sid
        )
        self.update_reservation(reservation, reservation_status="accepted")
        return reservation
