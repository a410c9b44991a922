"""Whole-system benchmark: REST task creation to reservation, as `make run` runs it.

    python tests/bench/bench_system.py [--seconds 10] [--rates 100,250,500,max]

Starts nats-server, the local store and the five services (exactly as `make run`),
then, from this separate process:
  1. measures the store's plain sequential insert rate (the yardstick: results are
     reported as ratios to it so machines compare),
  2. creates a FIFO workspace with enough available worker capacity,
  3. creates tasks through the REST API at each controlled rate and records, per
     task, the time from sending the create request to receiving its
     `reservation.created` event on NATS,
  4. reports sustained create-to-reservation throughput, p50/p95/p99 latency at
     each rate and CPU seconds per process (this client's own as `bench_client`),
  5. compares an authenticated `GET /v1/Workspaces/{WS}` with a bare FastAPI JSON
     endpoint served the same way (uvicorn, one process).
Results are printed and written to `.bench/system.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx
import nats
import psutil
from pymongo import AsyncMongoClient

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from services import devstack  # noqa: E402
from services.__main__ import start_stack, wait_healthy  # noqa: E402
from shared.sids import SidPrefix, new_sid  # noqa: E402
from shared.subjects import Subjects  # noqa: E402

WORKERS = 200
CAPACITY = 50  # the TaskRouter maximum per channel


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def store_insert_rate(mongodb_url: str, count: int = 2000) -> float:
    client = AsyncMongoClient(mongodb_url)
    collection = client["bench_yardstick"]["inserts"]
    await collection.drop()
    started = time.perf_counter()
    for i in range(count):
        await collection.insert_one({"_id": i, "payload": "x" * 64})
    rate = count / (time.perf_counter() - started)
    await client.drop_database("bench_yardstick")
    await client.close()
    return rate


async def setup_workspace(http: httpx.AsyncClient) -> tuple[str, str]:
    answer = await http.post("/v1/Workspaces", data={"FriendlyName": "bench", "Template": "FIFO"})
    answer.raise_for_status()
    ws = answer.json()["sid"]
    activities = (await http.get(f"/v1/Workspaces/{ws}/Activities")).json()["activities"]
    available = next(a["sid"] for a in activities if a["friendly_name"] == "Available")
    workflow = (await http.get(f"/v1/Workspaces/{ws}/Workflows")).json()["workflows"][0]["sid"]
    semaphore = asyncio.Semaphore(16)

    async def one_worker(i: int) -> None:
        async with semaphore:
            created = await http.post(
                f"/v1/Workspaces/{ws}/Workers",
                data={"FriendlyName": f"w{i}", "Attributes": json.dumps({"n": i}), "ActivitySid": available},
            )
            created.raise_for_status()
            sid = created.json()["sid"]
            channel = await http.post(
                f"/v1/Workspaces/{ws}/Workers/{sid}/Channels/default", data={"Capacity": str(CAPACITY)}
            )
            channel.raise_for_status()

    await asyncio.gather(*(one_worker(i) for i in range(WORKERS)))
    return ws, workflow


async def drive(http: aiohttp.ClientSession, ws: str, workflow: str, rate: float | None,
                seconds: float, reserved: dict[str, float]) -> dict:
    """Create tasks at `rate`/s (None: as fast as possible) and measure."""
    sent: dict[str, float] = {}
    errors = 0
    concurrency = asyncio.Semaphore(64)

    url = f"/v1/Workspaces/{ws}/Tasks"
    form = {"Attributes": '{"type":"bench"}', "WorkflowSid": workflow}

    async def create_one() -> None:
        nonlocal errors
        async with concurrency:
            started = time.perf_counter()
            async with http.post(url, data=form) as answer:
                if answer.status != 201:
                    errors += 1
                    return
                body = await answer.json()
            sent[body["sid"]] = started

    pending: set[asyncio.Task] = set()
    begin = time.perf_counter()
    n = 0
    while time.perf_counter() - begin < seconds:
        if rate is not None:
            due = begin + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        elif len(pending) >= 64:
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        task = asyncio.create_task(create_one())
        pending.add(task)
        task.add_done_callback(pending.discard)
        n += 1
    await asyncio.gather(*pending)
    send_end = time.perf_counter()
    deadline = time.perf_counter() + 30
    while time.perf_counter() < deadline and not all(sid in reserved for sid in sent):
        await asyncio.sleep(0.05)
    latencies = [(reserved[s] - t0) * 1000 for s, t0 in sent.items() if s in reserved]
    last = max((reserved[s] for s in sent if s in reserved), default=send_end)
    return {
        "target_rate": rate,
        "created": len(sent),
        "errors": errors,
        "reserved": len(latencies),
        "throughput_per_s": len(latencies) / max(1e-9, last - begin),
        "p50_ms": percentile(latencies, 0.50),
        "p95_ms": percentile(latencies, 0.95),
        "p99_ms": percentile(latencies, 0.99),
    }


async def consumer_backlog(connection: nats.NATS, prefix: str) -> dict[str, int]:
    """Events not yet handled by each durable consumer of the event stream.

    Read when a phase ends: a large backlog means a service off the path of a
    reservation (event log, statistics, router) did not keep up, so the phase's
    rate could not be sustained for long.
    """
    stream = Subjects(prefix).event_stream
    consumers = await connection.jetstream().consumers_info(stream)
    return {
        c.name: c.num_pending + c.num_ack_pending
        for c in consumers
        if c.num_pending + c.num_ack_pending > 0
    }


def cpu_seconds(stack: devstack.Stack) -> dict[str, float]:
    result = {}
    for managed in stack.processes:
        try:
            times = psutil.Process(managed.process.pid).cpu_times()
            result[managed.name] = times.user + times.system
        except psutil.Error:
            result[managed.name] = float("nan")
    own = psutil.Process().cpu_times()  # this client: it shares the machine's cores
    result["bench_client"] = own.user + own.system
    return result


async def get_rate(url: str, auth: tuple[str, str] | None, count: int = 2000) -> float:
    async with httpx.AsyncClient(auth=auth, limits=httpx.Limits(max_connections=16)) as http:
        await http.get(url)
        semaphore = asyncio.Semaphore(16)

        async def one() -> None:
            async with semaphore:
                (await http.get(url)).raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(count)))
        return count / (time.perf_counter() - started)


def start_bare_fastapi(port: int) -> subprocess.Popen:
    code = (
        "from fastapi import FastAPI\nimport uvicorn\napp = FastAPI()\n"
        "@app.get('/v1/Workspaces/{sid}')\nasync def ws(sid: str):\n"
        "    return {'sid': sid, 'friendly_name': 'bench', 'account_sid': 'AC' + '0'*32}\n"
        f"uvicorn.run(app, host='127.0.0.1', port={port}, log_level='warning')\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code])
    devstack.wait_for_port(port, 30, process)
    return process


async def main_async(args: argparse.Namespace, stack: devstack.Stack) -> dict:
    env = stack.env
    base = env["TASKROUTER_PUBLIC_URL"]
    auth = (env["TASKROUTER_ACCOUNT_SID"], env["TASKROUTER_AUTH_TOKEN"])
    report: dict = {"cores": os.cpu_count()}
    report["store_inserts_per_s"] = await store_insert_rate(env["MONGODB_URL"])

    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=base, auth=auth, limits=limits, timeout=30) as http:
        ws, workflow = await setup_workspace(http)
        reserved: dict[str, float] = {}
        connection = await nats.connect(env["NATS_URL"])
        prefix = env.get("TASKROUTER_SUBJECT_PREFIX", "taskrouter")

        async def on_reservation(message) -> None:
            reserved.setdefault(json.loads(message.data)["event_data"]["task_sid"], time.perf_counter())

        await connection.subscribe(f"{prefix}.events.*.{ws}.*.reservation.created", cb=on_reservation)
        phases = []
        # Tasks are created with aiohttp: this process shares the machine's cores
        # with the system, and httpx cost it about three times the CPU per request.
        creator = aiohttp.ClientSession(
            base_url=base, auth=aiohttp.BasicAuth(*auth),
            connector=aiohttp.TCPConnector(limit=64), timeout=aiohttp.ClientTimeout(total=30),
        )
        for raw in args.rates.split(","):
            rate = None if raw == "max" else float(raw)
            before = cpu_seconds(stack)
            phase = await drive(creator, ws, workflow, rate, args.seconds, reserved)
            after = cpu_seconds(stack)
            phase["cpu_seconds"] = {k: round(after[k] - before[k], 2) for k in after}
            # CPU milliseconds per routed task, per process: where the time goes.
            routed = max(1, phase["reserved"])
            phase["cpu_ms_per_task"] = {
                k: round(1000 * (after[k] - before[k]) / routed, 2) for k in after
            }
            phase["consumer_backlog"] = await consumer_backlog(connection, prefix)
            phases.append(phase)
            print(json.dumps(phase), flush=True)
        await creator.close()
        await connection.close()
        report["phases"] = phases

    port = devstack.free_port()
    bare = start_bare_fastapi(port)
    try:
        report["bare_fastapi_get_per_s"] = await get_rate(f"http://127.0.0.1:{port}/v1/Workspaces/{ws}", None)
    finally:
        bare.terminate()
        bare.wait()
    report["gateway_get_workspace_per_s"] = await get_rate(f"{base}/v1/Workspaces/{ws}", auth)
    best = max(p["throughput_per_s"] for p in report["phases"])
    report["ratios"] = {
        "throughput_to_store_inserts": round(best / report["store_inserts_per_s"], 3),
        "gateway_get_to_bare_fastapi": round(
            report["gateway_get_workspace_per_s"] / report["bare_fastapi_get_per_s"], 3
        ),
    }
    return report


def start_bench_stack(prefix: str) -> devstack.Stack:
    """The whole system as `make run` starts it, on free ports in a fresh data folder."""
    port = devstack.free_port()
    env = {
        "TASKROUTER_HTTP_PORT": str(port),
        "TASKROUTER_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "TASKROUTER_ACCOUNT_SID": new_sid(SidPrefix.ACCOUNT),
        "TASKROUTER_AUTH_TOKEN": secrets.token_hex(16),
        "TASKROUTER_LOG_LEVEL": "WARNING",
        "TASKROUTER_RATE_LIMIT_PER_SECOND": "0",  # measure routing, not the limiter
    }
    os.environ.setdefault("TASKROUTER_NATS_PORT", str(devstack.free_port()))
    os.environ.setdefault("TASKROUTER_STORE_PORT", str(devstack.free_port()))
    return start_stack(Path(tempfile.mkdtemp(prefix=prefix)), env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rates", default="100,250,500,max")
    args = parser.parse_args()
    stack = start_bench_stack("taskrouter-bench-")
    env = stack.env
    try:
        wait_healthy(env["TASKROUTER_PUBLIC_URL"])
        report = asyncio.run(main_async(args, stack))
    finally:
        stack.stop()
    Path(".bench").mkdir(exist_ok=True)
    Path(".bench/system.json").write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "phases"}, indent=2))


if __name__ == "__main__":
    main()
