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

`EventConsumer` hands each fetched batch to one handler, in stream order. With
`with_sequence=True` the handler gets `(stream sequence, body)` pairs instead of
bodies, and `start(from_sequence=N)` recreates the durable consumer so delivery
starts at stream sequence N: a handler that keeps its own progress (the last
sequence it made durable) resumes exactly there, whatever was acknowledged.
`KeyedEventConsumer` calls a handler per event: events with the same key (say,
the same task) are handled one after another in stream order, events with
different keys concurrently; when one fails, the later events of its key are
not handled but redelivered with it, so their order survives the retry. A
barrier event (`is_barrier`) that fails holds back every later event likewise.

Replicas share a consumer (same durable name), so each event is handled once.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import nats
import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError as JsNotFoundError

from shared.errors import UnavailableError

logger = logging.getLogger(__name__)

BatchHandler = Callable[[Sequence[dict[str, Any]]], Awaitable[None]]
SequencedBatchHandler = Callable[[Sequence[tuple[int, dict[str, Any]]]], Awaitable[None]]
EventHandler = Callable[[dict[str, Any]], Awaitable[Any]]
KeyOf = Callable[[dict[str, Any]], str | None]

ACK_WAIT = 10.0  # seconds before an event fetched but not acknowledged is redelivered

# The hold key of barrier events: a failed one holds back every later event.
_BARRIER = ("barrier",)


