"""The dispatcher split across replicas: one writer per workspace partition.

With `TASKROUTER_PARTITIONING=on` and `TASKROUTER_PARTITIONS` > 1:

- Each replica holds leases on its share of the partitions (`shared.leases`).
  Acquiring partition k loads its workspaces from the store, re-arms their
  reservation and task timers, runs a matching pass, and only then subscribes
  to `<prefix>.cmd.queue-dispatcher.p<k>.*.>`; senders put the partition in
  the subject (`CommandClient`), so only the owner receives a workspace's
  commands. Releasing it drains that subscription, waits for the commands
  and commits in flight, and drops the state and timers.
- While a partition changes hands nobody subscribes to it: NATS answers "no
  responders" and `CommandClient` sends again until its timeout.
- Configuration events reach every replica through its own ordered consumer
  (deliver new, no durable state): each keeps its configuration view current
  for workspaces it may own later; only the owner applies them to workers.
  A replica that just started reads the configuration from the store, so it
  misses nothing older than its consumers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import DeliverPolicy

from services.queue_dispatcher.dispatcher import Dispatcher
from shared import metrics
from shared.bus import command_reply
from shared.config_view import is_configuration_event
from shared.errors import DomainValidationError, NotFoundError
from shared.leases import PartitionLeases
from shared.runtime import ServiceRuntime
from shared.settings import CommonSettings

logger = logging.getLogger(__name__)

Handler = Callable[[dict], Awaitable[dict]]


class PartitionedCommands:
    """Command subscriptions of the partitions this replica owns, one per partition."""

    def __init__(
        self, runtime: ServiceRuntime, handlers: dict[str, Handler], concurrency: int
    ) -> None:
        self._runtime = runtime
        self._handlers = {
            action: metrics.counted_command(
                command_reply(handler), runtime.name, action
            )
            for action, handler in handlers.items()
        }
        self._concurrency = concurrency
        self._semaphore: asyncio.Semaphore | None = None
        self._subscriptions: dict[int, Subscription] = {}
        self._inflight: dict[int, set[asyncio.Task[None]]] = {}

    async def subscribe(self, partition: int) -> None:
        """Start answering the commands of `partition`."""
        connection = self._runtime.broker.connection
        subject = self._runtime.subjects.partition_command_listener(
            self._runtime.name, partition
        )

        async def on_message(message: Msg) -> None:
            task = asyncio.create_task(self._answer(message))
            tasks = self._inflight.setdefault(partition, set())
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        # A queue group, so two replicas that briefly both subscribe (a lease
        # lost and taken while the old holder has not noticed yet) never both
        # answer one request.
        self._subscriptions[partition] = await connection.subscribe(
            subject, queue=self._runtime.name, cb=on_message
        )

    async def unsubscribe(self, partition: int) -> None:
        """Stop receiving the partition's commands; wait for those being handled."""
        subscription = self._subscriptions.pop(partition, None)
        if subscription is not None:
            try:
                await subscription.drain()
            except Exception:  # connection closing: nothing more arrives anyway
                logger.warning("command subscription not drained", exc_info=True)
        tasks = self._inflight.pop(partition, set())
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _answer(self, message: Msg) -> None:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self._concurrency)
        action = self._runtime.subjects.partitioned_action(
            self._runtime.name, message.subject
        )
        async with self._semaphore:
            reply = await self._reply(action, message.data)
        if message.reply:
            await message.respond(reply)

    async def _reply(self, action: str, data: bytes) -> bytes:
        handler = self._handlers.get(action)
        if handler is None:
            return _refusal(NotFoundError("Command", action))
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError:
            return _refusal(DomainValidationError(f"command {action!r} is not JSON"))
        return await handler(body)


def _refusal(error: Exception) -> bytes:
    return orjson.dumps({"ok": False, "error": error.to_wire()})  # type: ignore[attr-defined]


async def follow_configuration(
    runtime: ServiceRuntime, dispatcher: Dispatcher, event_types: tuple[str, ...]
) -> list[Subscription]:
    """Ordered consumers of configuration events, private to this replica."""
    js = runtime.broker.connection.jetstream()

    async def on_message(message: Msg) -> None:
        try:
            body: dict[str, Any] = orjson.loads(message.data)
            if is_configuration_event(body["event_type"]):
                await dispatcher.on_configuration_event(
                    body["event_type"], body["workspace_sid"]
                )
        except Exception:
            # NOTE: an ordered consumer has no redelivery; the view reads through
            # on the next miss, and the owner reloads a workspace after a failed
            # decision, so one lost refresh heals with the next configuration event.
            logger.exception(
                "configuration event not applied", extra={"subject": message.subject}
            )

    subscriptions = []
    for event_type in event_types:
        subject = runtime.subjects.events_matching(event_type=event_type)
        subscriptions.append(
            await js.subscribe(
                subject,
                stream=runtime.subjects.event_stream,
                cb=on_message,
                ordered_consumer=True,
                deliver_policy=DeliverPolicy.NEW,
            )
        )
    return subscriptions


def partition_leases(
    runtime: ServiceRuntime,
    settings: CommonSettings,
    dispatcher: Dispatcher,
    commands: PartitionedCommands,
) -> PartitionLeases:
    """Leases whose acquisition loads a partition and then answers its commands."""

    async def on_acquire(partition: int) -> None:
        await dispatcher.load_partition(partition)
        await commands.subscribe(partition)

    async def on_release(partition: int) -> None:
        await commands.unsubscribe(partition)
        await dispatcher.release_partition(partition)

    return PartitionLeases(
        settings.nats_url,
        runtime.subjects,
        runtime.name,
        settings.partitions,
        settings.lease_ttl_seconds,
        on_acquire,
        on_release,
        replicas=settings.event_stream_replicas,
    )
