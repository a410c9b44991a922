"""Workspaces partitioned across the replicas of a service: hashing and assignment.

The queue-dispatcher and the workflow-router keep a workspace's state in
memory and must be its only writer. With partitioning on, workspaces fall into
`count` partitions, `partition_of(workspace_sid, count)`, and each partition has
at most one owner at a time (a lease, see `shared.leases`).

The hash is 32-bit FNV-1a of the workspace SID modulo `count`: the function
NATS applies in a subject transform `{{partition(count, n)}}` over one token, so
a JetStream stream can sort events into the same partitions (the router's
routing stream does; a test checks the two agree against a real server).

Which member should own which partition is decided by `assign`, the same pure
function on every member: each computes it from the live member list it reads
and only claims partitions assigned to itself, releasing the rest. Members that
see the same list agree; while they disagree (a member just joined or died)
a partition may be claimed by nobody for a moment, never by two, because the
lease is taken with a compare-and-set.

    assign(["a", "b"], 4) → two partitions each, e.g. a: {0, 3}, b: {1, 2}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193


def fnv1a_32(text: str) -> int:
    """32-bit FNV-1a hash of the UTF-8 bytes of `text`."""
    value = _FNV_OFFSET
    for byte in text.encode():
        value = ((value ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return value


def partition_of(workspace_sid: str, count: int) -> int:
    """The partition (0 … count-1) of a workspace; stable across processes."""
    if count < 1:
        raise ValueError(f"partition count must be at least 1, not {count!r}")
    return fnv1a_32(workspace_sid) % count


def assign(members: Iterable[str], count: int) -> dict[str, frozenset[int]]:
    """Spread `count` partitions over `members`, as evenly as possible.

    Rendezvous hashing with a cap: each partition goes to the member ranking
    highest for it (hash of partition and member) among those with room:
    every member ends with floor(count / members) or one more. Deterministic, independent of the order of
    `members`, and it moves few partitions when one member joins or leaves.
    """
    names = sorted(set(members))
    if not names:
        return {}
    floor, extra = divmod(count, len(names))
    owned: dict[str, set[int]] = {name: set() for name in names}
    for partition in range(count):
        ranking = sorted(
            names, key=lambda name: (-fnv1a_32(f"{partition}/{name}"), name)
        )
        # Only `extra` members may hold one partition more than `floor`.
        limit = floor + 1 if extra > 0 else floor
        winner = next(name for name in ranking if len(owned[name]) < limit)
        if len(owned[winner]) == floor:
            extra -= 1
        owned[winner].add(partition)
    return {name: frozenset(parts) for name, parts in owned.items()}


@dataclass(frozen=True)
class LeasePlan:
    """What one member should do next: claim these partitions, let go of those."""

    acquire: frozenset[int]
    release: frozenset[int]


def plan_leases(
    me: str,
    members: Iterable[str],
    owners: Mapping[int, str | None],
    count: int,
) -> LeasePlan:
    """The claims and releases that move member `me` toward `assign(members)`.

    `owners` maps each partition to its current lease holder (None: free).
    `me` counts as a member even when its own announcement is not visible yet.
    Only free partitions are claimed; another member's lease is never taken,
    it is released by its holder or expires.

        plan_leases("b", ["a", "b"], {0: "a", 1: "a", 2: None, 3: "a"}, 4)
        → acquire the free partitions assigned to b, release nothing (b owns none)
    """
    target = assign({*members, me}, count).get(me, frozenset())
    mine = frozenset(p for p, owner in owners.items() if owner == me)
    free = frozenset(p for p in range(count) if owners.get(p) is None)
    return LeasePlan(acquire=target & free, release=mine - target)
