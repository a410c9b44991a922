"""Two queue-dispatcher replicas in one process: each workspace has one writer.

The replicas share one NATS and one store with partitioning on. The test sends
commands as the gateway would (the partition in the subject) and checks that
each workspace's state lives in exactly one replica, the one holding its
partition's lease; then that a replica leaving hands its partitions over.
"""

from __future__ import annotations

import pytest
from partition_world import Seeded, eventually, workspaces_covering

from services.queue_dispatcher.app import build as build_dispatcher
from services.queue_dispatcher.settings import DispatcherSettings
from shared.partitions import partition_of
from shared.runtime import ServiceRuntime
from shared.settings import CommonSettings, load
from shared.sids import SidPrefix, new_sid
from shared.storage import collections as c
from shared.storage.mongo import open_client
from shared.subjects import QUEUE_DISPATCHER

pytestmark = pytest.mark.integration

PARTITIONS = 4


@pytest.fixture
def env(isolated_env):
    return {
        **isolated_env,
        "TASKROUTER_PARTITIONING": "on",
        "TASKROUTER_PARTITIONS": str(PARTITIONS),
        "TASKROUTER_LEASE_TTL_SECONDS": "1.5",
    }


@pytest.fixture
async def seeded(env):
    account = new_sid(SidPrefix.ACCOUNT)
    worlds = [Seeded(sid, account) for sid in workspaces_covering(PARTITIONS)]
    client = open_client(env["MONGODB_URL"])
    for world in worlds:
        await world.seed(client[env["MONGODB_DATABASE"]])
    await client.close()
    return worlds


@pytest.fixture
async def sender(env):
    runtime = ServiceRuntime("probe", load(CommonSettings, env))
    await runtime.start()
    yield runtime
    await runtime.stop()


async def _send(sender: ServiceRuntime, world: Seeded, action: str, **payload):
    body = {"account_sid": world.account, "workspace_sid": world.workspace, **payload}
    return await sender.commands.request(
        QUEUE_DISPATCHER, action, body, workspace_sid=world.workspace
    )


async def test_each_workspace_is_served_by_exactly_one_replica(env, seeded, sender):
    replicas = [build_dispatcher(load(DispatcherSettings, env)) for _ in range(2)]
    for runtime, _ in replicas:
        await runtime.start()
    try:
        first, second = (dispatcher for _, dispatcher in replicas)

        async def balanced():
            owned = [first.owned, second.owned]
            return len(owned[0]) == len(owned[1]) == PARTITIONS // 2 and owned[
                0
            ] | owned[1] == set(range(PARTITIONS))

        await eventually(balanced, "two partitions per replica")
        assert not first.owned & second.owned

        for world in seeded:
            await _send(
                sender,
                world,
                "worker.create",
                friendly_name="alice",
                activity_sid=world.available,
            )
            await _send(sender, world, "task.create", workflow_sid=world.workflow)

        for world in seeded:
            partition = partition_of(world.workspace, PARTITIONS)
            holders = [
                d for d in (first, second) if d.state(world.workspace) is not None
            ]
            assert len(holders) == 1, world.workspace
            assert partition in holders[0].owned
            assert len(holders[0].state(world.workspace).tasks) == 1
    finally:
        for runtime, _ in replicas:
            await runtime.stop()


async def test_partitions_move_to_the_remaining_replica_when_one_stops(
    env, seeded, sender
):
    first_runtime, first = build_dispatcher(load(DispatcherSettings, env))
    second_runtime, second = build_dispatcher(load(DispatcherSettings, env))
    await first_runtime.start()
    await second_runtime.start()
    stopped = False
    try:
        await eventually(
            lambda: _true(len(first.owned) == len(second.owned) == PARTITIONS // 2),
            "an even split",
        )
        workers = {}
        for world in seeded:
            worker = await _send(
                sender,
                world,
                "worker.create",
                friendly_name="alice",
                activity_sid=world.offline,
            )
            workers[world.workspace] = worker["sid"]
            await _send(sender, world, "task.create", workflow_sid=world.workflow)

        await second_runtime.stop()  # hands its partitions back at once
        stopped = True
        await eventually(
            lambda: _true(first.owned == set(range(PARTITIONS))), "every partition"
        )

        # The survivor loaded the other replica's tasks and answers for them.
        db = first_runtime.db
        for world in seeded:
            assert len(first.state(world.workspace).tasks) == 1
            await _send(
                sender,
                world,
                "worker.update",
                worker_sid=workers[world.workspace],
                activity_sid=world.available,
            )
        assert await db[c.TASKS].count_documents({}) == len(seeded)
    finally:
        if not stopped:
            await second_runtime.stop()
        await first_runtime.stop()


async def _true(value: bool) -> bool:
    return value
