"""Partition leases against a real nats-server, and the routing stream's partitions."""

from __future__ import annotations

import asyncio

import nats
import orjson
import pytest
from partition_world import eventually

from services.workflow_router.partitioning import ensure_routing_stream
from shared.bus import event_stream_config
from shared.leases import PartitionLeases
from shared.partitions import partition_of
from shared.settings import CommonSettings, load
from shared.sids import SidPrefix, new_sid
from shared.subjects import Subjects

pytestmark = pytest.mark.integration

PARTITIONS = 6


class Member:
    """One member's leases with callbacks that record what it answers for."""

    def __init__(self, env: dict[str, str], name: str) -> None:
        self.answering: set[int] = set()
        self.released: list[int] = []
        self.leases = PartitionLeases(
            env["NATS_URL"],
            Subjects(env["TASKROUTER_SUBJECT_PREFIX"]),
            "svc",
            PARTITIONS,
            ttl=1.0,
            on_acquire=self._acquire,
            on_release=self._release,
            member_id=name,
        )

    async def _acquire(self, partition: int) -> None:
        self.answering.add(partition)

    async def _release(self, partition: int) -> None:
        self.answering.discard(partition)
        self.released.append(partition)


async def _true(value: bool) -> bool:
    return value


async def test_a_joining_member_gets_its_share_and_a_leaving_one_hands_over(
    isolated_env,
):
    first, second = Member(isolated_env, "first"), Member(isolated_env, "second")
    await first.leases.start()
    assert first.answering == set(range(PARTITIONS))  # alone: claims all at once

    await second.leases.start()
    try:
        await eventually(
            lambda: _true(len(first.answering) == len(second.answering) == 3),
            "an even split",
        )
        assert first.answering.isdisjoint(second.answering)
        assert first.leases.owned == first.answering
    finally:
        await second.leases.stop()
    assert second.answering == set()

    await eventually(
        lambda: _true(first.answering == set(range(PARTITIONS))), "the hand-over"
    )
    await first.leases.stop()


async def test_a_lost_lease_stops_the_member_answering_at_once(isolated_env):
    member = Member(isolated_env, "only")
    await member.leases.start()
    nc = await nats.connect(isolated_env["NATS_URL"])
    try:
        kv = await nc.jetstream().key_value(
            Subjects(isolated_env["TASKROUTER_SUBJECT_PREFIX"]).lease_bucket
        )
        # Someone else wrote the lease (as after an expiry while this member
        # was paused): the next renewal fails and the member lets go.
        await kv.put("svc.partition.2", b"intruder")

        await eventually(lambda: _true(2 in member.released), "the partition released")
        assert 2 not in member.answering
        assert 2 not in member.leases.owned
    finally:
        await member.leases.stop()
        await nc.close()


async def test_routing_stream_partitions_agree_with_partition_of(isolated_env):
    settings = load(
        CommonSettings,
        {**isolated_env, "TASKROUTER_PARTITIONING": "on", "TASKROUTER_PARTITIONS": "8"},
    )
    subjects = Subjects(settings.subject_prefix)
    nc = await nats.connect(settings.nats_url)
    js = nc.jetstream()
    try:
        await js.add_stream(config=event_stream_config(settings))
        await ensure_routing_stream(settings)
        workspaces = [new_sid(SidPrefix.WORKSPACE) for _ in range(24)]
        for sid in workspaces:
            subject = subjects.event("AC1", sid, "WT1", "task.created")
            await js.publish(subject, orjson.dumps({"workspace_sid": sid}))

        seen: dict[str, int] = {}
        subscriptions = [
            await js.pull_subscribe(
                subjects.routing_events(partition), stream=subjects.routing_stream
            )
            for partition in range(8)
        ]

        async def everything_seen():
            # Sourcing into the routing stream is asynchronous: fetch until all came.
            for partition, subscription in enumerate(subscriptions):
                try:
                    messages = await subscription.fetch(32, timeout=0.1)
                except TimeoutError:
                    continue
                for message in messages:
                    seen[orjson.loads(message.data)["workspace_sid"]] = partition
                    await message.ack()
            return len(seen) == len(workspaces)

        await eventually(everything_seen, "every event in the routing stream")
        assert seen == {sid: partition_of(sid, 8) for sid in workspaces}
    finally:
        await nc.close()


async def test_a_member_cut_off_from_nats_stops_answering_before_its_lease_expires(
    isolated_env,
):
    member = Member(isolated_env, "cut-off")
    await member.leases.start()
    assert member.answering == set(range(PARTITIONS))
    try:
        # Renewals stop reaching the server (as when NATS is out of reach).
        await member.leases._connection.close()

        await eventually(
            lambda: _true(member.answering == set()), "every partition let go"
        )
        assert member.leases.owned == frozenset()
    finally:
        await member.leases.stop()


async def test_a_round_finishes_when_the_last_entry_is_a_deletion(isolated_env):
    first, second = Member(isolated_env, "first"), Member(isolated_env, "second")
    await first.leases.start()
    await second.leases.start()
    await second.leases.stop()  # its lease and announcement end as delete markers
    try:
        await asyncio.wait_for(first.leases.tick(), timeout=10)
        assert first.answering == set(range(PARTITIONS))
    finally:
        await first.leases.stop()


async def test_two_replicas_creating_the_routing_stream_at_once_both_start(isolated_env):
    """Replicas started together both find no stream; the slower one uses the other's."""
    settings = load(
        CommonSettings,
        {**isolated_env, "TASKROUTER_PARTITIONING": "on", "TASKROUTER_PARTITIONS": "4"},
    )
    nc = await nats.connect(settings.nats_url)
    js = nc.jetstream()
    try:
        await js.add_stream(config=event_stream_config(settings))
        await asyncio.gather(*(ensure_routing_stream(settings) for _ in range(4)))
        info = await js.stream_info(Subjects(settings.subject_prefix).routing_stream)
        assert info.config.sources and len(info.config.sources) == 1
    finally:
        await nc.close()
