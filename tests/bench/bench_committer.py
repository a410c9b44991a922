"""Store cost of the committer's two write modes, by batch size.

    .venv/bin/python tests/bench/bench_committer.py [--transactions 200]

Starts a secantusdb process (in memory) and commits batches of k decisions
(each: a task insert, a reservation insert and one event) through
`shared.storage.committer.Committer`, with every batch as one client-level
`bulkWrite` command, with one bulk write per collection, and as the committer
chooses by default. Prints transactions/s and the store's CPU per transaction.

Measured on a 2-core machine (store CPU per transaction): k=1 2.4 ms one
command vs 3.1 ms per collection; k=20 19 ms vs 12 ms. Hence the threshold
`ONE_COMMAND_MAX_WRITES`.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
from pymongo import AsyncMongoClient, InsertOne

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from shared.events import make_event  # noqa: E402
from shared.models import utcnow  # noqa: E402
from shared.storage import committer as committer_module  # noqa: E402
from shared.storage.committer import Committer, Write  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def store_cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


async def run_mode(client: AsyncMongoClient, store: psutil.Process, mode: str, k: int,
                   transactions: int) -> dict[str, float]:
    async def publish(event) -> None:
        return None

    db = client[f"bench_committer_{mode.replace(' ', '_')}_{k}"]
    for name in ("tasks", "reservations"):
        await db[name].create_index("workspace_sid")
    committer = Committer(client, db, publish, outbox="outbox")
    await committer.start()
    if mode == "per collection":
        committer._one_command = False
    threshold = committer_module.ONE_COMMAND_MAX_WRITES
    if mode == "one command":
        committer_module.ONE_COMMAND_MAX_WRITES = 1_000_000

    def decision() -> tuple[list[Write], list]:
        sid = uuid.uuid4().hex
        writes = [
            Write("tasks", InsertOne({"_id": f"WT{sid}", "workspace_sid": "WS1", "status": "reserved"})),
            Write("reservations", InsertOne({"_id": f"WR{sid}", "workspace_sid": "WS1", "task_sid": f"WT{sid}"})),
        ]
        event = make_event("reservation.created", account_sid="AC1", workspace_sid="WS1",
                           resource_type="reservation", resource_sid=f"WR{sid}", at=utcnow())
        return writes, [event]

    before, started = store_cpu(store), time.perf_counter()
    try:
        for _ in range(transactions):
            # k commits queued at once: the committer takes them as one batch.
            await asyncio.gather(*(committer.commit(*decision()) for _ in range(k)))
    finally:
        committer_module.ONE_COMMAND_MAX_WRITES = threshold
    elapsed, cpu = time.perf_counter() - started, store_cpu(store) - before
    await committer.stop()
    await client.drop_database(db.name)
    return {"transactions_per_s": transactions / elapsed, "store_cpu_ms_per_transaction": 1000 * cpu / transactions}


async def main(transactions: int) -> None:
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "secantusd-py"), "--host", "127.0.0.1", "--port", str(port),
         "--storage-path", ":memory:"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
        client: AsyncMongoClient = AsyncMongoClient(f"mongodb://127.0.0.1:{port}/?retryWrites=false")
        store = psutil.Process(server.pid)
        for k in (1, 5, 20):
            for mode in ("one command", "per collection", "default"):
                figures = await run_mode(client, store, mode, k, transactions)
                print(f"k={k:<3} {mode:15s} {figures['transactions_per_s']:7.0f} tx/s  "
                      f"store {figures['store_cpu_ms_per_transaction']:6.2f} ms/tx")
        await client.close()
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=200)
    asyncio.run(main(parser.parse_args().transactions))
