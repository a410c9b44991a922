"""The filter keys of the event log: what the writer stores, what the reader asks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.events import make_event
from shared.storage.event_log import (
    ALL_KEY,
    channel_keys,
    epoch_ms,
    event_document,
    event_keys,
    list_filter,
)

WS = "WS" + "0" * 32
TASK = "WT" + "1" * 32
RESERVATION = "WR" + "2" * 32
WORKER = "WK" + "3" * 32
QUEUE = "WQ" + "4" * 32
WORKFLOW = "WW" + "5" * 32
CHANNEL = "TC" + "6" * 32
AT = datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)


def _event(event_type: str, resource_sid: str, **data: str | None):
    return make_event(event_type, account_sid="AC" + "9" * 32, workspace_sid=WS,
                      resource_type="x", resource_sid=resource_sid, at=AT, data=data)


def test_a_reservation_event_has_a_key_per_filter_it_can_match():
    event = _event("reservation.created", RESERVATION, task_sid=TASK, reservation_sid=RESERVATION,
                   worker_sid=WORKER, task_queue_sid=QUEUE, workflow_sid=WORKFLOW,
                   task_channel_sid=CHANNEL, task_channel_unique_name="voice")

    assert event_keys(event.to_document()) == sorted([
        ALL_KEY, "type:reservation.created", f"task:{TASK}", f"reservation:{RESERVATION}",
        f"worker:{WORKER}", f"queue:{QUEUE}", f"workflow:{WORKFLOW}", f"channel:{CHANNEL}",
        "channel_name:voice",
    ])


def test_the_resource_counts_for_the_filter_of_its_kind_only():
    # A worker event: WorkerSid matches its resource; no other reference filter does.
    keys = event_keys(_event("worker.activity.update", WORKER).to_document())

    assert keys == sorted([ALL_KEY, "type:worker.activity.update", f"worker:{WORKER}"])


def test_missing_and_null_fields_make_no_key():
    keys = event_keys(_event("task.created", TASK, worker_sid=None,
                             task_channel_unique_name=None).to_document())

    assert keys == sorted([ALL_KEY, "type:task.created", f"task:{TASK}"])


def test_the_stored_document_is_the_event_with_its_keys():
    event = _event("task.created", TASK, task_sid=TASK)

    doc = event_document(event)

    assert doc.pop("keys") == event_keys(doc)
    assert doc == event.to_document()


def test_a_list_uses_one_key_by_equality_and_the_others_as_clauses():
    start = AT - timedelta(minutes=15)

    query = list_filter(WS, [[f"task:{TASK}"], ["type:a", "type:b"]], start, AT)

    assert query == {
        "workspace_sid": WS,
        "keys": f"task:{TASK}",
        "event_date_ms": {"$gt": epoch_ms(start) - 1, "$lt": epoch_ms(AT) + 1},
        "$and": [{"keys": {"$in": ["type:a", "type:b"]}}],
    }


def test_a_list_without_a_single_key_filter_walks_the_whole_workspace():
    query = list_filter(WS, [channel_keys(CHANNEL, "voice")], AT, AT)

    assert query["keys"] == ALL_KEY
    assert query["$and"] == [{"keys": {"$in": [f"channel:{CHANNEL}", "channel_name:voice"]}}]
    assert "$and" not in list_filter(WS, [], AT, AT)


def test_bounds_are_whole_milliseconds_truncated_like_a_bson_date():
    assert epoch_ms(datetime(1970, 1, 1, 0, 0, 1, 999_999, tzinfo=UTC)) == 1999
    assert epoch_ms(AT) == int(AT.timestamp()) * 1000 + 678
