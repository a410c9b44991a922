"""The events service: wiring of the runtime, the event log and webhook delivery."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.events.assignment import AssignmentCallbacks
from services.events.batching import EventBatcher
from services.events.deliverer import Deliverer
from services.events.deliveries import DeliveryKind, DeliveryStore
from services.events.event_callbacks import EventCallbacks
from services.events.event_log import EventLog
from services.events.handlers import EventHandlers
from services.events.sender import Sender
from services.events.settings import EventsSettings
from services.events.tokens import AuthTokens
from shared.config_view import ConfigView
from shared.logging import configure_logging
from shared.runtime import ServiceRuntime, run
from shared.settings import load
from shared.subjects import EVENTS

DURABLE = "events"
# Configuration event types the webhooks depend on (callback URLs, filter, names).
_CONFIG_TYPES = (
    "workspace.>",
    "workflow.created",
    "workflow.updated",
    "workflow.deleted",
)


@dataclass
class EventsService:
    """The parts of a running events service, for tests and the entry point."""

    runtime: ServiceRuntime
    handlers: EventHandlers
    deliverer: Deliverer
    deliveries: DeliveryStore
    log: EventLog
    tokens: AuthTokens


def build_service(settings: EventsSettings) -> EventsService:
    """Build the runtime and register every handler; `runtime.start()` runs it."""
    runtime = ServiceRuntime(EVENTS, settings)
    config = ConfigView(runtime.db)
    log = EventLog(runtime.db, settings.event_retention_days)
    deliveries = DeliveryStore(runtime.db)
    sender = Sender(
        allow_private=settings.webhook_allow_private,
        max_connections=settings.webhook_concurrency,
    )
    tokens = AuthTokens(runtime.db, settings.secret_key)
    # Every replica hears a rotated token at once (a plain subscription, no queue group).
    runtime.broker.subscriber(runtime.subjects.credentials_changed())(tokens.on_credentials_changed)
    handlers_by_kind = {
        DeliveryKind.EVENT_CALLBACK: EventCallbacks(
            sender,
            tokens,
            settings.default_overrides(),
            settings.webhook_backoff_seconds,
        ),
        DeliveryKind.ASSIGNMENT_CALLBACK: AssignmentCallbacks(
            sender,
            tokens,
            runtime.commands,
            timeout_seconds=settings.assignment_callback_timeout_seconds,
            backoff_base=settings.webhook_backoff_seconds,
        ),
    }
    deliverer = Deliverer(deliveries, handlers_by_kind, settings)
    handlers = EventHandlers(log, config, deliveries, deliverer)
    batcher = EventBatcher(handlers.on_events)
    _subscribe(runtime, handlers, batcher)

    async def prepare() -> None:
        await log.ensure_indexes()
        await deliveries.ensure_indexes()
        runtime.background(deliverer.run_scanner(), "webhook-scanner")

    async def shut_down() -> None:
        await batcher.stop()
        await deliverer.stop()
        await sender.close()

    runtime.on_ready(prepare)
    runtime.on_stop(shut_down)
    return EventsService(runtime, handlers, deliverer, deliveries, log, tokens)


def _subscribe(
    runtime: ServiceRuntime, handlers: EventHandlers, batcher: EventBatcher
) -> None:
    @runtime.event_subscriber(durable=DURABLE, batch=128)
    async def on_event(body: dict[str, Any]) -> None:
        await batcher.submit(body)

    # Every replica refreshes its view of workspaces and workflows; the durable
    # consumer above hands each event to one replica only.
    for event_type in _CONFIG_TYPES:
        subject = runtime.subjects.events_matching(event_type=event_type)

        @runtime.broker.subscriber(subject)
        async def on_configuration_event(body: dict[str, Any]) -> None:
            await handlers.on_configuration_event(body)


async def serve() -> None:
    settings = load(EventsSettings)
    configure_logging(EVENTS, settings.log_level, settings.log_format)
    service = build_service(settings)
    await service.runtime.serve_forever()


def main() -> None:
    run(serve)
