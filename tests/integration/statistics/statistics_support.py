"""Helpers for the statistics service tests: configuration, clock, scenario."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from shared.events import (
    Event,
    make_event,
    reservation_data,
    task_data,
    worker_channel_data,
    worker_data,
)
from shared.models import (
    Activity,
    Reservation,
    Task,
    TaskChannel,
    TaskQueue,
    TaskStatus,
    Worker,
    WorkerChannel,
    Workflow,
    Workspace,
)
from shared.sids import worker_channel_sid
from shared.storage import collections as c

ACCOUNT = "AC" + "a" * 32
WORKSPACE = "WS" + "a" * 32
OFFLINE = "WA" + "0" * 32
AVAILABLE = "WA" + "1" * 32
BUSY = "WA" + "2" * 32
VOICE = "TC" + "1" * 32
CHAT = "TC" + "2" * 32
SUPPORT_QUEUE = "WQ" + "1" * 32
SALES_QUEUE = "WQ" + "2" * 32
WORKFLOW = "WW" + "1" * 32


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _config_documents(base: datetime) -> dict[str, list[dict[str, Any]]]:
    common = {"account_sid": ACCOUNT, "workspace_sid": WORKSPACE}
    activities = [
        Activity(
            sid=sid,
            friendly_name=name,
            available=available,
            date_created=base + timedelta(seconds=i),
            **common,
        )
        for i, (sid, name, available) in enumerate(
            [
                (OFFLINE, "Offline", False),
                (AVAILABLE, "Available", True),
                (BUSY, "Busy", False),
            ]
        )
    ]
    queues = [
        TaskQueue(
            sid=SUPPORT_QUEUE,
            friendly_name="Support",
            target_workers="skill == 'support'",
            date_created=base,
            **common,
        ),
        TaskQueue(
            sid=SALES_QUEUE,
            friendly_name="Sales",
            target_workers="1==1",
            date_created=base + timedelta(seconds=1),
            **common,
        ),
    ]
    return {
        c.WORKSPACES: [
            Workspace(
                sid=WORKSPACE, account_sid=ACCOUNT, friendly_name="Stats"
            ).to_document()
        ],
        c.ACTIVITIES: [a.to_document() for a in activities],
        c.TASK_CHANNELS: [
            TaskChannel(
                sid=VOICE, friendly_name="Voice", unique_name="voice", **common
            ).to_document(),
            TaskChannel(
                sid=CHAT, friendly_name="Chat", unique_name="chat", **common
            ).to_document(),
        ],
        c.TASK_QUEUES: [q.to_document() for q in queues],
        c.WORKFLOWS: [
            Workflow(
                sid=WORKFLOW, friendly_name="Main", configuration="{}", **common
            ).to_document()
        ],
    }


async def seed_configuration(db: AsyncDatabase[Any], base: datetime) -> None:
    """Write the gateway's configuration: workspace, activities, queues, ..."""
    for collection, docs in _config_documents(base).items():
        await db[collection].insert_many(docs)


