"""The event envelope's plain form is made once and follows any change."""

import orjson

from shared.events import Event


def _event() -> Event:
    return Event(
        account_sid="AC1", workspace_sid="WS1", event_type="task.created",
        event_date_ms=1_000, resource_type="task", resource_sid="WT1",
    )


def test_the_dump_is_made_once_and_matches_model_dump() -> None:
    event = _event()
    first = event.dump()
    assert first == event.model_dump()
    assert event.dump() is first


def test_setting_a_field_or_copying_with_changes_refreshes_the_dump() -> None:
    event = _event()
    event.dump()
    event.source_ip_address = "192.0.2.1"
    assert event.dump()["source_ip_address"] == "192.0.2.1"
    copied = event.model_copy(update={"event_type": "task.updated"})
    assert copied.dump()["event_type"] == "task.updated"
    assert event.dump()["event_type"] == "task.created"


def test_the_payload_adds_the_iso_date_without_touching_the_dump() -> None:
    event = _event()
    payload = orjson.loads(event.to_payload())
    assert payload["event_date"] == "1970-01-01T00:00:01Z"
    assert "event_date" not in event.dump()
    assert {k: v for k, v in payload.items() if k != "event_date"} == event.dump()
