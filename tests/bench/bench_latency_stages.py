"""Where one task's time goes at low load, stage by stage.

    .venv/bin/python tests/bench/bench_latency_stages.py [--tasks 60]

Starts the whole system as `make run` does (like bench_system.py), then creates
tasks one at a time (each after the previous one's reservation) and records when
each routing event of the task arrives on NATS:

    post            POST /Tasks answered: the dispatcher's one decision (the task
                    in its workflow's first step, the reservation, the worker)
                    committed with its events, and the events published
    created_event   task.created received, from the request's start
    reservation     task.created -> reservation.created (~0 when the first step is
                    taken at creation: one commit carries both; a step with
                    `skip_if` goes through the router and shows its round trip here)
    total           request start -> reservation.created

The router records the task's position from task.created off this path.
Prints p50 and p90 of each in milliseconds (the first five tasks are left out).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import httpx
import nats

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_system import setup_workspace, start_bench_stack  # noqa: E402
from services import devstack  # noqa: E402
from services.__main__ import wait_healthy  # noqa: E402

WARM_UP = 5


async def measure(stack: devstack.Stack, tasks: int) -> dict[str, tuple[float, float]]:
    env = stack.env
    auth = (env["TASKROUTER_ACCOUNT_SID"], env["TASKROUTER_AUTH_TOKEN"])
    async with httpx.AsyncClient(base_url=env["TASKROUTER_PUBLIC_URL"], auth=auth, timeout=30) as http:
        ws, workflow = await setup_workspace(http)
        arrivals: dict[str, dict[str, float]] = {}
        reserved: dict[str, asyncio.Event] = {}
        connection = await nats.connect(env["NATS_URL"])

        async def on_event(message) -> None:
            body = json.loads(message.data)
            task_sid = body["event_data"].get("task_sid") or body.get("resource_sid")
            arrivals.setdefault(task_sid, {}).setdefault(body["event_type"], time.perf_counter())
            if body["event_type"] == "reservation.created":
                reserved.setdefault(task_sid, asyncio.Event()).set()

        prefix = env.get("TASKROUTER_SUBJECT_PREFIX", "taskrouter")
        await connection.subscribe(f"{prefix}.events.*.{ws}.>", cb=on_event)
        rows = []
        for _ in range(tasks):
            started = time.perf_counter()
            answer = await http.post(
                f"/v1/Workspaces/{ws}/Tasks",
                data={"Attributes": '{"type":"bench"}', "WorkflowSid": workflow},
            )
            answered = time.perf_counter()
            answer.raise_for_status()
            sid = answer.json()["sid"]
            await asyncio.wait_for(reserved.setdefault(sid, asyncio.Event()).wait(), 30)
            seen = arrivals[sid]
            rows.append({
                "post": answered - started,
                "created_event": seen["task.created"] - started,
                "reservation": seen["reservation.created"] - seen["task.created"],
                "total": seen["reservation.created"] - started,
            })
        await connection.close()
    result = {}
    for stage in rows[0]:
        values = sorted(1000 * row[stage] for row in rows[WARM_UP:])
        result[stage] = (statistics.median(values), values[int(0.9 * (len(values) - 1))])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=60)
    args = parser.parse_args()
    stack = start_bench_stack("taskrouter-stages-")
    try:
        wait_healthy(stack.env["TASKROUTER_PUBLIC_URL"])
        stages = asyncio.run(measure(stack, args.tasks))
    finally:
        stack.stop()
    for stage, (p50, p90) in stages.items():
        print(f"{stage:14s} p50 {p50:7.1f} ms   p90 {p90:7.1f} ms")


if __name__ == "__main__":
    main()
