"""Cost of the queue-dispatcher's routing decisions, on its pure in-memory core.

    .venv/bin/python tests/bench/bench_dispatcher.py

No NATS and no store: each decision is what the service runs under a
workspace's lock (`Dispatcher.execute`): a `Unit`, the decision function the
command handler calls (`task_ops.route_task`, `worker_ops.update_worker`), the
matching passes (`settle`), and the store writes built from the unit
(`Unit.writes`); only the commit itself is left out.

1. Throughput and latency: 10,000 available workers in 100 queues (realistic
   attributes, TargetWorkers of skills, languages, region, team and level;
   each worker in a few queues), 10,000 tasks entering their queues one
   decision each. Reports matches (reservations) per second and the latency of
   one decision from "task enters queue" to "reservation decided".
2. A worker made available against a backlog of 10,000 waiting tasks: the
   decision must offer it the best waiting task of its queues (checked against
   a brute-force scan for a sample).
3. Growth: one decision with 1k / 10k / 100k workers that cannot take the task
   (unavailable members of the queue, or not members); the cost should stay flat.

Prints a table and writes `.bench/dispatcher.json`. Inputs come from a fixed
seed, so runs differ only by machine noise.
"""

from __future__ import annotations

import gc
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# Run as a plain script from anywhere: make the repository root importable.
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import orjson

from services.queue_dispatcher import task_ops, worker_ops
from services.queue_dispatcher.matching import task_order_key
from services.queue_dispatcher.repository import rebuild_index
from services.queue_dispatcher.selection import accepts
from services.queue_dispatcher.settle import settle
from services.queue_dispatcher.state import (
    TaskState,
    WorkerState,
    WorkspaceState,
)
from services.queue_dispatcher.unit import Unit
from shared.commands import CreateTask, CreateWorker, RouteTask, UpdateWorker
from shared.config_view import WorkspaceConfig
from shared.models import (
    Activity,
    QueueOrder,
    TaskChannel,
    TaskQueue,
    Workflow,
    Workspace,
)

SEED = 20261203
START = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
AC = "AC" + "0" * 32
WS = "WS" + "0" * 32
AVAILABLE = "WA" + "1".zfill(32)
OFFLINE = "WA" + "2".zfill(32)
WORKFLOW = "WW" + "1".zfill(32)
CHANNELS = ("default", "voice", "chat")

SKILLS = ["support", "sales", "billing", "refunds", "tech", "onboarding", "retention"]
LANGUAGES = ["en", "es", "fr", "de", "pt", "it", "ja"]
REGIONS = ["emea", "amer", "apac"]
TEAMS = ["alpha", "bravo", "charlie", "delta"]
# The target expression of about half the workflow steps (workflows.md §2).
STEP_EXPRESSION = "worker.level >= task.min_level"


# -- inputs -------------------------------------------------------------------------
def queue_expressions() -> list[str]:
    """100 TargetWorkers expressions; a generated worker matches about five."""
    found = [
        f"skills HAS '{s}' AND '{lang}' IN languages"
        for s in SKILLS
        for lang in LANGUAGES
    ]
    found += [
        f"skills HAS '{s}' AND region == '{r}' AND level >= 5"
        for s in SKILLS
        for r in REGIONS
    ]
    found += [
        f"'{lang}' IN languages AND team == '{t}'" for lang in LANGUAGES for t in TEAMS
    ]
    found += ["certified == true AND level >= 8", "routing.levels.billing > 3"]
    assert len(found) == 100
    return found


def worker_attributes(rng: random.Random, index: int) -> dict[str, Any]:
    return {
        "name": f"Agent{index}",
        "skills": rng.sample(SKILLS, rng.randint(1, 3)),
        "languages": rng.sample(LANGUAGES, rng.randint(1, 2)),
        "level": rng.randint(1, 10),
        "region": rng.choice(REGIONS),
        "team": rng.choice(TEAMS),
        "certified": rng.random() < 0.5,
        "contact_uri": f"client:agent{index}",
        "routing": {"levels": {s: rng.randint(1, 5) for s in rng.sample(SKILLS, 2)}},
    }


