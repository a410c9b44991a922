"""Which deliveries an event causes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.events.deliveries import DeliveryKind
from services.events.planning import needs_workflow, plan_deliveries
from shared.config_view import WorkspaceConfig
from shared.events import make_event
from shared.models import Workflow, Workspace

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
LATER = NOW + timedelta(seconds=60)


def _config(
    callback: str | None = "https://h.example/ev",
    events_filter: str | None = None,
    assignment: str | None = None,
    fallback: str | None = None,
) -> WorkspaceConfig:
    workspace = Workspace(
        sid="WS1",
        account_sid="AC1",
        friendly_name="Support",
        event_callback_url=callback,
        events_filter=events_filter,
    )
    workflow = Workflow(
        sid="WW1",
        account_sid="AC1",
        workspace_sid="WS1",
        friendly_name="Main",
        configuration="{}",
        assignment_callback_url=assignment,
        fallback_assignment_callback_url=fallback,
    )
    return WorkspaceConfig(workspace, workflows={"WW1": workflow})


def _event(event_type: str, workflow_sid: str = "WW1"):
    return make_event(
        event_type,
        account_sid="AC1",
        workspace_sid="WS1",
        resource_type="reservation",
        resource_sid="WR1",
        at=NOW,
        data={"workflow_sid": workflow_sid, "reservation_sid": "WR1"},
    )


def test_plan_event_callback_when_url_set():
    event = _event("task.created")

    [delivery] = plan_deliveries(event, _config(), now=NOW, first_attempt_at=LATER)

    assert delivery.kind is DeliveryKind.EVENT_CALLBACK
    assert delivery.id == f"{event.sid}:event_callback"
    assert delivery.url == "https://h.example/ev"
    assert delivery.params["WorkspaceName"] == "Support"
    assert delivery.params["Timestamp"] == "2026-01-02T03:04:05Z"
    assert delivery.next_attempt_at == LATER
    assert delivery.idempotency_token.startswith(event.sid)


def test_plan_nothing_without_url_or_workspace():
    assert (
        plan_deliveries(
            _event("task.created"),
            _config(callback=None),
            now=NOW,
            first_attempt_at=NOW,
        )
        == []
    )
    assert (
        plan_deliveries(_event("task.created"), None, now=NOW, first_attempt_at=NOW)
        == []
    )


def test_plan_respects_events_filter():
    config = _config(events_filter="task.canceled, worker.activity")

    assert (
        plan_deliveries(_event("task.created"), config, now=NOW, first_attempt_at=NOW)
        == []
    )
    assert (
        len(
            plan_deliveries(
                _event("worker.activity.update"), config, now=NOW, first_attempt_at=NOW
            )
        )
        == 1
    )


def test_plan_assignment_callback_on_reservation_created_only():
    config = _config(
        callback=None,
        assignment="https://h.example/assign",
        fallback="https://h.example/fallback",
    )

    [delivery] = plan_deliveries(
        _event("reservation.created"), config, now=NOW, first_attempt_at=NOW
    )

    assert delivery.kind is DeliveryKind.ASSIGNMENT_CALLBACK
    assert delivery.url == "https://h.example/assign"
    assert delivery.fallback_url == "https://h.example/fallback"
    assert delivery.params["ReservationSid"] == "WR1"
    assert (
        plan_deliveries(
            _event("reservation.accepted"), config, now=NOW, first_attempt_at=NOW
        )
        == []
    )


def test_plan_both_callbacks_for_one_reservation_created():
    config = _config(assignment="https://h.example/assign")

    kinds = [
        d.kind
        for d in plan_deliveries(
            _event("reservation.created"), config, now=NOW, first_attempt_at=NOW
        )
    ]

    assert kinds == [DeliveryKind.EVENT_CALLBACK, DeliveryKind.ASSIGNMENT_CALLBACK]


def test_needs_workflow_when_view_misses_it():
    config = _config()

    assert needs_workflow(_event("reservation.created", "WW2"), config)
    assert not needs_workflow(_event("reservation.created", "WW1"), config)
    assert not needs_workflow(_event("task.created", "WW2"), config)


def test_plan_no_assignment_callback_without_reservation_sid():
    config = _config(callback=None, assignment="https://h.example/assign")
    event = make_event(
        "reservation.created",
        account_sid="AC1",
        workspace_sid="WS1",
        resource_type="reservation",
        resource_sid="WR1",
        at=NOW,
        data={"workflow_sid": "WW1"},
    )

    assert plan_deliveries(event, config, now=NOW, first_attempt_at=NOW) == []
