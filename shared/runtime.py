"""What every service process shares: broker, store, committer, readiness, start-up.

A service builds a `ServiceRuntime`, registers its handlers on `runtime.broker`,
adds start-up work with `runtime.on_ready(...)`, and calls `runtime.run()`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import nats
from faststream.nats import NatsBroker
from nats.js.errors import BadRequestError, NotFoundError as JsNotFoundError

from shared import metrics
from shared.consumer import EventConsumer, KeyedEventConsumer
from shared.bus import CommandClient, event_publisher, event_stream_config, make_broker
from shared.health import HealthServer
from shared.settings import CommonSettings
from shared.storage.committer import Committer
from shared.storage.mongo import open_client
from shared.subjects import Subjects

logger = logging.getLogger(__name__)

StartHook = Callable[[], Awaitable[None]]


async def ensure_event_stream(settings: CommonSettings) -> None:
    """Create the event stream, or bring its configuration up to date."""
    config = event_stream_config(settings)
    connection = await nats.connect(settings.nats_url.split(","), connect_timeout=5)
    try:
        js = connection.jetstream()
        try:
            await js.stream_info(config.name)
            await js.update_stream(config=config)
        except JsNotFoundError:
            await js.add_stream(config=config)
        except BadRequestError:
            logger.warning("event stream configuration left unchanged", exc_info=True)
    finally:
        await connection.close()


class ServiceRuntime:
    """Broker, store and committer of one service process."""

    def __init__(self, name: str, settings: CommonSettings) -> None:
        self.name = name
        self.settings = settings
        self.subjects = Subjects(settings.subject_prefix)
        self.broker: NatsBroker = make_broker(settings)
        self.client = open_client(settings.mongodb_url)
        self.db = self.client[settings.mongodb_database]
        self.publish_event = event_publisher(self.broker, settings)
        self.committer = Committer(
            self.client, self.db, self.publish_event, outbox=f"outbox_{name.replace('-', '_')}"
        )
        self.commands = CommandClient(self.broker, settings)
        self.ready = asyncio.Event()
        self._start_hooks: list[StartHook] = []
        self._stop_hooks: list[StartHook] = []
        self._background: list[asyncio.Task[Any]] = []
        self._stopped = False
        # Durable consumers whose lag `/metrics` reports (the service's own name
        # too, for consumers registered on the broker directly).
        self._durables: set[str] = {name}
        self.consumer_lag_interval = 15.0
        self._health: HealthServer | None = None
        self._consumers: list[EventConsumer] = []
        self._register_ping()

    # -- registration ---------------------------------------------------------
    def on_ready(self, hook: StartHook) -> StartHook:
        """Run `hook` after the broker and store are up, before readiness."""
        self._start_hooks.append(hook)
        return hook

    def on_stop(self, hook: StartHook) -> StartHook:
        self._stop_hooks.append(hook)
        return hook

    def background(self, coroutine: Awaitable[Any], name: str) -> None:
        """Keep `coroutine` running until the process stops."""
        self._background.append(asyncio.ensure_future(coroutine))

    def event_subscriber(
        self,
        durable: str,
        filter_subject: str | Sequence[str] | None = None,
        batch: int = 64,
        whole_batch: bool = False,
        key_of: Callable[[dict[str, Any]], str | None] | None = None,
        is_barrier: Callable[[dict[str, Any]], bool] | None = None,
    ):
        """Decorator: a durable pull consumer over the event stream (shared by replicas).

        The handler gets one event envelope (`async def on_event(body: dict)`);
        events with the same `key_of(body)` are handled in stream order, others
        concurrently (no `key_of`: all concurrently); an `is_barrier` event waits for
        every event before it and holds back every event after it. With `whole_batch=True` it
        gets each fetched batch as one ordered list instead. A raise redelivers
        the event (and the later events of its key, or the whole batch). Consumers
        start after the `on_ready` hooks, so state is loaded before events flow.
        """
        filter_subject = filter_subject or self.subjects.events_matching()  # one or several
        self.track_consumer(durable)

        def register(handler: Callable[..., Awaitable[Any]]) -> Any:
            counted = metrics.counted_events(handler, self.name, whole_batch)
            options = dict(
                stream=self.subjects.event_stream,
                filter_subject=filter_subject,
                durable=durable,
                batch_size=batch,
            )
            if whole_batch:
                consumer: EventConsumer = EventConsumer(self.settings.nats_url, handler=counted, **options)
            else:
                consumer = KeyedEventConsumer(
                    self.settings.nats_url,
                    handler=counted,
                    key_of=key_of or _no_key,
                    is_barrier=is_barrier,
                    **options,
                )
            self._consumers.append(consumer)
            return handler

        return register

    def command_subscriber(self, action: str):
        """Decorator: a request/reply handler for `action`, in this service's queue group."""
        subscriber = self.broker.subscriber(
            self.subjects.command_listener(self.name, action), queue=self.name
        )

        def register(handler: Callable[..., Awaitable[Any]]) -> Any:
            return subscriber(metrics.counted_command(handler, self.name, action))

        return register

    def track_consumer(self, durable: str) -> None:
        """Report the lag of durable consumer `durable` in `taskrouter_consumer_lag`."""
        self._durables.add(durable)

    async def report_consumer_lag(self) -> None:
        """Read `num_pending` of this service's durable consumers into the lag gauge."""
        js = self.broker.connection.jetstream()
        for durable in sorted(self._durables):
            try:
                info = await js.consumer_info(self.subjects.event_stream, durable)
            except JsNotFoundError:
                continue  # not created yet, or a name that only might be a consumer
            except (nats.errors.Error, TimeoutError):
                logger.warning("consumer lag unavailable", extra={"consumer": durable})
                continue
            metrics.set_consumer_lag(self.name, durable, info.num_pending or 0)

    async def _report_consumer_lag_forever(self) -> None:
        while True:
            try:
                await self.report_consumer_lag()
            except Exception:  # e.g. between NATS reconnects; the next round retries
                logger.warning("consumer lag not reported", exc_info=True)
            await asyncio.sleep(self.consumer_lag_interval)

    def _register_ping(self) -> None:
        @self.broker.subscriber(self.subjects.ping(self.name), queue=self.name)
        async def on_ping() -> bytes:
            return b"ready" if self.ready.is_set() else b"starting"

    # -- life cycle -----------------------------------------------------------
    async def start(self) -> None:
        if self.settings.metrics_port:
            # First, so probes answer (/readyz with 503) while the rest starts.
            self._health = HealthServer(
                self.settings.metrics_host,
                self.settings.metrics_port,
                self.ready.is_set,
            )
            await self._health.start()
        await ensure_event_stream(self.settings)
        await self.broker.start()
        if self._health is not None:
            self.background(self._report_consumer_lag_forever(), "consumer-lag")
        await self.committer.start()
        await self.committer.relay_outbox()
        self.background(self.committer.run_relay(), "outbox-relay")
        for hook in self._start_hooks:
            await hook()
        for consumer in self._consumers:
            await consumer.start()
        self.ready.set()
        logger.info("service ready", extra={"service": self.name})

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.ready.clear()
        for consumer in self._consumers:
            await _bounded(consumer.stop(), "event consumer")
        for hook in self._stop_hooks:
            await _bounded(hook(), "stop hook")
        for task in self._background:
            task.cancel()
        # NOTE: draining the NATS connection was seen to hang now and then (a
        # subscription that never finishes draining); shutdown must still end.
        await _bounded(self.broker.stop(), "broker")
        await _bounded(self.committer.stop(), "committer")
        await _bounded(self.client.close(), "store client")
        if self._health is not None:
            await _bounded(self._health.stop(), "health server")
        logger.info("service stopped", extra={"service": self.name})

    async def serve_forever(self) -> None:
        """Start, wait for SIGINT/SIGTERM, stop."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        await stop.wait()
        await self.stop()


async def _bounded(step: Awaitable[Any], what: str, seconds: float = 5.0) -> None:
    """Await one shutdown step for at most `seconds`; log and move on if it hangs."""
    try:
        await asyncio.wait_for(step, seconds)
    except TimeoutError:
        logger.warning("shutdown step did not finish in time", extra={"step": what})
    except Exception:
        logger.warning("shutdown step failed", extra={"step": what}, exc_info=True)


def _no_key(_: dict[str, Any]) -> None:
    return None


def run(main: Callable[[], Awaitable[None]]) -> None:
    """Run `main` on uvloop when it is installed."""
    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
