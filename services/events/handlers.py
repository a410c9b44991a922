"""Handlers of the event stream: store every event, start the webhooks it causes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from services.events.deliverer import Deliverer
from services.events.deliveries import DeliveryStore, WebhookDelivery
from services.events.event_log import EventLog
from services.events.planning import needs_workflow, plan_deliveries
from shared.config_view import ConfigView, is_configuration_event
from shared.events import Event
from shared.models import utcnow

logger = logging.getLogger(__name__)


class EventHandlers:
    """What the events service does with each batch of events."""

    def __init__(
        self,
        log: EventLog,
        config: ConfigView,
        deliveries: DeliveryStore,
        deliverer: Deliverer,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._log = log
        self._config = config
        self._deliveries = deliveries
        self._deliverer = deliverer
        self._clock = clock

    async def on_events(self, bodies: list[dict[str, Any]]) -> None:
        """Store a batch of events, then record and start their webhooks.

        Idempotent: a redelivered batch stores nothing twice and starts no second
        delivery (event and delivery ids are fixed by the event SID). Raising
        leaves the batch unacknowledged, so it comes again.
        """
        events = _valid_events(bodies)
        await self._log.append(events)
        planned = await self._plan(events)
        now = self._clock()
        for delivery, first in zip(
            planned, self._deliverer.first_attempt_times(len(planned), now)
        ):
            delivery.next_attempt_at = first
        new = await self._deliveries.insert_new(planned)
        self._deliverer.submit(new)

    async def on_configuration_event(self, body: dict[str, Any]) -> None:
        """Refresh the configuration view (every replica hears these)."""
        event_type = body.get("event_type", "")
        workspace_sid = body.get("workspace_sid")
        if workspace_sid and is_configuration_event(event_type):
            await self._config.refresh(workspace_sid)

    async def _plan(self, events: list[Event]) -> list[WebhookDelivery]:
        """Deliveries of `events`; a configuration change applies from the next."""
        planned: list[WebhookDelivery] = []
        for event in events:
            if is_configuration_event(event.event_type):
                # TODO: `workspace.deleted` finds no workspace left to read, so it is
                # never sent to the EventCallbackUrl; keep the last view for it.
                config = await self._config.refresh(event.workspace_sid)
            else:
                config = await self._config.get(event.workspace_sid)
            if needs_workflow(event, config):
                config = await self._config.refresh(event.workspace_sid)
            planned.extend(
                plan_deliveries(
                    event, config, now=self._clock(), first_attempt_at=self._clock()
                )
            )
        return planned


def _valid_events(bodies: list[dict[str, Any]]) -> list[Event]:
    """The bodies that are events; anything else is logged and dropped."""
    events = []
    for body in bodies:
        try:
            events.append(Event.model_validate(body))
        except ValidationError:
            logger.error(
                "message on the event stream is not an event; dropped",
                extra={"sid": body.get("sid") if isinstance(body, dict) else None},
            )
    return events