class EventConsumer:
    """Feeds `handler` batches of event envelopes from a durable pull consumer."""

    def __init__(
        self,
        nats_url: str,
        *,
        stream: str,
        filter_subject: str | Sequence[str],
        durable: str,
        handler: BatchHandler | SequencedBatchHandler,
        batch_size: int = 256,
        wait: float = 1.0,
        retry_delay: float = 1.0,
        max_retry_delay: float = 10.0,
        with_sequence: bool = False,
    ) -> None:
        self._servers = nats_url.split(",")
        self._stream = stream
        # One subject, or several (a JetStream consumer with `filter_subjects`).
        self._filters = [filter_subject] if isinstance(filter_subject, str) else list(filter_subject)
        self._durable = durable
        self._handler = handler
        self._batch_size = batch_size
        self._wait = wait
        self._retry_delay = retry_delay
        self._max_retry_delay = max_retry_delay
        self._with_sequence = with_sequence
        self._connection: Client | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def _retry_delays(self) -> tuple[float, float]:
        return self._retry_delay, self._max_retry_delay

    async def start(self, from_sequence: int | None = None) -> None:
        """Connect and consume; `from_sequence` restarts delivery at that stream sequence.

        Without it, an existing durable consumer continues after what was
        acknowledged. With it, the durable consumer is deleted and created again
        starting there, so it must not be in use elsewhere (one replica).
        """
        self._connection = await nats.connect(
            self._servers, max_reconnect_attempts=-1, reconnect_time_wait=0.5
        )
        js = self._connection.jetstream()
        config = ConsumerConfig(
            durable_name=self._durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            max_ack_pending=max(1000, 4 * self._batch_size),
            # An event fetched by a replica that died is redelivered after this;
            # the default 30 s held routing up that long after a crash.
            ack_wait=ACK_WAIT,
        )
        self._set_filters(config)
        if from_sequence is not None:
            with contextlib.suppress(JsNotFoundError):
                await js.delete_consumer(self._stream, self._durable)
            config.deliver_policy = DeliverPolicy.BY_START_SEQUENCE
            config.opt_start_seq = max(from_sequence, 1)
        else:
            await self._refilter(js, config)
        subscription = await js.pull_subscribe(
            self._filters[0], durable=self._durable, stream=self._stream, config=config
        )
        self._task = asyncio.create_task(
            self._run(subscription), name=f"consume-{self._durable}"
        )

    def _set_filters(self, config: ConsumerConfig) -> None:
        """One subject goes in `filter_subject`, several in `filter_subjects`."""
        several = len(self._filters) > 1
        config.filter_subject = None if several else self._filters[0]
        config.filter_subjects = self._filters if several else None

    async def _refilter(self, js: Any, config: ConsumerConfig) -> None:
        """Give an existing durable consumer this version's subjects, keeping its place.

        A consumer made by an earlier version keeps its filter otherwise (the
        client binds to it as it is), and would miss or over-deliver events.
        NOTE: JetStream keeps the consumer's position, so widening a filter does
        not bring back events the narrower one passed over while it ran; a
        version that widens one must start that consumer from a sequence.
        """
        try:
            info = await js.consumer_info(self._stream, self._durable)
        except JsNotFoundError:
            return
        current = list(info.config.filter_subjects or []) or [info.config.filter_subject or ""]
        if sorted(current) == sorted(self._filters):
            return
        update = copy.copy(info.config)
        self._set_filters(update)
        await js.add_consumer(self._stream, config=update)
        logger.info(
            "consumer filter changed",
            extra={"durable": self._durable, "before": current, "after": self._filters},
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
            try:
                await self._deliver(messages)
            except asyncio.CancelledError:
                raise
            except Exception:
                # An acknowledgement that could not be sent, say: what was not
                # acknowledged comes back after ACK_WAIT. Consuming must go on.
                logger.exception("event delivery failed; unacknowledged events come back")

    async def _deliver(self, messages: list[Msg]) -> None:
        await self._deliver_batch(messages)

    async def _deliver_batch(self, messages: list[Msg]) -> None:
        try:
            await self._handler(self._batch_of(messages))
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if len(messages) > 1:
                # Find the event that fails: the others must not wait behind it.
                logger.warning("event batch failed; retrying its events one by one")
                for message in messages:
                    await self._deliver_batch([message])
                return
            await _retry_or_drop(messages[0], self._retry_delays, error)
            return
        await asyncio.gather(*(m.ack() for m in messages))

    def _batch_of(self, messages: list[Msg]) -> list[Any]:
        """What the handler gets: decoded bodies, or (stream sequence, body) pairs."""
        decoded = [(message, _decode(message)) for message in messages]
        if self._with_sequence:
            return [(_sequence(m), body) for m, body in decoded if body is not None]
        return [body for _, body in decoded if body is not None]


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
        # key -> (stream sequence of its failed event, when the hold lapses)
        self._held: dict[object, tuple[int, float]] = {}
        # stream sequence -> deliveries nak'd without handling the event (it
        # waited for an earlier one): they are not attempts of its own.
        # TODO: an entry whose event is then handled by another replica stays.
        self._waits: dict[int, int] = {}

    @staticmethod
    async def _unused(_: Sequence[dict[str, Any]]) -> None:  # pragma: no cover
        raise AssertionError("KeyedEventConsumer handles events one by one")

    async def _deliver(self, messages: list[Msg]) -> None:
        """Handle a batch; a barrier event waits for all before it, all after wait for it.

        Example: a workflow update is a barrier for the router, so a task created
        after the update is never routed with the configuration from before it.
        """
        segment: list[tuple[Msg, dict[str, Any] | None]] = []
        waiting: list[Msg] = []
        for message in messages:
            body = _decode(message)
            if self._is_held(_BARRIER, message):
                # A barrier before it failed and waits for its redelivery.
                waiting.append(message)
            elif body is not None and self._barrier(body):
                await self._deliver_segment(segment)
                await self._deliver_in_order([(message, body)], _BARRIER)
                segment = []
            else:
                segment.append((message, body))
        await self._deliver_segment(segment)
        await self._postpone(waiting, self._retry_delay)

    async def _deliver_segment(self, segment: list[tuple[Msg, dict[str, Any] | None]]) -> None:
        groups: dict[object, list[tuple[Msg, dict[str, Any] | None]]] = {}
        unordered: list[list[tuple[Msg, dict[str, Any] | None]]] = []
        for message, body in segment:
            key = self._key(body) if body is not None else None
            if key is None:
                unordered.append([(message, body)])  # no key, no hold: nothing waits for it
            else:
                groups.setdefault(key, []).append((message, body))
        for group in groups.values():
            # Redeliveries can come after later events of their key: restore stream order.
            group.sort(key=lambda pair: _sequence(pair[0]))
        await asyncio.gather(
            *(self._deliver_in_order(group, key) for key, group in groups.items()),
            *(self._deliver_in_order(group) for group in unordered),
        )

    async def _deliver_in_order(
        self, group: list[tuple[Msg, dict[str, Any] | None]], key: object = None
    ) -> None:
        if key is not None and self._is_held(key, group[0][0]):
            # An earlier event of this key failed and waits for redelivery: the
            # later ones must not overtake it.
            await self._postpone([m for m, _ in group], self._retry_delay)
            return
        for position, (message, body) in enumerate(group):
            try:
                if body is not None:
                    await self._one(body)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                attempts = _attempts(message) - self._waits.get(_sequence(message), 0)
                delay = await _retry_or_drop(message, self._retry_delays, error, attempts)
                if delay is not None:
                    if key is not None:
                        self._hold(key, message, delay)
                    # Later events of this key wait as long, to keep their order.
                    await self._postpone([m for m, _ in group[position + 1 :]], delay)
                    return
                self._done(key, message)
                continue
            self._done(key, message)
            await message.ack()

    def _barrier(self, body: dict[str, Any]) -> bool:
        """`is_barrier(body)`; False for an envelope it cannot judge (it must not stop consuming)."""
        try:
            return bool(self._is_barrier(body))
        except Exception:
            logger.warning("event envelope not understood; not a barrier", exc_info=True)
            return False

    def _key(self, body: dict[str, Any]) -> object:
        """`key_of(body)`; None (no order) for an envelope it cannot read."""
        try:
            return self._key_of(body)
        except Exception:
            logger.warning("event envelope not understood; handled without order", exc_info=True)
            return None

    async def _postpone(self, messages: Sequence[Msg], delay: float) -> None:
        """Redeliver events later without having tried them (they wait for an earlier one).

        JetStream counts these deliveries too; they are remembered so that they
        do not use up the event's own MAX_DELIVERIES attempts.
        """
        for message in messages:
            sequence = _sequence(message)
            self._waits[sequence] = self._waits.get(sequence, 0) + 1
        await asyncio.gather(*(m.nak(delay=delay) for m in messages))

    def _done(self, key: object, message: Msg) -> None:
        """`message` was handled or dropped: release its key if it was the one held.

        An older event of the key (a redelivery from elsewhere) does not release
        a hold placed by a newer one.
        """
        sequence = _sequence(message)
        self._waits.pop(sequence, None)
        held = self._held.get(key)
        if held is not None and sequence >= held[0]:
            del self._held[key]

    def _hold(self, key: object, message: Msg, delay: float) -> None:
        """Remember that `message` failed, so later events of its key wait for it.

        The hold lapses on its own after the delay plus the ack timeout, in case
        the event is redelivered to another replica instead of this one.
        """
        sequence = message.metadata.sequence.stream if message.metadata else 0
        lapses = asyncio.get_running_loop().time() + delay + ACK_WAIT
        self._held[key] = (sequence, lapses)

    def _is_held(self, key: object, first: Msg) -> bool:
        held = self._held.get(key)
        if held is None:
            return False
        sequence, lapses = held
        if asyncio.get_running_loop().time() > lapses:
            del self._held[key]
            return False
        return not first.metadata or first.metadata.sequence.stream > sequence


MAX_DELIVERIES = 10


def is_transient(error: BaseException) -> bool:
    """Errors that say "not now" rather than "never": the store or a service is unreachable.

    One case matters most: a process killed inside a store transaction leaves
    it open, and its documents answer WriteConflict until the store reaps it
    (60 s in MongoDB and in the local store). The event is retried past that.
    """
    return isinstance(error, UnavailableError | TimeoutError | ConnectionError)


def retry_delay(attempt: int, base: float, cap: float) -> float:
    """Exponential back-off: base, 2×base, 4×base, … never more than `cap`."""
    return min(base * 2 ** min(max(attempt - 1, 0), 30), cap)


def _attempts(message: Msg) -> int:
    """How many times JetStream delivered `message`, this time included."""
    return message.metadata.num_delivered if message.metadata else 1


async def _retry_or_drop(
    message: Msg, delays: tuple[float, float], error: BaseException, attempts: int | None = None
) -> float | None:
    """Redeliver a failed event later; returns the delay, or None when it is dropped.

    A transient failure (see `is_transient`) is retried with exponential back-off
    for as long as it lasts; any other after the base delay. `delays` is
    (base, cap). Any other failure is given up after MAX_DELIVERIES attempts: an
    event that fails every time (a poison message) would otherwise hold its
    consumer back forever; it is logged with its subject and stream sequence so
    an operator can replay it from the stream. `attempts` defaults to JetStream's
    delivery count.
    """
    if attempts is None:
        attempts = _attempts(message)
    if is_transient(error) or attempts < MAX_DELIVERIES:
        logger.warning(
            "event handling failed; it will be redelivered",
            exc_info=error,
            extra={"subject": message.subject, "attempt": attempts, "reason": str(error)},
        )
        base, cap = delays
        delay = retry_delay(attempts, base, cap) if is_transient(error) else base
        await message.nak(delay=delay)
        return delay
    logger.error(
        "event handling failed %d times; event dropped", attempts,
        exc_info=error,
        extra={"subject": message.subject, "stream_sequence": message.metadata.sequence.stream},
    )
    await message.term()
    return None


def _sequence(message: Msg) -> int:
    """The stream sequence of a message a JetStream consumer delivered."""
    assert message.metadata is not None, "not a JetStream message"
    return message.metadata.sequence.stream


def _decode(message: Msg) -> dict[str, Any] | None:
    try:
        body = orjson.loads(message.data)
    except orjson.JSONDecodeError:
        logger.warning("event is not JSON; skipped", extra={"subject": message.subject})
        return None
    return body if isinstance(body, dict) else None
