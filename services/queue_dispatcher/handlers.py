"""Command handlers of the queue-dispatcher: one per action, each a decision.

A handler parses the payload, makes sure the state it needs is in memory
(configuration the gateway just created, a terminal task long out of memory),
and runs the decision; the reply is the resulting resource
(`model_dump(mode="json")`), or `{"outcome": …}` for the router's commands.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from services.queue_dispatcher import repository, reservation_ops, task_ops, worker_ops
from services.queue_dispatcher.dispatcher import Dispatcher, reply_of
from services.queue_dispatcher.state import WorkerState, WorkspaceState
from services.queue_dispatcher.unit import Actor, Unit
from shared.bus import command_reply
from shared.commands import (
    Command,
    CreateTask,
    CreateWorker,
    DeleteTask,
    DeleteWorker,
    FetchWorker,
    RemoveTask,
    RouteTask,
    UpdateReservation,
    UpdateTask,
    UpdateWorker,
    UpdateWorkerChannel,
)
from shared.errors import DomainValidationError, NotFoundError
from shared.runtime import ServiceRuntime

C = TypeVar("C", bound=BaseModel)
Prepare = Callable[[WorkspaceState], Awaitable[None]]


class ReservationCallbackFailed(Command):
    """Sent by the events service when both assignment callback URLs failed."""

    reservation_sid: str


def parse(model: type[C], body: dict[str, Any]) -> C:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise DomainValidationError(
            f"invalid {model.__name__} command: {exc.errors()[0]['msg']}"
        ) from exc


def actor_of(command: Command) -> Actor:
    return Actor(command.actor_sid, command.source_ip_address)


def register(
    runtime: ServiceRuntime, dispatcher: Dispatcher, concurrency: int = 64
) -> None:
    """Subscribe every command action of the dispatcher on `runtime`.

    Each subscriber handles up to `concurrency` commands at once: a handler
    spends most of its time waiting for its commit, and decisions of one
    workspace still run one at a time under its lock (FIFO), so concurrency
    is what lets the committer batch many decisions into one transaction.
    """
    handlers = CommandHandlers(dispatcher)
    for action, handler in handlers.table().items():
        subject = runtime.subjects.command_listener(runtime.name, action)
        subscriber = runtime.broker.subscriber(
            subject, queue=runtime.name, max_workers=concurrency
        )
        subscriber(command_reply(handler))


class CommandHandlers:
    """The handler of each action, bound to one dispatcher."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    def table(self) -> dict[str, Callable[[dict], Awaitable[dict]]]:
        return {
            "worker.create": self.on_worker_create,
            "worker.update": self.on_worker_update,
            "worker.delete": self.on_worker_delete,
            "worker.fetch": self.on_worker_fetch,
            "worker-channel.update": self.on_worker_channel_update,
            "task.create": self.on_task_create,
            "task.update": self.on_task_update,
            "task.delete": self.on_task_delete,
            "reservation.update": self.on_reservation_update,
            "reservation.callback-failed": self.on_reservation_callback_failed,
            "task.route": self.on_task_route,
            "task.remove": self.on_task_remove,
        }

    # -- workers ------------------------------------------------------------------------
    async def on_worker_create(self, body: dict) -> dict:
        command = parse(CreateWorker, body)
        return await self._run(
            command,
            lambda unit: reply_of(worker_ops.create_worker(unit, command).model),
            self._config_has(command, activities=[command.activity_sid]),
        )

    async def on_worker_update(self, body: dict) -> dict:
        command = parse(UpdateWorker, body)

        def decide(unit: Unit) -> dict:
            worker = _worker(unit, command.worker_sid)
            worker_ops.update_worker(unit, worker, command)
            return reply_of(worker.model)

        return await self._run(
            command,
            decide,
            self._config_has(command, activities=[command.activity_sid]),
        )

    async def on_worker_delete(self, body: dict) -> dict:
        command = parse(DeleteWorker, body)

        def decide(unit: Unit) -> dict:
            worker = _worker(unit, command.worker_sid)
            worker_ops.delete_worker(unit, worker, command)
            return reply_of(worker.model)

        return await self._run(command, decide)

    async def on_worker_fetch(self, body: dict) -> dict:
        """The worker with its channels' current load; changes nothing."""
        command = parse(FetchWorker, body)
        return await self._run(
            command, lambda unit: reply_of(_worker(unit, command.worker_sid).model)
        )

    async def on_worker_channel_update(self, body: dict) -> dict:
        command = parse(UpdateWorkerChannel, body)

        def decide(unit: Unit) -> dict:
            worker = _worker(unit, command.worker_sid)
            channel = worker_ops.update_worker_channel(unit, worker, command)
            return {
                **reply_of(channel),
                "available_capacity_percentage": channel.available_capacity_percentage,
                "worker_sid": worker.sid,
                "account_sid": worker.model.account_sid,
                "workspace_sid": worker.model.workspace_sid,
            }

        return await self._run(command, decide)

    # -- tasks ----------------------------------------------------------------------------
    async def on_task_create(self, body: dict) -> dict:
        command = parse(CreateTask, body)
        target = command.routing_target or ""
        prepare = self._config_has(
            command,
            channels=[command.task_channel or "default"],
            workflows=[
                command.workflow_sid,
                target if target.startswith("WW") else None,
            ],
            queues=[
                command.task_queue_sid,
                target if target.startswith("WQ") else None,
            ],
        )
        return await self._run(
            command,
            lambda unit: reply_of(task_ops.create_task(unit, command).model),
            self._both(prepare, self._workflow_current(command)),
        )

    async def on_task_update(self, body: dict) -> dict:
        command = parse(UpdateTask, body)

        def decide(unit: Unit) -> dict:
            task = _task(unit, command.task_sid)
            task_ops.update_task(unit, task, command)
            return reply_of(task.model)

        prepare = self._both(
            self._task_loaded(command, command.task_sid),
            self._config_has(command, channels=[command.task_channel]),
        )
        return await self._run(command, decide, prepare)

    async def on_task_delete(self, body: dict) -> dict:
        command = parse(DeleteTask, body)

        def decide(unit: Unit) -> dict:
            task = _task(unit, command.task_sid)
            task_ops.delete_task(unit, task, command)
            return reply_of(task.model)

        return await self._run(
            command, decide, self._task_loaded(command, command.task_sid)
        )

    # -- reservations ---------------------------------------------------------------------
    async def on_reservation_update(self, body: dict) -> dict:
        command = parse(UpdateReservation, body)

        def decide(unit: Unit) -> dict:
            reservation = reservation_ops.find_reservation(unit, command)
            if reservation is None:
                raise NotFoundError("Reservation", command.reservation_sid)
            reservation_ops.update_reservation(unit, reservation, command)
            return reply_of(reservation)

        activity = command.worker_activity_sid or command.instruction_params.get(
            "activity_sid"
        )
        prepare = self._both(
            self._reservation_loaded(command, command.reservation_sid),
            self._config_has(
                command, activities=[activity if isinstance(activity, str) else None]
            ),
        )
        return await self._run(command, decide, prepare)

    async def on_reservation_callback_failed(self, body: dict) -> dict:
        command = parse(ReservationCallbackFailed, body)

        def decide(unit: Unit) -> dict:
            reservation = unit.state.find_reservation(command.reservation_sid)
            if reservation is None:
                raise NotFoundError("Reservation", command.reservation_sid)
            reservation_ops.fail_callback(unit, reservation)
            return reply_of(reservation)

        return await self._run(
            command, decide, self._reservation_loaded(command, command.reservation_sid)
        )

    # -- from the workflow-router -----------------------------------------------------------
    async def on_task_route(self, body: dict) -> dict:
        command = parse(RouteTask, body)
        prepare = self._config_has(
            command,
            queues=[command.queue_sid],
            workflows=[command.workflow_sid or None],
        )
        return await self._run(
            command,
            lambda unit: {"outcome": task_ops.route_task(unit, command)},
            prepare,
        )

    async def on_task_remove(self, body: dict) -> dict:
        command = parse(RemoveTask, body)

        def decide(unit: Unit) -> dict:
            outcome, task = task_ops.remove_task(unit, command)
            return {
                "outcome": outcome,
                "task": None if task is None else reply_of(task.model),
            }

        return await self._run(command, decide)

    # -- plumbing -----------------------------------------------------------------------------
    async def _run(
        self,
        command: Command,
        decide: Callable[[Unit], dict],
        prepare: Prepare | None = None,
    ) -> dict:
        return await self.dispatcher.execute(
            command.workspace_sid, decide, actor_of(command), prepare
        )

    def _config_has(
        self,
        command: Command,
        *,
        activities: Iterable[str | None] = (),
        queues: Iterable[str | None] = (),
        workflows: Iterable[str | None] = (),
        channels: Iterable[str | None] = (),
    ) -> Prepare:
        """Reload the configuration once when it lacks something the command names."""
        wanted = [
            ("activities", [a for a in activities if a]),
            ("queues", [q for q in queues if q]),
            ("workflows", [w for w in workflows if w]),
        ]
        channel_keys = [ch for ch in channels if ch]

        async def prepare(state: WorkspaceState) -> None:
            config = state.config
            missing = any(
                sid not in getattr(config, table)
                for table, sids in wanted
                for sid in sids
            )
            missing = missing or any(
                config.channel(key) is None for key in channel_keys
            )
            if missing:
                await self.dispatcher.refresh_configuration(command.workspace_sid)

        return prepare

    def _workflow_current(self, command: CreateTask) -> Prepare:
        """Read the configuration again if the gateway saw a newer workflow than this copy."""
        seen = command.workflow_date_updated
        workflow_sid = command.workflow_sid or command.routing_target or ""

        async def prepare(state: WorkspaceState) -> None:
            workflow = state.config.workflows.get(workflow_sid)
            if seen is not None and workflow is not None and workflow.date_updated < seen:
                await self.dispatcher.refresh_configuration(command.workspace_sid)

        return prepare

    def _task_loaded(self, command: Command, task_sid: str) -> Prepare:
        async def prepare(state: WorkspaceState) -> None:
            if state.find_task(task_sid) is None:
                task = await repository.find_task(
                    self.dispatcher.db, state.sid, task_sid
                )
                if task is not None and task.status.is_terminal:
                    state.retire_task(task)

        return prepare

    def _reservation_loaded(self, command: Command, reservation_sid: str) -> Prepare:
        async def prepare(state: WorkspaceState) -> None:
            if state.find_reservation(reservation_sid) is None:
                found = await repository.find_reservation(
                    self.dispatcher.db, state.sid, reservation_sid
                )
                if found is not None and not found.reservation_status.is_live:
                    state.retire_reservation(found)

        return prepare

    @staticmethod
    def _both(first: Prepare, second: Prepare) -> Prepare:
        async def prepare(state: WorkspaceState) -> None:
            await first(state)
            await second(state)

        return prepare


def _worker(unit: Unit, worker_sid: str) -> WorkerState:
    worker = unit.state.workers.get(worker_sid)
    if worker is None:
        raise NotFoundError("Worker", worker_sid)
    return worker


def _task(unit: Unit, task_sid: str):
    task = unit.state.find_task(task_sid)
    if task is None:
        raise NotFoundError("Task", task_sid)
    return task
