"""Form parameters of event and assignment callbacks; EventsFilter parsing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.events.webhook_form import (
    assignment_callback_params,
    event_callback_params,
    filter_allows,
    form_value,
    parse_events_filter,
    pascal_case,
)
from shared.events import make_event

AT = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def _event(event_type: str, **data):
    return make_event(
        event_type,
        account_sid="AC1",
        workspace_sid="WS1",
        resource_type=event_type.split(".")[0],
        resource_sid="WR1",
        at=AT,
        description="something happened",
        data=data,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, None),
        ("", None),
        (" , ", None),
        ("task.created", {"task.created"}),
        (
            "task.created, task.canceled,worker.activity.update",
            {"task.created", "task.canceled", "worker.activity.update"},
        ),
        ("worker.activity", {"worker.activity.update"}),
    ],
    ids=["unset", "empty", "only-commas", "one", "spaces-after-commas", "legacy-name"],
)
def test_parse_events_filter(text, expected):
    assert parse_events_filter(text) == (
        None if expected is None else frozenset(expected)
    )


def test_filter_allows_only_listed_types():
    allowed = parse_events_filter("task.created, task.canceled")

    assert filter_allows(allowed, "task.canceled")
    assert not filter_allows(allowed, "reservation.created")
    assert filter_allows(None, "reservation.created")


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("task_sid", "TaskSid"),
        ("task_queue_sid", "TaskQueueSid"),
        ("worker_time_in_previous_activity_ms", "WorkerTimeInPreviousActivityMs"),
        ("task_channel_unique_name", "TaskChannelUniqueName"),
    ],
)
def test_pascal_case(key, name):
    assert pascal_case(key) == name


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("x", "x"),
        (True, "true"),
        (False, "false"),
        (3, "3"),
        ({"a": 1}, '{"a":1}'),
        (None, None),
    ],
    ids=["str", "true", "false", "int", "dict", "none"],
)
def test_form_value(value, text):
    assert form_value(value) == text


def test_event_callback_params_has_fixed_fields_and_groups():
    event = _event(
        "reservation.created",
        task_sid="WT1",
        task_attributes='{"type": "support"}',
        task_age="3",
        reservation_sid="WR1",
        worker_sid="WK1",
        worker_time_in_previous_activity_ms="1500",
        task_queue_name=None,
        task_version="2",
    )
    sent_at = datetime(2026, 1, 2, 3, 4, 9, tzinfo=UTC)

    params = event_callback_params(event, "Support", sent_at)

    assert params["EventType"] == "reservation.created"
    assert params["AccountSid"] == "AC1"
    assert params["WorkspaceSid"] == "WS1"
    assert params["WorkspaceName"] == "Support"
    assert params["EventDescription"] == "something happened"
    assert params["ResourceType"] == "reservation"
    assert params["ResourceSid"] == "WR1"
    assert params["Timestamp"] == "2026-01-02T03:04:09Z"
    assert params["Sid"] == event.sid
    assert params["TaskAttributes"] == '{"type": "support"}'
    assert params["WorkerTimeInPreviousActivityMs"] == "1500"
    assert "TaskQueueName" not in params
    assert "TaskVersion" not in params
    assert all(isinstance(v, str) for v in params.values())


def test_event_callback_params_adds_plain_reason_on_task_canceled():
    event = _event("task.canceled", task_sid="WT1", task_canceled_reason="TTL")

    params = event_callback_params(event, "Support", AT)

    assert params["TaskCanceledReason"] == "TTL"
    assert params["Reason"] == "TTL"


def test_assignment_callback_params():
    event = _event(
        "reservation.created",
        task_sid="WT1",
        task_attributes="{}",
        task_age="0",
        task_priority="5",
        worker_sid="WK1",
        worker_attributes='{"skills": ["fr"]}',
        reservation_sid="WR1",
        task_queue_sid="WQ1",
        workflow_sid="WW1",
        worker_name="Alice",
    )

    params = assignment_callback_params(event)

    assert params == {
        "AccountSid": "AC1",
        "WorkspaceSid": "WS1",
        "WorkflowSid": "WW1",
        "TaskQueueSid": "WQ1",
        "TaskSid": "WT1",
        "TaskAttributes": "{}",
        "TaskAge": "0",
        "TaskPriority": "5",
        "WorkerSid": "WK1",
        "WorkerAttributes": '{"skills": ["fr"]}',
        "ReservationSid": "WR1",
        "Timestamp": "2026-01-02T03:04:05Z",
    }