def make_config(queue_targets: list[str]) -> WorkspaceConfig:
    common = {"account_sid": AC, "workspace_sid": WS}
    config = WorkspaceConfig(
        Workspace(
            sid=WS,
            account_sid=AC,
            friendly_name="bench",
            default_activity_sid=OFFLINE,
            default_activity_name="Offline",
            timeout_activity_sid=OFFLINE,
            timeout_activity_name="Offline",
            multi_task_enabled=True,
        )
    )
    for sid, name, available in (
        (AVAILABLE, "Available", True),
        (OFFLINE, "Offline", False),
    ):
        config.activities[sid] = Activity(
            sid=sid, friendly_name=name, available=available, **common
        )
    for n, unique in enumerate(CHANNELS, start=1):
        channel_sid = "TC" + str(n).zfill(32)
        config.channels[channel_sid] = TaskChannel(
            sid=channel_sid, friendly_name=unique, unique_name=unique, **common
        )
    config.workflows[WORKFLOW] = Workflow(
        sid=WORKFLOW,
        friendly_name="bench",
        configuration="{}",
        task_reservation_timeout=120,
        **common,
    )
    for n, target in enumerate(queue_targets, start=1):
        queue_sid = "WQ" + str(n).zfill(32)
        config.queues[queue_sid] = TaskQueue(
            sid=queue_sid,
            friendly_name=f"queue {n}",
            target_workers=target,
            task_order=QueueOrder.FIFO,
            **common,
        )
    return config


class Bench:
    """A workspace's dispatcher state and clock; decisions run as the service runs them."""

    def __init__(self, queue_targets: list[str]) -> None:
        self.state = WorkspaceState(make_config(queue_targets))
        rebuild_index(self.state)
        self.now = START
        self.queues = list(self.state.config.queues)

    def decide(self, fn: Callable[[Unit], Any]) -> tuple[Unit, Any]:
        self.now += timedelta(milliseconds=1)
        unit = Unit(self.state, self.now)
        result = fn(unit)
        settle(unit)
        unit.writes()
        return unit, result

    def add_workers(
        self, attributes: list[dict[str, Any]], *, available: bool
    ) -> list[str]:
        """Create workers in batches of one decision per 500 (voice 1, chat 2)."""
        sids: list[str] = []
        activity = AVAILABLE if available else OFFLINE
        for start in range(0, len(attributes), 500):
            batch = attributes[start : start + 500]

            def create(unit: Unit, batch: list[dict[str, Any]] = batch) -> None:
                for attrs in batch:
                    command = CreateWorker(
                        account_sid=AC,
                        workspace_sid=WS,
                        friendly_name=f"{attrs['name']}-{len(self.state.workers)}",
                        attributes=orjson.dumps(attrs).decode(),
                        activity_sid=activity,
                    )
                    worker = worker_ops.create_worker(unit, command)
                    for channel in worker.model.channels:
                        if channel.task_channel_unique_name == "chat":
                            channel.configured_capacity = 2
                    self.state.index.refresh_worker(worker)
                    sids.append(worker.sid)

            self.decide(create)
        return sids

    def create_task(
        self, attributes: dict[str, Any], priority: int, channel: str
    ) -> TaskState:
        command = CreateTask(
            account_sid=AC,
            workspace_sid=WS,
            attributes=orjson.dumps(attributes).decode(),
            priority=priority,
            task_channel=channel,
            workflow_sid=WORKFLOW,
        )
        return self.decide(lambda unit: task_ops.create_task(unit, command))[1]

    def route(self, task: TaskState, queue_sid: str, expression: str | None) -> Unit:
        """The decision "task enters its queue": place it and reserve if possible."""
        command = RouteTask(
            account_sid=AC,
            workspace_sid=WS,
            task_sid=task.sid,
            workflow_sid=WORKFLOW,
            step_key=f"{task.sid}:1",
            seq=1,
            queue_sid=queue_sid,
            expression=expression,
        )
        return self.decide(lambda unit: task_ops.route_task(unit, command))[0]

    def make_available(self, worker_sid: str) -> Unit:
        worker = self.state.workers[worker_sid]
        command = UpdateWorker(
            account_sid=AC,
            workspace_sid=WS,
            worker_sid=worker_sid,
            activity_sid=AVAILABLE,
        )
        return self.decide(
            lambda unit: worker_ops.update_worker(unit, worker, command)
        )[0]


def random_task(
    rng: random.Random, bench: Bench
) -> tuple[dict[str, Any], int, str, str, str | None]:
    """Attributes, priority, channel, queue and step expression of one task."""
    attributes = {
        "type": rng.choice(SKILLS),
        "language": rng.choice(LANGUAGES),
        "min_level": rng.randint(1, 6),
        "customer": {"tier": rng.choice(["gold", "silver", "bronze"])},
    }
    expression = STEP_EXPRESSION if rng.random() < 0.5 else None
    return (
        attributes,
        rng.randint(0, 10),
        rng.choice(("voice", "chat")),
        rng.choice(bench.queues),
        expression,
    )


