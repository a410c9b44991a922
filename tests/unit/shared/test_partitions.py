"""Partition hashing and the assignment of partitions to members, without I/O."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.partitions import LeasePlan, assign, fnv1a_32, partition_of, plan_leases
from shared.sids import SidPrefix, new_sid

members_strategy = st.sets(
    st.text("abcdefgh0123456789-", min_size=1, max_size=12), min_size=1, max_size=12
)


def test_fnv1a_32_matches_reference_vectors():
    # Published FNV-1a 32-bit test vectors.
    assert fnv1a_32("") == 0x811C9DC5
    assert fnv1a_32("a") == 0xE40C292C
    assert fnv1a_32("foobar") == 0xBF9CF968


def test_partition_of_is_stable_and_in_range():
    sid = "WS0123456789abcdef0123456789abcdef"
    assert partition_of(sid, 16) == fnv1a_32(sid) % 16
    assert partition_of(sid, 16) == partition_of(sid, 16)
    assert partition_of(sid, 1) == 0


def test_partition_of_refuses_no_partitions():
    with pytest.raises(ValueError, match="at least 1"):
        partition_of("WS1", 0)


def test_partition_of_spreads_workspaces():
    counts = [0] * 16
    for _ in range(1600):
        counts[partition_of(new_sid(SidPrefix.WORKSPACE), 16)] += 1
    assert min(counts) > 50  # 100 expected per partition


@given(members_strategy, st.integers(1, 64))
def test_assign_gives_every_partition_exactly_one_member(members, count):
    owned = assign(members, count)
    every = [p for parts in owned.values() for p in parts]
    assert sorted(every) == list(range(count))
    assert set(owned) == members


@given(members_strategy, st.integers(1, 64))
def test_assign_is_balanced(members, count):
    sizes = [len(parts) for parts in assign(members, count).values()]
    assert max(sizes) <= -(-count // len(members))
    assert max(sizes) - min(sizes) <= 1


@given(members_strategy, st.integers(1, 64))
def test_assign_ignores_member_order(members, count):
    assert assign(sorted(members), count) == assign(
        sorted(members, reverse=True), count
    )


def test_assign_of_no_members_is_empty():
    assert assign([], 16) == {}


def test_assign_moves_few_partitions_when_a_member_joins():
    before = assign(["a", "b", "c"], 48)
    after = assign(["a", "b", "c", "d"], 48)
    moved = sum(1 for m in "abc" for p in before[m] if p not in after[m])
    assert len(after["d"]) == 12
    assert moved <= 2 * 12  # a full reshuffle would move about 36


def test_plan_claims_free_share_and_leaves_others_alone():
    target = assign(["a", "b"], 8)
    owners = {p: ("a" if p in target["a"] else None) for p in range(8)}
    plan = plan_leases("b", ["a", "b"], owners, 8)
    assert plan == LeasePlan(acquire=target["b"], release=frozenset())


def test_plan_of_a_lone_member_claims_everything_free():
    plan = plan_leases("a", [], {p: None for p in range(4)}, 4)
    assert plan.acquire == frozenset(range(4))


def test_plan_never_takes_a_partition_held_by_another_member():
    owners = {p: "a" for p in range(8)}
    plan = plan_leases("b", ["a", "b"], owners, 8)
    assert plan.acquire == frozenset()


def test_plan_releases_extras_when_a_member_joins():
    owners = {p: "a" for p in range(8)}
    plan = plan_leases("a", ["a", "b"], owners, 8)
    assert plan.release == assign(["a", "b"], 8)["b"]
    assert plan.acquire == frozenset()


def test_plan_takes_over_a_dead_members_partitions_once_their_leases_expire():
    # "b" died: its announcement and leases expired, so its partitions are free.
    before = assign(["a", "b"], 8)
    owners = {p: ("a" if p in before["a"] else None) for p in range(8)}
    plan = plan_leases("a", ["a"], owners, 8)
    assert plan.acquire == before["b"]
    assert plan.release == frozenset()


@given(members_strategy, st.integers(1, 32))
def test_plans_converge_to_the_assignment(members, count):
    """Members taking turns with the same view end with every partition owned once."""
    owners: dict[int, str | None] = {p: None for p in range(count)}
    for _ in range(3):
        for me in sorted(members):
            plan = plan_leases(me, members, owners, count)
            for p in plan.release:
                owners[p] = None
            for p in plan.acquire:
                assert owners[p] is None
                owners[p] = me
    target = assign(members, count)
    assert owners == {p: m for m, parts in target.items() for p in parts}
