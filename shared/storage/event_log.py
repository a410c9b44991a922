"""The layout of the `events` collection, shared by its writer and its reader.

The events service writes it (services/events/event_log.py) and the gateway's
Events API reads it (services/gateway/routes/events.py); both build filter keys
here so they can never disagree.

Why one `keys` array: the Events API filters by type, by any of five referenced
objects and by task channel, each inside a workspace and newest first. One index
per filter (nine of them, twelve with `_id`, the TTL and the workspace index) made
every insert update twelve indexes; in secantusdb the per-index cost dominated the
insert. Instead each document carries the values its filters look for, as
namespaced strings:

    keys: ["*", "type:reservation.created", "task:WT…", "reservation:WR…",
           "worker:WK…", "queue:WQ…", "workflow:WW…", "channel:TC…",
           "channel_name:voice"]

and one multikey index `(workspace_sid, keys, event_date_ms desc, _id desc)`
serves every filter: one key by equality, the date window as a range, the
order from the index. `*` is in every document, so the unfiltered list uses the
same index. With the TTL index on `event_date` and `_id`, three indexes remain.

A filter is a *group* of alternative keys (an event matches when it has any of
them): `TaskSid=WT1` is `["task:WT1"]`, the legacy `EventType=worker.activity` is
`["type:worker.activity", "type:worker.activity.update"]`, `TaskChannel` is its
SID or its unique name. An event matches a list when it matches every group.

Reference keys equal the old filters exactly: `TaskSid=X` matched
`resource_sid == X or event_data.task_sid == X`; `X` always has the `WT` prefix
(the gateway validates it), so `resource_sid == X` is the same as "the resource is
a task and its SID is X", which is when the writer adds `task:<resource_sid>`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel

from shared.events import Event, epoch_ms
from shared.sids import SidPrefix

KEYS_FIELD = "keys"
# In every document: the key of the list without filters.
ALL_KEY = "*"
# Newest first by `event_date_ms`, then `_id` (events.md §1); page tokens carry these.
NEWEST_FIRST = [("event_date_ms", DESCENDING), ("_id", DESCENDING)]
TTL_INDEX = "ttl_event_date"
KEYS_INDEX = "by_keys"
# Indexes of earlier versions (one per filter); dropped once documents have keys.
LEGACY_INDEXES = (
    "by_workspace",
    "by_event_type",
    "by_resource_sid",
    "by_event_data_task_sid",
    "by_event_data_reservation_sid",
    "by_event_data_worker_sid",
    "by_event_data_task_queue_sid",
    "by_event_data_workflow_sid",
    "by_event_data_task_channel_sid",
    "by_event_data_task_channel_unique_name",
)

# Reference namespaces: (namespace, SID prefix, `event_data` field).
REFERENCES = (
    ("task", SidPrefix.TASK, "task_sid"),
    ("reservation", SidPrefix.RESERVATION, "reservation_sid"),
    ("worker", SidPrefix.WORKER, "worker_sid"),
    ("queue", SidPrefix.TASK_QUEUE, "task_queue_sid"),
    ("workflow", SidPrefix.WORKFLOW, "workflow_sid"),
)
_CHANNEL_FIELDS = (("channel", "task_channel_sid"), ("channel_name", "task_channel_unique_name"))
# The fields `event_keys` reads: a projection for documents that lack keys.
KEY_SOURCES = {
    "event_type": 1,
    "resource_sid": 1,
    **{f"event_data.{field}": 1 for _, _, field in REFERENCES},
    **{f"event_data.{field}": 1 for _, field in _CHANNEL_FIELDS},
}

KeyGroup = Sequence[str]


def type_key(event_type: str) -> str:
    return f"type:{event_type}"


def reference_key(namespace: str, sid: str) -> str:
    return f"{namespace}:{sid}"


def channel_keys(sid: str, unique_name: str) -> list[str]:
    """The group of a TaskChannel filter: the channel's SID or its unique name."""
    return sorted({f"channel:{sid}", f"channel_name:{unique_name}"})


def event_keys(doc: Mapping[str, Any]) -> list[str]:
    """Every filter key of an event document (sorted, without duplicates).

    Only string values make keys: a missing or null field never matched a
    filter, and every filter value is a string.
    """
    data = doc.get("event_data") or {}
    resource_sid = doc.get("resource_sid")
    keys = {ALL_KEY, type_key(str(doc.get("event_type", "")))}
    for namespace, prefix, field in REFERENCES:
        if isinstance(value := data.get(field), str):
            keys.add(reference_key(namespace, value))
        if isinstance(resource_sid, str) and resource_sid.startswith(prefix):
            keys.add(reference_key(namespace, resource_sid))
    for namespace, field in _CHANNEL_FIELDS:
        if isinstance(value := data.get(field), str):
            keys.add(reference_key(namespace, value))
    return sorted(keys)


def event_document(event: Event) -> dict[str, Any]:
    """`Event.to_document()` plus its filter keys: what the event log stores."""
    doc = event.to_document()
    doc[KEYS_FIELD] = event_keys(doc)
    return doc


def event_indexes(retention_days: int) -> list[IndexModel]:
    """The TTL index on `event_date` and the one index of every list filter."""
    ttl = int(timedelta(days=retention_days).total_seconds())
    return [
        IndexModel([("event_date", ASCENDING)], expireAfterSeconds=ttl, name=TTL_INDEX),
        IndexModel(
            [("workspace_sid", ASCENDING), (KEYS_FIELD, ASCENDING), *NEWEST_FIRST],
            name=KEYS_INDEX,
        ),
    ]


def list_filter(
    workspace_sid: str, groups: Iterable[KeyGroup], start: datetime, end: datetime
) -> dict[str, Any]:
    """The store filter for a list: every group matched, inside [start, end].

    The first single-key group (the caller orders groups most selective first)
    is the index's equality; without one, `*`. This plain shape
    `{workspace_sid, keys, event_date_ms}` is exactly the index, which is what
    secantusdb needs to use it; the other groups are extra `$in` clauses that
    MongoDB applies while it walks the same index.
    """
    groups = [sorted(set(group)) for group in groups]
    primary = next((g for g in groups if len(g) == 1), [ALL_KEY])
    query: dict[str, Any] = {
        "workspace_sid": workspace_sid,
        KEYS_FIELD: primary[0],
        # Whole milliseconds, so [start, end] is (start - 1, end + 1). NOTE: written
        # with exclusive bounds because secantusdb drops the documents equal to a
        # `$gte` bound on this descending index field (seen with 0.7.0b3).
        "event_date_ms": {"$gt": epoch_ms(start) - 1, "$lt": epoch_ms(end) + 1},
    }
    rest = [g for g in groups if g != primary]
    if rest:
        # TODO: secantusdb scans the collection for a filter with `$and` (so also for
        # a page after the first, which the keyset adds): exact, but not indexed there.
        query["$and"] = [{KEYS_FIELD: {"$in": g}} for g in rest]
    return query