@dataclass
class Scenario:
    """Builds the events the dispatcher and router would publish, at chosen times."""

    base: datetime
    tasks: dict[str, Task] = field(default_factory=dict)
    workers: dict[str, Worker] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)

    def at(self, seconds: float) -> datetime:
        return self.base + timedelta(seconds=seconds)

    def _emit(
        self,
        event_type: str,
        resource_type: str,
        resource_sid: str,
        t: float,
        data: dict[str, Any],
    ) -> Event:
        event = make_event(
            event_type,
            account_sid=ACCOUNT,
            workspace_sid=WORKSPACE,
            resource_type=resource_type,
            resource_sid=resource_sid,
            at=self.at(t),
            data=data,
        )
        self.events.append(event)
        return event

    # -- workers -------------------------------------------------------------------
    def create_worker(
        self, sid: str, name: str, skill: str, activity: tuple[str, str], t: float
    ) -> None:
        channels = [
            WorkerChannel(
                sid=worker_channel_sid(sid, tc),
                task_channel_sid=tc,
                task_channel_unique_name=name_,
            )
            for tc, name_ in ((VOICE, "voice"), (CHAT, "chat"))
        ]
        worker = Worker(
            sid=sid,
            account_sid=ACCOUNT,
            workspace_sid=WORKSPACE,
            friendly_name=name,
            attributes=f'{{"skill": "{skill}"}}',
            activity_sid=activity[0],
            activity_name=activity[1],
            available=activity[0] == AVAILABLE,
            date_status_changed=self.at(t),
            channels=channels,
            date_created=self.at(t),
        )
        self.workers[sid] = worker
        self._emit("worker.created", "worker", sid, t, worker_data(worker))

    def change_activity(self, sid: str, activity: tuple[str, str], t: float) -> None:
        worker = self.workers[sid]
        previous, since = worker.activity_sid, worker.date_status_changed
        spent_ms = int((self.at(t) - since).total_seconds() * 1000)
        worker.activity_sid, worker.activity_name = activity
        worker.available = activity[0] == AVAILABLE
        worker.date_status_changed = self.at(t)
        worker.version += 1
        data = {
            **worker_data(worker),
            "worker_previous_activity_sid": previous,
            "worker_time_in_previous_activity": str(spent_ms // 1000),
            "worker_time_in_previous_activity_ms": str(spent_ms),
        }
        self._emit("worker.activity.update", "worker", sid, t, data)

    def set_channel(self, sid: str, channel: str, available: bool, t: float) -> None:
        worker = self.workers[sid]
        worker_channel = worker.channel(channel)
        assert worker_channel is not None
        worker_channel.available = available
        worker.version += 1
        self._emit(
            "worker.channel.availability.update",
            "worker",
            sid,
            t,
            worker_channel_data(worker, worker_channel),
        )

    # -- tasks ---------------------------------------------------------------------
    def create_task(
        self,
        sid: str,
        channel: str,
        priority: int,
        queue: str,
        t: float,
        entered: float | None = None,
    ) -> None:
        task = Task(
            sid=sid,
            account_sid=ACCOUNT,
            workspace_sid=WORKSPACE,
            priority=priority,
            task_channel_sid=channel,
            task_channel_unique_name="voice" if channel == VOICE else "chat",
            workflow_sid=WORKFLOW,
            workflow_friendly_name="Main",
            date_created=self.at(t),
        )
        self.tasks[sid] = task
        self._task_event("task.created", sid, t)
        self._task_event("workflow.entered", sid, t)
        self.enter_queue(sid, queue, t if entered is None else entered)

    def enter_queue(self, sid: str, queue: str, t: float) -> None:
        task = self.tasks[sid]
        task.task_queue_sid, task.task_queue_entered_date = queue, self.at(t)
        task.version += 1
        self._task_event("task-queue.entered", sid, t)

    def move_task(self, sid: str, to_queue: str, t: float) -> None:
        self._task_event("task-queue.moved", sid, t)
        self.enter_queue(sid, to_queue, t)

    def set_status(
        self, sid: str, status: str, event_type: str | None, t: float
    ) -> None:
        task = self.tasks[sid]
        task.assignment_status = TaskStatus(status)
        task.version += 1
        if event_type is not None:
            self._task_event(event_type, sid, t)

    def reserve(self, task_sid: str, worker_sid: str, t: float) -> Reservation:
        self.set_status(task_sid, "reserved", None, t)
        task = self.tasks[task_sid]
        reservation = Reservation(
            sid="WR" + task_sid[2:10] + worker_sid[2:10] + f"{len(self.events):016x}",
            account_sid=ACCOUNT,
            workspace_sid=WORKSPACE,
            task_sid=task_sid,
            worker_sid=worker_sid,
            worker_name=self.workers[worker_sid].friendly_name,
            task_channel_sid=task.task_channel_sid,
            task_queue_sid=task.task_queue_sid,
            workflow_sid=WORKFLOW,
        )
        self._reservation_event("reservation.created", reservation, t)
        return reservation

    def end_reservation(
        self, reservation: Reservation, event_type: str, task_status: str, t: float
    ) -> None:
        self.set_status(reservation.task_sid, task_status, None, t)
        self._reservation_event(event_type, reservation, t)

    def _task_event(self, event_type: str, sid: str, t: float) -> None:
        self._emit(event_type, "task", sid, t, task_data(self.tasks[sid], self.at(t)))

    def _reservation_event(
        self, event_type: str, reservation: Reservation, t: float
    ) -> None:
        task = self.tasks[reservation.task_sid]
        worker = self.workers[reservation.worker_sid]
        data = reservation_data(reservation, task, worker, self.at(t))
        self._emit(event_type, "reservation", reservation.sid, t, data)

    # -- what the dispatcher's collections hold at the end -----------------------------
    async def write_dispatcher_state(self, db: AsyncDatabase[Any]) -> None:
        await db[c.TASKS].insert_many([t.to_document() for t in self.tasks.values()])
        await db[c.WORKERS].insert_many(
            [w.to_document() for w in self.workers.values()]
        )


async def wait_until(
    condition: Callable[[], Awaitable[bool]],
    timeout: float = 30.0,
    what: str = "condition",
) -> None:
    """Poll `condition` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
