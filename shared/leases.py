"""Partition leases in a NATS KV bucket: each partition has at most one owner.

Every replica of a partitioned service (`shared.partitions`) runs one
`PartitionLeases`. In the bucket `<PREFIX>_LEASES`, whose entries expire
`ttl` seconds after their last write (the bucket's max age):

    <service>.member.<member_id>     the replica's announcement, rewritten every tick
    <service>.partition.<k>          the lease of partition k; its value is the owner

Each tick (ttl / 4) a replica announces itself, renews its leases with a
compare-and-set on the revision it wrote last, reads the members and owners,
and follows `plan_leases`: it claims free partitions assigned to it (`create`
fails when another member holds the key) and releases the ones assigned to
others. A replica that dies stops renewing; its keys expire after `ttl` and the
others claim its partitions on their next tick.

Callbacks: `on_acquire(k)` runs after the lease is held and must load the
partition's state before it starts answering; `on_release(k)` must stop
answering for the partition at once and drop its state. A renewal that fails
(the key expired or changed: this replica was too slow, maybe paused) calls
`on_release` straight away, and so does a lease left unrenewed for most of
`ttl` (NATS out of reach), before the server lets another member claim it.
A write the old owner still had in flight is fenced by the version filters of
the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import uuid
from collections.abc import Awaitable, Callable

import nats
from nats.aio.client import Client
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import (
    BucketNotFoundError,
    KeyValueError,
    KeyWrongLastSequenceError,
    NotFoundError,
)
from nats.js.kv import KeyValue

from shared.partitions import plan_leases
from shared.subjects import Subjects

logger = logging.getLogger(__name__)

PartitionHook = Callable[[int], Awaitable[None]]

# Share of the TTL after which an unrenewed lease is given up locally.
FENCE_AFTER = 0.8


def new_member_id(service: str) -> str:
    """A member name unique to this process: `<service>-<host>-<pid>-<random>`.

    Host (the pod name in Kubernetes) and process id tell people which replica
    holds which partition when they read the lease bucket.
    """
    host = socket.gethostname() or "host"
    return f"{service}-{host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class PartitionLeases:
    """Claims, renews and releases this replica's share of a service's partitions."""

    def __init__(
        self,
        nats_url: str,
        subjects: Subjects,
        service: str,
        count: int,
        ttl: float,
        on_acquire: PartitionHook,
        on_release: PartitionHook,
        member_id: str | None = None,
        replicas: int = 1,
    ) -> None:
        self._servers = nats_url.split(",")
        self._subjects = subjects
        self.service = service
        self.count = count
        self.ttl = ttl
        self.interval = ttl / 4
        self.member_id = _key_safe(member_id or new_member_id(service))
        self._on_acquire = on_acquire
        self._replicas = replicas
        self._on_release = on_release
        self._connection: Client | None = None
        self._kv: KeyValue | None = None
        self._held: dict[int, int] = {}  # partition -> revision we wrote last
        self._owned: set[int] = set()  # acquired and loaded
        self._locks: dict[int, asyncio.Lock] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._renewing = asyncio.Lock()
        self._renewed: dict[int, float] = {}  # partition -> loop time of the last write

    @property
    def owned(self) -> frozenset[int]:
        """Partitions whose state is loaded and which this replica answers for."""
        return frozenset(self._owned)

    # -- life cycle -------------------------------------------------------------
    async def start(self) -> None:
        """Open the bucket, announce this member, claim a first share, keep going."""
        self._connection = await nats.connect(
            self._servers, max_reconnect_attempts=-1, reconnect_time_wait=0.5
        )
        self._kv = await self._bucket(self._connection)
        await self.tick()
        self._tasks = [
            asyncio.create_task(
                self._forever(self.renew), name=f"renew-{self.service}"
            ),
            asyncio.create_task(
                self._forever(self.tick), name=f"leases-{self.service}"
            ),
        ]

    async def stop(self) -> None:
        """Hand every partition back at once (no waiting for expiry), then leave.

        Bounded in time: a shutdown must not hang on NATS. Whatever is not
        handed back by then expires after `ttl`.
        """
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self.ttl)
        try:
            await asyncio.wait_for(self._hand_back(), timeout=max(5.0, 2 * self.ttl))
        except TimeoutError:
            logger.warning("partitions not all handed back in time; leases expire")
        if self._connection is not None:
            try:
                await asyncio.wait_for(self._connection.close(), timeout=5.0)
            except TimeoutError:
                logger.warning("lease connection not closed in time")

    async def _hand_back(self) -> None:
        for partition in sorted(self._held):
            await self._release(partition)
        if self._kv is not None:
            try:
                await self._kv.delete(self._member_key(self.member_id))
            except (nats.errors.Error, KeyValueError, NotFoundError, TimeoutError):
                logger.warning("member announcement left to expire", exc_info=True)

    async def _forever(self, step: Callable[[], Awaitable[None]]) -> None:
        # Renewals run apart from claims, so loading a large partition
        # (`on_acquire`) never delays the renewal of the others.
        while True:
            await asyncio.sleep(self.interval)
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except Exception:  # NATS away for a moment; renewals resume next tick
                logger.warning("partition lease round failed", exc_info=True)
                if step == self.renew:
                    await self._fence_unrenewed()

    # -- one round ----------------------------------------------------------------
    async def tick(self) -> None:
        """Announce, then claim and release toward this member's fair share."""
        await self._announce()
        members = await self._members()
        owners = await self._owners()
        plan = plan_leases(self.member_id, members, owners, self.count)
        for partition in sorted(plan.release):
            await self._release(partition)
        for partition in sorted(plan.acquire):
            await self._acquire(partition)

    async def renew(self) -> None:
        """Announce this member and extend every lease it holds.

        Only ever one renewal at a time: two would send the same expected
        revision and the second would find its own lease "lost".
        """
        async with self._renewing:
            await self._fence_unrenewed()
            await self._announce()
            await self._renew_held()

    async def _fence_unrenewed(self) -> None:
        """Let go of leases not renewed for most of `ttl` (NATS out of reach).

        The server drops a lease `ttl` after the last renewal it stored, and
        another member may claim it right after; stopping a little earlier
        keeps the two from answering for the same partition at once.
        """
        now = asyncio.get_running_loop().time()
        for partition, renewed in list(self._renewed.items()):
            if now - renewed > FENCE_AFTER * self.ttl and partition in self._held:
                logger.warning(
                    "partition lease not renewed in time; released",
                    extra={"service": self.service, "partition": partition},
                )
                self._held.pop(partition, None)
                self._renewed.pop(partition, None)
                await self._drop(partition)

    async def _announce(self) -> None:
        await self._require_kv().put(self._member_key(self.member_id), b"1")

    async def _renew_held(self) -> None:
        kv = self._require_kv()
        for partition, revision in list(self._held.items()):
            key = self._partition_key(partition)
            sent = asyncio.get_running_loop().time()
            try:
                revision = await kv.update(key, self.member_id.encode(), last=revision)
            except (KeyWrongLastSequenceError, NotFoundError):
                logger.warning(
                    "partition lease lost",
                    extra={"service": self.service, "partition": partition},
                )
                self._held.pop(partition, None)
                self._renewed.pop(partition, None)
                await self._drop(partition)
                continue
            if partition in self._held:
                self._held[partition] = revision
                self._renewed[partition] = sent
            else:  # released while this renewal was on its way: let it go now
                with contextlib.suppress(KeyWrongLastSequenceError, NotFoundError):
                    await kv.delete(key, last=revision)

    async def _members(self) -> set[str]:
        """Members whose announcement has neither expired nor been deleted.

        NOTE: not `KeyValue.keys()`: in nats-py 2.16 it waits forever when the
        bucket's last entry is a delete marker (a released lease), which here
        is common. The stream's per-subject state lists the candidates instead.
        """
        kv = self._require_kv()
        bucket = self._subjects.lease_bucket
        head = f"$KV.{bucket}.{self.service}.member."
        js = self._require_connection().jetstream()
        info = await js.stream_info(f"KV_{bucket}", subjects_filter=f"{head}>")
        names = [subject[len(head) :] for subject in info.state.subjects or {}]

        async def alive(name: str) -> bool:
            try:
                await kv.get(self._member_key(name))
            except NotFoundError:  # deleted (left) or expired meanwhile
                return False
            return True

        found = await asyncio.gather(*(alive(name) for name in names))
        return {name for name, up in zip(names, found, strict=True) if up}

    async def _owners(self) -> dict[int, str | None]:
        kv = self._require_kv()

        async def owner(partition: int) -> str | None:
            try:
                entry = await kv.get(self._partition_key(partition))
            except NotFoundError:
                return None
            return entry.value.decode() if entry.value else None

        found = await asyncio.gather(*(owner(p) for p in range(self.count)))
        return dict(enumerate(found))

    async def _acquire(self, partition: int) -> None:
        sent = asyncio.get_running_loop().time()
        try:
            revision = await self._require_kv().create(
                self._partition_key(partition), self.member_id.encode()
            )
        except KeyWrongLastSequenceError:
            return  # claimed by another member between our read and now
        self._held[partition] = revision
        self._renewed[partition] = sent
        async with self._lock(partition):
            try:
                await self._on_acquire(partition)
            except Exception:
                logger.exception(
                    "partition not taken over; lease handed back",
                    extra={"service": self.service, "partition": partition},
                )
                with contextlib.suppress(Exception):
                    await self._on_release(partition)
                revision = self._held.pop(partition, revision)
                with contextlib.suppress(KeyWrongLastSequenceError, NotFoundError):
                    await self._require_kv().delete(
                        self._partition_key(partition), last=revision
                    )
                return
            self._owned.add(partition)
        if partition not in self._held:  # lost while loading
            await self._drop(partition)
            return
        logger.info(
            "partition acquired",
            extra={"service": self.service, "partition": partition},
        )

    async def _release(self, partition: int) -> None:
        revision = self._held.pop(partition, None)
        self._renewed.pop(partition, None)
        await self._drop(partition)
        if revision is None:
            return
        try:
            await self._require_kv().delete(
                self._partition_key(partition), last=revision
            )
        except (KeyWrongLastSequenceError, NotFoundError):
            pass  # already expired or taken
        except (nats.errors.Error, TimeoutError):
            # Out of reach: the lease expires after `ttl` instead of at once.
            logger.warning(
                "partition lease not deleted", extra={"partition": partition}
            )
        logger.info(
            "partition released",
            extra={"service": self.service, "partition": partition},
        )

    async def _drop(self, partition: int) -> None:
        async with self._lock(partition):
            if partition in self._owned:
                self._owned.discard(partition)
                await self._on_release(partition)

    # -- helpers ------------------------------------------------------------------
    async def _bucket(self, connection: Client) -> KeyValue:
        js = connection.jetstream()
        name = self._subjects.lease_bucket
        try:
            kv = await js.key_value(name)
        except BucketNotFoundError:
            config = KeyValueConfig(
                bucket=name,
                history=1,
                ttl=self.ttl,
                storage=StorageType.MEMORY,
                replicas=self._replicas,
            )
            return await js.create_key_value(config)
        status = await kv.status()
        if status.ttl is not None and abs(status.ttl - self.ttl) > 0.01:
            logger.warning(
                "lease bucket keeps another time-to-live; using it",
                extra={"bucket": name, "ttl": status.ttl},
            )
        return kv

    def _require_connection(self) -> Client:
        if self._connection is None:
            raise RuntimeError("partition leases are not started")
        return self._connection

    def _require_kv(self) -> KeyValue:
        if self._kv is None:
            raise RuntimeError("partition leases are not started")
        return self._kv

    def _lock(self, partition: int) -> asyncio.Lock:
        return self._locks.setdefault(partition, asyncio.Lock())

    def _member_key(self, member: str) -> str:
        return f"{self.service}.member.{member}"

    def _partition_key(self, partition: int) -> str:
        return f"{self.service}.partition.{partition}"


def _key_safe(name: str) -> str:
    return re.sub(r"[^-_=a-zA-Z0-9]", "_", name)
