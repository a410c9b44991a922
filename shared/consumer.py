"""Durable JetStream pull consumers of the event stream, in order, with redelivery.

Why not a FastStream subscriber: with FastStream 0.7.8 and nats-py 2.16,
- the batched pull subscriber loses a fetched batch whenever nats-py raises the
  builtin `TimeoutError` at the end of its fetch deadline (FastStream only catches
  `nats.errors.TimeoutError`); the messages then wait out the ack timeout;
- the unbatched one runs the handlers of one fetch concurrently, so events are
  not handled in stream order;
- the default ack policy terminates a message whose handler raised.
So this module fetches with nats-py directly: up to `batch_size` events at once,
acknowledged after their handler returns, negatively acknowledged (redelivered
after `retry_delay`) when it raises.

`EventConsumer` hands each fetched batch to one handler, in stream order.
`KeyedEventConsumer` calls a handler per event: events with the same key (say,
the same task) are handled one after another in stream order, events with
different keys concurrently; when one fails, the later events of its key are
not handled but redelivered with it, so their order survives the retry.

Replicas share a consumer (same durable name), so each event is handled once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import nats
import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

logger = logging.getLogger(__name__)

BatchHandler = Callable[[Sequence[dict[str, Any]]], Awaitable[None]]
EventHandler = Callable[[dict[str, Any]], Awaitable[Any]]
KeyOf = Callable[[dict[str, Any]], str | None]


class EventConsumer:
    """Feeds `handler` batches of event envelopes from a durable pull consumer."""

    def __init__(
        self,
        nats_url: str,
        *,
        stream: str,
        filter_subject: str,
        durable: str,
        handler: BatchHandler,
        batch_size: int = 256,
        wait: float = 1.0,
        retry_delay: float = 1.0,
    ) -> None:
        self._servers = nats_url.split(",")
        self._stream = stream
        self._filter = filter_subject
        self._durable = durable
        self._handler = handler
        self._batch_size = batch_size
        self._wait = wait
        self._retry_delay = retry_delay
        self._connection: Client | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._connection = await nats.connect(
            self._servers, max_reconnect_attempts=-1, reconnect_time_wait=0.5
        )
        config = ConsumerConfig(
            durable_name=self._durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            max_ack_pending=max(1000, 4 * self._batch_size),
            # An event fetched by a replica that died is redelivered after this;
            # the default 30 s held routing up that long after a crash.
            ack_wait=10.0,
        )
        subscription = await self._connection.jetstream().pull_subscribe(
            self._filter, durable=self._durable, stream=self._stream, config=config
        )
        self._task = asyncio.create_task(
            self._run(subscription), name=f"consume-{self._durable}"
        )

    async def stop(self) -> None:
        # Bounded: a cancelled fetch or a closing connection was seen to hang under load.
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._task, 5)
        if self._connection is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._connection.close(), 5)

    async def _run(self, subscription: Any) -> None:
        while True:
            try:
                messages = await subscription.fetch(
                    batch=self._batch_size, timeout=self._wait
                )
            except TimeoutError:  # also nats.errors.TimeoutError, a subclass
                continue
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("event fetch failed; will retry", exc_info=True)
                await asyncio.sleep(self._retry_delay)
                continue
            await self._deliver(messages)

    async def _deliver(self, messages: list[Msg]) -> None:
        await self._deliver_batch(messages)

    async def _deliver_batch(self, messages: list[Msg]) -> None:
        bodies = [_decode(message) for message in messages]
        try:
            await self._handler([body for body in bodies if body is not None])
        except asyncio.CancelledError:
            raise
        except Exception:
            if len(messages) > 1:
                # Find the event that fails: the others must not wait behind it.
                logger.warning("event batch failed; retrying its events one by one")
                for message in messages:
                    await self._deliver_batch([message])
                return
            await _retry_or_drop(messages[0], self._retry_delay)
            return
        await asyncio.gather(*(m.ack() for m in messages))


class KeyedEventConsumer(EventConsumer):
    """Calls `handler(body)` per event, in order per key, concurrently across keys.

    `key_of(body)` returning None means "no order needed": such events run
    concurrently with everything else in the batch.
    """

    def __init__(
        self,
        nats_url: str,
        *,
        handler: EventHandler,
        key_of: KeyOf,
        is_barrier: Callable[[dict[str, Any]], bool] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(nats_url, handler=self._unused, **options)
        self._one = handler
        self._key_of = key_of
        self._is_barrier = is_barrier or (lambda _: False)

    @staticmethod
    async def _unused(_: Sequence[dict[str, Any]]) -> None:  # pragma: no cover
        raise AssertionError("KeyedEventConsumer handles events one by one")

    async def _deliver(self, messages: list[Msg]) -> None:
        """Handle a batch; a barrier event waits for all before it, all after wait for it.

        Example: a workflow update is a barrier for the router, so a task created
        after the update is never routed with the configuration from before it.
        """
        segment: list[tuple[Msg, dict[str, Any] | None]] = []
        for message in messages:
            body = _decode(message)
            if body is not None and self._is_barrier(body):
                await self._deliver_segment(segment)
                await self._deliver_in_order([(message, body)])
                segment = []
            else:
                segment.append((message, body))
        await self._deliver_segment(segment)

    async def _deliver_segment(self, segment: list[tuple[Msg, dict[str, Any] | None]]) -> None:
        groups: dict[object, list[tuple[Msg, dict[str, Any] | None]]] = {}
        for index, (message, body) in enumerate(segment):
            key = self._key_of(body) if body is not None else None
            groups.setdefault(key if key is not None else ("unordered", index), []).append((message, body))
        await asyncio.gather(*(self._deliver_in_order(group) for group in groups.values()))

    async def _deliver_in_order(self, group: list[tuple[Msg, dict[str, Any] | None]]) -> None:
        for position, (message, body) in enumerate(group):
            try:
                if body is not None:
                    await self._one(body)
            except asyncio.CancelledError:
                raise
            except Exception:
                if await _retry_or_drop(message, self._retry_delay):
                    # Later events of this key wait for it, to keep their order.
                    await asyncio.gather(*(m.nak(delay=self._retry_delay) for m, _ in group[position + 1 :]))
                    return
                continue
            await message.ack()


MAX_DELIVERIES = 10


async def _retry_or_drop(message: Msg, delay: float) -> bool:
    """Redeliver a failed event later; after MAX_DELIVERIES attempts give it up.

    Returns True when it will be redelivered. An event that fails every time (a
    poison message) would otherwise hold its consumer back forever; it is logged
    with its subject and sequence so an operator can replay it from the stream.
    """
    attempts = message.metadata.num_delivered if message.metadata else 1
    if attempts < MAX_DELIVERIES:
        logger.exception("event handling failed; it will be redelivered",
                         extra={"subject": message.subject, "attempt": attempts})
        await message.nak(delay=delay)
        return True
    logger.exception(
        "event handling failed %d times; event dropped", attempts,
        extra={"subject": message.subject, "stream_sequence": message.metadata.sequence.stream},
    )
    await message.term()
    return False


def _decode(message: Msg) -> dict[str, Any] | None:
    try:
        body = orjson.loads(message.data)
    except orjson.JSONDecodeError:
        logger.warning("event is not JSON; skipped", extra={"subject": message.subject})
        return None
    return body if isinstance(body, dict) else None
