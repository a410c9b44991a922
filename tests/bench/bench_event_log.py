"""Cost of the event log on the store, and a check that its filters stay exact.

    .venv/bin/python tests/bench/bench_event_log.py [--events 3000]

Starts a secantusdb process (in memory) and inserts realistic events (the six
events of a routed task: task, workflow, queue, two reservation events, worker
activity) with `insert_many` in batches of 20, as the events service does, once
into a collection laid out as earlier versions did (the TTL index, a workspace
index and one index per Events API filter: 12 with `_id`) and once as
`shared.storage.event_log` lays it out now (3 indexes). Prints events/s for both.

Then it lists both collections with a set of Events API filters, the earlier
version's `$and`/`$or` query against the new keys query, and fails when any
result differs.
"""

from __future__ import annotations

import argparse
import itertools
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# Run as a plain script from anywhere: make the repository root importable.
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pymongo import ASCENDING, IndexModel, MongoClient

from shared.events import Event, make_event, reservation_data, task_data, worker_data
from shared.models import Reservation, Task, Worker
from shared.sids import SidPrefix, new_sid
from shared.storage.event_log import (
    NEWEST_FIRST,
    channel_keys,
    event_document,
    event_indexes,
    list_filter,
    reference_key,
    type_key,
)

BATCH = 20
ACCOUNT = new_sid(SidPrefix.ACCOUNT)
WORKSPACE = new_sid(SidPrefix.WORKSPACE)
QUEUES = [new_sid(SidPrefix.TASK_QUEUE) for _ in range(3)]
WORKFLOW = new_sid(SidPrefix.WORKFLOW)
CHANNELS = [(new_sid(SidPrefix.TASK_CHANNEL), name) for name in ("voice", "chat")]
LEGACY_FILTER_FIELDS = (
    "event_type", "resource_sid", "event_data.task_sid", "event_data.reservation_sid",
    "event_data.worker_sid", "event_data.task_queue_sid", "event_data.workflow_sid",
    "event_data.task_channel_sid", "event_data.task_channel_unique_name",
)
LEGACY_REFERENCES = {"task": "task_sid", "reservation": "reservation_sid",
                     "worker": "worker_sid", "queue": "task_queue_sid",
                     "workflow": "workflow_sid"}


def legacy_indexes() -> list[IndexModel]:
    """The twelve indexes of earlier versions (with `_id`)."""
    ttl = IndexModel([("event_date", ASCENDING)], expireAfterSeconds=30 * 86400, name="ttl")
    by_ws = IndexModel([("workspace_sid", ASCENDING), *NEWEST_FIRST], name="by_workspace")
    return [ttl, by_ws] + [
        IndexModel([("workspace_sid", ASCENDING), (f, ASCENDING), *NEWEST_FIRST], name=f"by_{f}")
        for f in LEGACY_FILTER_FIELDS
    ]


def routed_task_events(n: int, at: datetime) -> list[Event]:
    """The events of one routed task, with realistic data."""
    channel_sid, channel_name = CHANNELS[n % 2]
    task = Task(sid=new_sid(SidPrefix.TASK), account_sid=ACCOUNT, workspace_sid=WORKSPACE,
                task_queue_sid=QUEUES[n % 3], workflow_sid=WORKFLOW,
                task_channel_sid=channel_sid, task_channel_unique_name=channel_name,
                attributes='{"skill": "sales", "language": "en", "customer": "c-1042"}')
    worker = Worker(sid=new_sid(SidPrefix.WORKER), account_sid=ACCOUNT, workspace_sid=WORKSPACE,
                    friendly_name=f"agent-{n}", activity_sid=new_sid(SidPrefix.ACTIVITY),
                    activity_name="Available", attributes='{"skills": ["sales"]}')
    reservation = Reservation(sid=new_sid(SidPrefix.RESERVATION), account_sid=ACCOUNT,
                              workspace_sid=WORKSPACE, task_sid=task.sid,
                              worker_sid=worker.sid, worker_name=worker.friendly_name)
    common: dict[str, Any] = {"account_sid": ACCOUNT, "workspace_sid": WORKSPACE, "at": at}
    data = task_data(task, at)
    offer = reservation_data(reservation, task, worker, at)
    return [
        make_event("task.created", resource_type="task", resource_sid=task.sid, data=data,
                   **common),
        make_event("workflow.entered", resource_type="workflow", resource_sid=WORKFLOW,
                   data=data, **common),
        make_event("task-queue.entered", resource_type="taskqueue",
                   resource_sid=task.task_queue_sid, data=data, **common),
        make_event("reservation.created", resource_type="reservation",
                   resource_sid=reservation.sid, data=offer, **common),
        make_event("reservation.accepted", resource_type="reservation",
                   resource_sid=reservation.sid, data=offer, **common),
        make_event("worker.activity.update", resource_type="worker", resource_sid=worker.sid,
                   data=worker_data(worker), **common),
    ]


