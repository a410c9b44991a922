"""The form parameters of EventCallbackUrl and assignment callback requests.

Event data is stored with snake_case keys (`task_queue_sid`); webhooks carry the
same values under PascalCase names (`TaskQueueSid`). Values are strings; nested
values (attributes given as objects) become JSON, `None` is left out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from shared.events import Event

# Event types spelled the legacy way in Twilio's docs, with their modern name.
LEGACY_EVENT_TYPES = {"worker.activity": "worker.activity.update"}

# Event data keys that only make sense inside the system; never sent to receivers.
_INTERNAL_KEYS = frozenset({"task_version"})


def pascal_case(key: str) -> str:
    """`task_queue_sid` -> `TaskQueueSid`."""
    return "".join(part.capitalize() for part in key.split("_"))


def form_value(value: Any) -> str | None:
    """A form field value: strings as they are, booleans lower-case, the rest JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()


def iso_timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with second precision, as the REST API writes dates."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def event_callback_params(
    event: Event, workspace_name: str, sent_at: datetime
) -> dict[str, str]:
    """Every POST parameter of the EventCallbackUrl request for `event`.

    The fixed parameters of events.md §2 come first, then the event data groups.
    `Sid` (the event SID) is an addition receivers may use to de-duplicate.
    """
    params: dict[str, str] = {}
    for key, value in event.event_data.items():
        text = form_value(value)
        if text is not None and key not in _INTERNAL_KEYS:
            params[pascal_case(key)] = text
    if event.event_type == "task.canceled" and "TaskCanceledReason" in params:
        # Some receivers read a plain `Reason` on task.canceled (observed).
        params["Reason"] = params["TaskCanceledReason"]
    params.update(
        EventType=event.event_type,
        AccountSid=event.account_sid,
        WorkspaceSid=event.workspace_sid,
        WorkspaceName=workspace_name,
        EventDescription=event.description,
        ResourceType=event.resource_type,
        ResourceSid=event.resource_sid,
        Timestamp=iso_timestamp(sent_at),
        Sid=event.sid,
    )
    return params


_ASSIGNMENT_KEYS = {
    "WorkflowSid": "workflow_sid",
    "TaskQueueSid": "task_queue_sid",
    "TaskSid": "task_sid",
    "TaskAttributes": "task_attributes",
    "TaskAge": "task_age",
    "TaskPriority": "task_priority",
    "WorkerSid": "worker_sid",
    "WorkerAttributes": "worker_attributes",
    "ReservationSid": "reservation_sid",
}


def assignment_callback_params(event: Event) -> dict[str, str]:
    """Assignment callback parameters (workflows.md §6) of a `reservation.created`."""
    params = {"AccountSid": event.account_sid, "WorkspaceSid": event.workspace_sid}
    for name, key in _ASSIGNMENT_KEYS.items():
        text = form_value(event.event_data.get(key))
        if text is not None:
            params[name] = text
    params["Timestamp"] = iso_timestamp(event.event_date)
    return params


def parse_events_filter(text: str | None) -> frozenset[str] | None:
    """The event types a workspace's `EventsFilter` lets through; None means all.

    `"task.created, worker.activity"` -> `{"task.created", "worker.activity.update"}`:
    commas separate, spaces around names are ignored, legacy names are translated.
    An empty or blank filter lets everything through.
    """
    if text is None:
        return None
    names = {part.strip() for part in text.split(",")} - {""}
    if not names:
        return None
    return frozenset(LEGACY_EVENT_TYPES.get(name, name) for name in names)


def filter_allows(allowed: frozenset[str] | None, event_type: str) -> bool:
    return allowed is None or event_type in allowed
