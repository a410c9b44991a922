"""Which webhooks an event causes: a pure decision from the event and configuration."""

from __future__ import annotations

import uuid
from datetime import datetime

from services.events.deliveries import DeliveryKind, WebhookDelivery
from services.events.webhook_form import (
    assignment_callback_params,
    event_callback_params,
    filter_allows,
    parse_events_filter,
)
from shared.config_view import WorkspaceConfig
from shared.events import Event

ASSIGNMENT_EVENT = "reservation.created"


def plan_deliveries(
    event: Event,
    config: WorkspaceConfig | None,
    *,
    now: datetime,
    first_attempt_at: datetime,
) -> list[WebhookDelivery]:
    """The deliveries `event` causes in a workspace configured as `config`.

    - the workspace's EventCallbackUrl, when set and its EventsFilter allows the type;
    - the workflow's AssignmentCallbackUrl on `reservation.created` (workflows.md §6).
    """
    if config is None:
        return []
    planned = []
    workspace = config.workspace
    allowed = parse_events_filter(workspace.events_filter)
    if workspace.event_callback_url and filter_allows(allowed, event.event_type):
        params = event_callback_params(event, workspace.friendly_name, now)
        planned.append(
            _delivery(
                event,
                DeliveryKind.EVENT_CALLBACK,
                workspace.event_callback_url,
                None,
                params,
                now,
                first_attempt_at,
            )
        )
    workflow = config.workflows.get(event.event_data.get("workflow_sid") or "")
    callback_url = workflow.assignment_callback_url if workflow else None
    reservation_sid = event.event_data.get("reservation_sid")
    if event.event_type == ASSIGNMENT_EVENT and callback_url and reservation_sid:
        params = assignment_callback_params(event)
        planned.append(
            _delivery(
                event,
                DeliveryKind.ASSIGNMENT_CALLBACK,
                callback_url,
                workflow.fallback_assignment_callback_url or None,
                params,
                now,
                first_attempt_at,
            )
        )
    return planned


def needs_workflow(event: Event, config: WorkspaceConfig | None) -> bool:
    """True when an assignment event names a workflow the view does not know yet."""
    workflow_sid = event.event_data.get("workflow_sid")
    return (
        event.event_type == ASSIGNMENT_EVENT
        and config is not None
        and bool(workflow_sid)
        and workflow_sid not in config.workflows
    )


def _delivery(
    event: Event,
    kind: DeliveryKind,
    url: str,
    fallback_url: str | None,
    params: dict[str, str],
    now: datetime,
    first_attempt_at: datetime,
) -> WebhookDelivery:
    return WebhookDelivery(
        id=WebhookDelivery.make_id(event.sid, kind),
        kind=kind,
        event_sid=event.sid,
        event_type=event.event_type,
        account_sid=event.account_sid,
        workspace_sid=event.workspace_sid,
        url=url,
        fallback_url=fallback_url,
        params=params,
        idempotency_token=f"{event.sid}-{uuid.uuid4().hex}",
        next_attempt_at=first_attempt_at,
        created_at=now,
    )
