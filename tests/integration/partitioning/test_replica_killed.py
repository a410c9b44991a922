"""Replicas as real processes, one killed mid-flow: its partitions are taken over.

Two queue-dispatcher and two workflow-router processes (`python -m ...`) run
with partitioning on against one NATS and one store. The test plays the
gateway: it stores configuration documents and sends commands with the
partition in the subject. One replica is killed with SIGKILL (no hand-over);
once its leases expire the other takes its partitions, loads their state and
re-arms their timers, so a reservation timeout or a routing step timeout armed
on the dead replica still fires, and no task is lost or reserved twice.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats
import pytest
from partition_world import Seeded, eventually, workspaces_covering

from services import devstack
from shared.partitions import partition_of
from shared.runtime import ServiceRuntime
from shared.settings import CommonSettings, load
from shared.sids import SidPrefix, new_sid
from shared.storage import collections as c
from shared.subjects import QUEUE_DISPATCHER, WORKFLOW_ROUTER, Subjects

pytestmark = pytest.mark.integration

PARTITIONS = 4
LIVE = ["pending", "accepted"]


@pytest.fixture
def env(isolated_env):
    return {
        **isolated_env,
        "TASKROUTER_PARTITIONING": "on",
        "TASKROUTER_PARTITIONS": str(PARTITIONS),
        "TASKROUTER_LEASE_TTL_SECONDS": "1.5",
        "TASKROUTER_LOG_FORMAT": "text",
        "TASKROUTER_METRICS_PORT": "0",
    }


class System:
    """The service processes, a sender of commands, and a reader of the leases."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.processes: list[devstack.ManagedProcess] = []
        self.sender = ServiceRuntime("probe", load(CommonSettings, env))
        self.db = self.sender.db
        self.subjects = Subjects(env["TASKROUTER_SUBJECT_PREFIX"])
        self._nc = None
        self._kv = None

    def start(self, module: str, count: int) -> None:
        for index in range(count):
            log = self.logs / f"{module.rsplit('.', 1)[-1]}-{index}.log"
            self.processes.append(devstack.start_service(module, self.env, log=log))

    async def owners(self, service: str) -> dict[int, int | None]:
        """Partition → process id of its lease holder (None: free)."""
        if self._nc is None:
            self._nc = await nats.connect(self.env["NATS_URL"])
        if self._kv is None:
            try:
                self._kv = await self._nc.jetstream().key_value(
                    self.subjects.lease_bucket
                )
            except nats.js.errors.BucketNotFoundError:  # no replica is up yet
                return dict.fromkeys(range(PARTITIONS))
        found: dict[int, int | None] = {}
        for partition in range(PARTITIONS):
            try:
                entry = await self._kv.get(f"{service}.partition.{partition}")
            except nats.js.errors.NotFoundError:
                found[partition] = None
                continue
            found[partition] = int(entry.value.decode().rsplit("-", 2)[-2])
        return found

    async def wait_split(self, service: str, pids: set[int]) -> dict[int, int | None]:
        """Wait until every partition is held, each process holding its share."""

        async def split():
            owners = await self.owners(service)
            held = [owners[p] for p in range(PARTITIONS)]
            per_pid = {pid: held.count(pid) for pid in pids}
            even = all(n == PARTITIONS // len(pids) for n in per_pid.values())
            return owners if even and None not in held else None

        return await eventually(split, f"{service} partitions split between replicas")

    def pids(self, name: str) -> set[int]:
        return {
            p.process.pid
            for p in self.processes
            if p.name == name and p.process.poll() is None
        }

    def kill(self, pid: int) -> None:
        next(p for p in self.processes if p.process.pid == pid).kill()

    async def send(self, world: Seeded, action: str, **payload):
        body = {
            "account_sid": world.account,
            "workspace_sid": world.workspace,
            **payload,
        }
        return await self.sender.commands.request(
            QUEUE_DISPATCHER, action, body, workspace_sid=world.workspace, timeout=30
        )

    async def close(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        if self._nc is not None:
            await self._nc.close()
        await self.sender.stop()


@pytest.fixture
async def system(env, tmp_path):
    system = System(env, tmp_path)
    await system.sender.start()
    yield system
    await system.close()


async def _seed(system: System, **options) -> list[Seeded]:
    account = new_sid(SidPrefix.ACCOUNT)
    worlds = [Seeded(sid, account) for sid in workspaces_covering(PARTITIONS)]
    for world in worlds:
        await world.seed(system.db, **options)
    return worlds


async def _no_task_reserved_twice(system: System, worlds: list[Seeded]) -> None:
    assert await system.db[c.TASKS].count_documents({}) == len(worlds)
    for task in await system.db[c.TASKS].find({}).to_list(None):
        live = await system.db[c.RESERVATIONS].count_documents(
            {"task_sid": task["_id"], "reservation_status": {"$in": LIVE}}
        )
        assert live <= 1, task["_id"]


async def test_reservation_timeout_armed_on_a_killed_dispatcher_still_fires(system):
    worlds = await _seed(system, reservation_timeout=4)
    system.start("services.queue_dispatcher", 2)
    system.start("services.workflow_router", 1)
    dispatchers = system.pids("queue_dispatcher")
    owners = await system.wait_split(QUEUE_DISPATCHER, dispatchers)
    await system.wait_split(WORKFLOW_ROUTER, system.pids("workflow_router"))

    # Each workspace: one available worker, one task, reserved through the router.
    workers, tasks = {}, {}
    for world in worlds:
        worker = await system.send(
            world, "worker.create", friendly_name="ada", activity_sid=world.available
        )
        task = await system.send(world, "task.create", workflow_sid=world.workflow)
        workers[world.workspace], tasks[world.workspace] = worker["sid"], task["sid"]

    async def all_reserved():
        # Any status: on a loaded machine the first offers may time out (4 s)
        # before the last ones are made; each worker then goes to the timeout
        # activity, so every task has exactly one reservation.
        offers = await system.db[c.RESERVATIONS].find({}).to_list(None)
        return offers if len(offers) == len(worlds) else None

    reservations = await all_reserved() or await eventually(
        all_reserved, "reservations"
    )
    by_task = {r["task_sid"]: r["_id"] for r in reservations}
    assert set(by_task) == set(tasks.values())

    # Kill the dispatcher owning the first workspace's partition, timers armed.
    victim = owners[partition_of(worlds[0].workspace, PARTITIONS)]
    assert victim is not None
    system.kill(victim)
    doomed = [
        w for w in worlds if owners[partition_of(w.workspace, PARTITIONS)] == victim
    ]
    assert doomed

    (survivor,) = dispatchers - {victim}
    await system.wait_split(QUEUE_DISPATCHER, {survivor})

    # Every reservation times out, the dead replica's ones included.
    async def all_timed_out():
        statuses = [
            (await system.db[c.RESERVATIONS].find_one({"_id": sid}))[
                "reservation_status"
            ]
            for sid in by_task.values()
        ]
        return all(status == "timeout" for status in statuses)

    await eventually(all_timed_out, "reservation timeouts", seconds=30)
    await _no_task_reserved_twice(system, worlds)

    # The survivor answers for the dead replica's workspaces: a worker made
    # available again gets the task offered once more.
    for world in doomed:
        await system.send(
            world,
            "worker.update",
            worker_sid=workers[world.workspace],
            activity_sid=world.available,
        )

    async def offered_again():
        found = [
            await system.db[c.RESERVATIONS].find_one(
                {"task_sid": tasks[w.workspace], "reservation_status": "pending"}
            )
            for w in doomed
        ]
        return all(found)

    await eventually(offered_again, "new reservations on the survivor")
    await _no_task_reserved_twice(system, worlds)


async def test_step_timeout_armed_on_a_killed_router_still_moves_the_task(system):
    step_timeout = 12  # long enough that a loaded machine still kills the router before it
    worlds = await _seed(system, first_step_timeout=step_timeout)
    system.start("services.queue_dispatcher", 1)
    system.start("services.workflow_router", 2)
    await system.wait_split(QUEUE_DISPATCHER, system.pids("queue_dispatcher"))
    routers = system.pids("workflow_router")
    owners = await system.wait_split(WORKFLOW_ROUTER, routers)

    for world in worlds:
        await system.send(
            world, "worker.create", friendly_name="ada", activity_sid=world.available
        )
    started = asyncio.get_running_loop().time()
    tasks = {}
    for world in worlds:
        task = await system.send(world, "task.create", workflow_sid=world.workflow)
        tasks[task["sid"]] = world

    async def all_in_first_queue():
        positions = await system.db[c.ROUTING_POSITIONS].find({}).to_list(None)
        in_first = [
            p for p in positions if p["queue_sid"] == tasks[p["_id"]].first_queue
        ]
        return len(in_first) == len(worlds)

    await eventually(all_in_first_queue, "routing positions in the first step")

    victim = owners[partition_of(worlds[0].workspace, PARTITIONS)]
    assert victim is not None
    system.kill(victim)
    # The deadlines were armed on the victim and had not fired when it died.
    assert asyncio.get_running_loop().time() - started < step_timeout
    assert await system.db[c.RESERVATIONS].count_documents({}) == 0

    (survivor,) = routers - {victim}
    await system.wait_split(WORKFLOW_ROUTER, {survivor})

    async def all_moved_and_reserved():
        for task_sid, world in tasks.items():
            task = await system.db[c.TASKS].find_one({"_id": task_sid})
            if task["task_queue_sid"] != world.second_queue:
                return False
            if not await system.db[c.RESERVATIONS].find_one({"task_sid": task_sid}):
                return False
        return True

    await eventually(
        all_moved_and_reserved, "tasks moved to the second step", seconds=30
    )
    await _no_task_reserved_twice(system, worlds)