def make_events(count: int) -> list[Event]:
    """`count` events over the last hour (several per millisecond, as under load)."""
    now = datetime.now(UTC)
    events: list[Event] = []
    n = 0
    while len(events) < count:
        events += routed_task_events(n, now - timedelta(seconds=3600 * n * 6 / count))
        n += 1
    return events[:count]


def insert_rate(collection: Any, docs: list[dict[str, Any]]) -> float:
    """Documents per second stored by `insert_many` batches of BATCH."""
    started = time.perf_counter()
    for i in range(0, len(docs), BATCH):
        collection.insert_many(docs[i:i + BATCH], ordered=False)
    return len(docs) / (time.perf_counter() - started)


def legacy_query(filters: dict[str, Any], start: datetime, end: datetime) -> dict[str, Any]:
    """The filter earlier versions of the gateway sent (reference, type, channel)."""
    conditions: list[dict[str, Any]] = [{"workspace_sid": WORKSPACE},
                                        {"event_date": {"$gte": start, "$lte": end}}]
    for namespace, sid in filters.get("refs", []):
        field = LEGACY_REFERENCES[namespace]
        conditions.append({"$or": [{"resource_sid": sid}, {f"event_data.{field}": sid}]})
    if "type" in filters:
        conditions.append({"event_type": {"$in": [filters["type"]]}})
    if "channel" in filters:
        sid, name = filters["channel"]
        conditions.append({"$or": [{"event_data.task_channel_sid": sid},
                                   {"event_data.task_channel_unique_name": name}]})
    return {"$and": conditions}


def keys_query(filters: dict[str, Any], start: datetime, end: datetime) -> dict[str, Any]:
    """The same list as the gateway asks for it now."""
    groups = [[reference_key(ns, sid)] for ns, sid in filters.get("refs", [])]
    if "type" in filters:
        groups.append([type_key(filters["type"])])
    if "channel" in filters:
        groups.append(channel_keys(*filters["channel"]))
    return list_filter(WORKSPACE, groups, start, end)


def sample_filters(events: list[Event]) -> list[dict[str, Any]]:
    """Every filter alone and a few combinations, over the sample's objects."""
    offer = next(e for e in events if e.event_type == "reservation.created").event_data
    refs = [("task", offer["task_sid"]), ("reservation", offer["reservation_sid"]),
            ("worker", offer["worker_sid"]), ("queue", offer["task_queue_sid"]),
            ("workflow", offer["workflow_sid"]), ("task", "WT" + "0" * 32)]
    singles: list[dict[str, Any]] = [{}]
    singles += [{"refs": [ref]} for ref in refs]
    singles += [{"type": t} for t in ("task.created", "reservation.accepted", "nothing")]
    singles += [{"channel": ch} for ch in CHANNELS] + [{"channel": ("chat", "chat")}]
    pairs = [{**a, **b} for a, b in itertools.combinations(singles[1:], 2)
             if not set(a) & set(b)]
    return singles + pairs + [{"refs": refs[:2]}]


def check_exact(legacy: Any, current: Any, events: list[Event]) -> tuple[int, int]:
    """Compare both layouts' answers for every sample filter: (lists, non-empty)."""
    end = datetime.now(UTC)
    windows = [(end - timedelta(minutes=15), end), (end - timedelta(days=1), end)]
    filters = sample_filters(events)
    sizes: list[int] = []
    for (start, stop), f in itertools.product(windows, filters):
        old = [d["_id"] for d in legacy.find(legacy_query(f, start, stop)).sort(NEWEST_FIRST)]
        new = [d["_id"] for d in current.find(keys_query(f, start, stop)).sort(NEWEST_FIRST)]
        sizes.append(len(old))
        if old != new:
            raise SystemExit(f"results differ for {f}: {len(old)} vs {len(new)}")
    return len(windows) * len(filters), sum(1 for size in sizes if size)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/secantusd-py"), "--host", "127.0.0.1", "--port", str(port),
         "--storage-path", ":memory:"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        client = MongoClient(f"mongodb://127.0.0.1:{port}/?retryWrites=false",
                             directConnection=True, serverSelectionTimeoutMS=30_000)
        db = client["bench_event_log"]
        legacy, current = db["legacy"], db["current"]
        legacy.create_indexes(legacy_indexes())
        current.create_indexes(event_indexes(30))
        events = make_events(args.events)
        warm = make_events(100)
        legacy.insert_many([e.to_document() for e in warm])
        current.insert_many([event_document(e) for e in warm])
        before = insert_rate(legacy, [e.to_document() for e in events])
        after = insert_rate(current, [event_document(e) for e in events])
        print(f"{len(events)} events, insert_many batches of {BATCH}, secantusdb in memory")
        print(f"  12 indexes (one per filter): {before:8.0f} events/s")
        print(f"   3 indexes (filter keys):    {after:8.0f} events/s  ({after / before:.2f}x)")
        checked, non_empty = check_exact(legacy, current, warm + events)
        print(f"  {checked} lists compared ({non_empty} not empty): identical results")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
