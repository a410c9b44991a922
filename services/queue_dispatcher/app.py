"""Wiring of the queue-dispatcher: command handlers, configuration consumers, timers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from services.queue_dispatcher.dispatcher import Dispatcher
from services.queue_dispatcher.handlers import CommandHandlers, register
from services.queue_dispatcher.partitioning import (
    PartitionedCommands,
    follow_configuration,
    partition_leases,
)
from services.queue_dispatcher.settings import DispatcherSettings
from shared.config_view import CONFIGURATION_EVENT_TYPES, is_configuration_event
from shared.runtime import ServiceRuntime
from shared.subjects import QUEUE_DISPATCHER
from shared.timers import Clock, system_clock

# The dispatcher follows CONFIGURATION_EVENT_TYPES with one durable consumer each
# (`task-queue.>` / `workflow.>` would also carry every task's routing events).
# TODO: one consumer with several filter subjects would do (as the router's does)
# with fewer fetch loops; it needs the old durables removed on upgrade.


def build(
    settings: DispatcherSettings, clock: Clock = system_clock
) -> tuple[ServiceRuntime, Dispatcher]:
    """The runtime with the dispatcher's handlers registered (not started)."""
    runtime = ServiceRuntime(QUEUE_DISPATCHER, settings)
    if settings.partitioned:
        dispatcher = Dispatcher(runtime, clock, partitions=settings.partitions)
        _partitioned(runtime, dispatcher, settings)
        return runtime, dispatcher
    dispatcher = Dispatcher(runtime, clock)
    register(runtime, dispatcher, settings.command_concurrency)
    for event_type in CONFIGURATION_EVENT_TYPES:
        _follow(runtime, dispatcher, event_type)

    @runtime.on_ready
    async def start_dispatching() -> None:
        await dispatcher.load()
        _start_background(runtime, dispatcher, settings)

    return runtime, dispatcher


def _start_background(
    runtime: ServiceRuntime, dispatcher: Dispatcher, settings: DispatcherSettings
) -> None:
    """Timers, idle checkpoints and finished-task removals, in either wiring."""
    runtime.background(dispatcher.timers.run(), "dispatcher-timers")
    runtime.background(
        dispatcher.run_idle_checkpoints(settings.idle_checkpoint_seconds),
        "idle-checkpoints",
    )
    if settings.finished_task_retention_seconds > 0:
        retention = timedelta(seconds=settings.finished_task_retention_seconds)
        runtime.background(dispatcher.run_removals(retention), "finished-task-removals")


def _partitioned(
    runtime: ServiceRuntime, dispatcher: Dispatcher, settings: DispatcherSettings
) -> None:
    """Wiring with workspaces split between replicas (see `partitioning`)."""
    commands = PartitionedCommands(
        runtime,
        CommandHandlers(dispatcher).table(),
        settings.command_concurrency * 4,
    )
    leases = partition_leases(runtime, settings, dispatcher, commands)

    @runtime.on_ready
    async def start_partitioned() -> None:
        await dispatcher.prepare_partitioned()
        # Configuration events first, so none falls between the view's load
        # and a partition's load.
        await follow_configuration(runtime, dispatcher, CONFIGURATION_EVENT_TYPES)
        _start_background(runtime, dispatcher, settings)
        await leases.start()

    @runtime.on_stop
    async def hand_partitions_back() -> None:
        await leases.stop()

    dispatcher.leases = leases


def _follow(runtime: ServiceRuntime, dispatcher: Dispatcher, event_type: str) -> None:
    durable = f"{QUEUE_DISPATCHER}-" + event_type.replace(".>", "").replace(".", "-")

    subject = runtime.subjects.events_matching(event_type=event_type)

    @runtime.event_subscriber(
        durable=durable, filter_subject=subject, key_of=_workspace_of
    )
    async def on_configuration_event(body: dict[str, Any]) -> None:
        if is_configuration_event(body["event_type"]):
            await dispatcher.on_configuration_event(
                body["event_type"], body["workspace_sid"]
            )


def _workspace_of(body: dict[str, Any]) -> str | None:
    """Configuration events of one workspace are followed in stream order."""
    return body.get("workspace_sid")