# -- measuring ------------------------------------------------------------------------
def percentiles(samples_s: list[float]) -> dict[str, float]:
    """p50/p95/p99/max of durations in seconds, as microseconds."""
    if not samples_s:
        return {"count": 0}
    ordered = sorted(samples_s)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e6, 1)

    return {
        "count": len(ordered),
        "mean_us": round(statistics.fmean(ordered) * 1e6, 1),
        "p50_us": at(0.50),
        "p95_us": at(0.95),
        "p99_us": at(0.99),
        "max_us": round(ordered[-1] * 1e6, 1),
    }


def timed(run: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = run(*args)
    return time.perf_counter() - started, result


def reservations_of(unit: Unit) -> list[Any]:
    return [e for e in unit.events if e.event_type == "reservation.created"]


# -- scenarios -------------------------------------------------------------------------
def bench_throughput(workers: int, tasks: int) -> dict[str, Any]:
    """Tasks entering queues of available workers: matches per second and latency."""
    rng = random.Random(SEED)
    bench = Bench(queue_expressions())
    bench.add_workers(
        [worker_attributes(rng, i) for i in range(workers)], available=True
    )
    members = [len(bench.state.index.queues_of(sid)) for sid in bench.state.workers]
    created = [
        (bench.create_task(*spec[:3]), spec)
        for spec in (random_task(rng, bench) for _ in range(tasks))
    ]

    matched: list[float] = []
    waited: list[float] = []
    gc.collect()
    gc.disable()
    try:
        for task, (_, _, _, queue_sid, expression) in created:
            elapsed, unit = timed(bench.route, task, queue_sid, expression)
            (matched if reservations_of(unit) else waited).append(elapsed)
    finally:
        gc.enable()
    total = sum(matched) + sum(waited)
    return {
        "workers": workers,
        "queues": len(bench.queues),
        "queues_per_worker": round(statistics.fmean(members), 2),
        "tasks": tasks,
        "reserved": len(matched),
        "left_waiting": len(waited),
        "decision_seconds": round(total, 3),
        "matches_per_second": round(len(matched) / total),
        "decisions_per_second": round(tasks / total),
        "latency_reserved": percentiles(matched),
        "latency_left_waiting": percentiles(waited),
    }


def best_waiting_task(bench: Bench, worker: WorkerState) -> TaskState | None:
    """Brute force over every task: the best one `worker` may take (lifecycle.md §6)."""
    ready = bench.state.index.ready_channels(worker.sid)
    queues = bench.state.index.queues_of(worker.sid)
    best = None
    for task in bench.state.tasks.values():
        if (
            not task.is_waiting
            or task.step is None
            or task.step.queue_sid not in queues
        ):
            continue
        if task.channel_sid not in ready or not accepts(task, worker, bench.now):
            continue
        key = task_order_key(QueueOrder.FIFO, task)
        if best is None or key < best[0]:
            best = (key, task)
    return None if best is None else best[1]


def bench_worker_available(
    workers: int, tasks: int, made_available: int, checked: int
) -> dict[str, Any]:
    """Workers made available one at a time against a backlog of waiting tasks."""
    rng = random.Random(SEED + 1)
    bench = Bench(queue_expressions())
    sids = bench.add_workers(
        [worker_attributes(rng, i) for i in range(workers)], available=False
    )
    for _ in range(tasks):
        attributes, priority, channel, queue_sid, expression = random_task(rng, bench)
        bench.route(
            bench.create_task(attributes, priority, channel), queue_sid, expression
        )
    backlog = sum(1 for t in bench.state.tasks.values() if t.is_waiting)

    samples: list[float] = []
    offered = 0
    wrong = 0
    gc.collect()
    gc.disable()
    try:
        for n, sid in enumerate(rng.sample(sids, made_available)):
            expected = None
            if n < checked:
                bench.state.workers[
                    sid
                ].model.available = True  # see the worker as ready
                bench.state.index.refresh_worker(bench.state.workers[sid])
                expected = best_waiting_task(bench, bench.state.workers[sid])
                bench.state.workers[sid].model.available = False
                bench.state.index.refresh_worker(bench.state.workers[sid])
            elapsed, unit = timed(bench.make_available, sid)
            samples.append(elapsed)
            created = reservations_of(unit)
            offered += len(created)
            if n < checked:
                first = created[0].event_data["task_sid"] if created else None
                wrong += first != (expected.sid if expected else None)
    finally:
        gc.enable()
    return {
        "workers": workers,
        "backlog": backlog,
        "made_available": made_available,
        "tasks_offered": offered,
        "best_task_checked": checked,
        "best_task_wrong": wrong,
        "latency": percentiles(samples),
    }


def bench_growth(idle: int, ready: int) -> dict[str, Any]:
    """One task entering a queue that `idle` workers cannot serve and `ready` can."""
    rng = random.Random(SEED + 2)
    bench = Bench(["skills HAS 'support'"])
    # Half are members of the queue but unavailable, half are available but not
    # members (their skills do not match the queue's TargetWorkers).
    offline_members, other_skills = [], []
    for i in range(idle):
        attrs = worker_attributes(rng, i)
        if i % 2 == 0:
            offline_members.append({**attrs, "skills": ["support"]})
        else:
            other_skills.append({**attrs, "skills": ["sales"]})
    bench.add_workers(offline_members, available=False)
    bench.add_workers(other_skills, available=True)
    bench.add_workers(
        [
            {**worker_attributes(rng, idle + i), "skills": ["support"]}
            for i in range(ready)
        ],
        available=True,
    )
    queue_sid = bench.queues[0]
    specs = [random_task(rng, bench) for _ in range(ready)]
    tasks = [bench.create_task(a, p, c) for a, p, c, _, _ in specs]

    samples: list[float] = []
    reserved = 0
    gc.collect()
    gc.disable()
    try:
        for task, (_, _, _, _, expression) in zip(tasks, specs, strict=True):
            elapsed, unit = timed(bench.route, task, queue_sid, expression)
            samples.append(elapsed)
            reserved += bool(reservations_of(unit))
    finally:
        gc.enable()
    return {
        "workers_that_cannot": idle,
        "ready_workers": ready,
        "tasks": len(tasks),
        "reserved": reserved,
        "latency": percentiles(samples),
    }


# -- report -----------------------------------------------------------------------------
def main() -> None:
    started = time.perf_counter()
    throughput = bench_throughput(10_000, 10_000)
    available = bench_worker_available(
        10_000, 10_000, made_available=1_000, checked=200
    )
    growth = [bench_growth(n, ready=200) for n in (1_000, 10_000, 100_000)]

    t, a = throughput, available
    print(
        "queue-dispatcher pure core (decision + matching + store writes built, no I/O)"
    )
    print(
        f"{t['workers']} workers in {t['queues']} queues "
        f"({t['queues_per_worker']} queues per worker), {t['tasks']} tasks entering queues"
    )
    print(
        f"  reserved {t['reserved']}, left waiting {t['left_waiting']}: "
        f"{t['matches_per_second']} matches/s, {t['decisions_per_second']} decisions/s"
    )
    header = f"{'decision':<48}{'n':>7}{'p50 us':>10}{'p95 us':>10}{'p99 us':>10}{'max us':>10}"
    print(header)
    print("-" * len(header))

    def row(name: str, lat: dict[str, Any]) -> None:
        print(
            f"{name:<48}{lat['count']:>7}{lat['p50_us']:>10}{lat['p95_us']:>10}"
            f"{lat['p99_us']:>10}{lat['max_us']:>10}"
        )

    row("task enters queue -> reservation", t["latency_reserved"])
    if t["latency_left_waiting"]["count"]:
        row("task enters queue -> left waiting", t["latency_left_waiting"])
    row(f"worker available vs backlog {a['backlog']}", a["latency"])
    for g in growth:
        row(
            f"task enters queue, {g['workers_that_cannot']} cannot take it",
            g["latency"],
        )
    print(
        f"worker available: {a['tasks_offered']} offers for {a['made_available']} workers; "
        f"best waiting task wrong in {a['best_task_wrong']} of {a['best_task_checked']} checked"
    )
    print(f"total run {time.perf_counter() - started:.1f} s")

    out = ROOT / ".bench" / "dispatcher.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "python": platform.python_version(),
                "machine": platform.machine(),
                "throughput": throughput,
                "worker_available": available,
                "growth": growth,
            },
            indent=2,
        )
    )
    print(f"written {out.relative_to(ROOT)}")
    if available["best_task_wrong"]:
        sys.exit("a worker made available was not offered the best waiting task")


if __name__ == "__main__":
    main()
