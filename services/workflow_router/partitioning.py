"""The workflow-router split across replicas: one router per workspace partition.

With `TASKROUTER_PARTITIONING=on` and `TASKROUTER_PARTITIONS` > 1, each replica
holds leases on its share of the partitions (`shared.leases`) and routes only
their tasks.

Events. A task's events must reach its partition's owner, in stream order. The
router reads them from its own JetStream stream, `<PREFIX>_ROUTING`, which
sources the event stream through a subject transform that puts the partition
first (`{{partition(P,2)}}`: FNV-1a of the workspace token, the same function as
`shared.partitions.partition_of`):

    <prefix>.routing.<k>.<account_sid>.<workspace_sid>.<resource_sid>.<event_type>

Each partition has its own durable consumer (`workflow-router-p<k>`) that only
its owner runs, so a task's events are handled by one replica, in order per
task (`KeyedEventConsumer`). The stream keeps work-queue retention: an event
is deleted once acknowledged. On acquiring a partition the replica deletes and
recreates its consumer, so events the previous owner fetched but never
acknowledged (it died mid-way) come again at once and in order, instead of
after the acknowledgement timeout and behind newer ones.

Cost of this choice: every event is stored a second time (until the router
acknowledges it) and crosses the server once more (sourcing); in exchange
there is no forwarding hop between replicas and no ordering protocol of our
own. The transform bakes P into the stream: changing TASKROUTER_PARTITIONS
updates the transform for new events only.

TODO: events already in the routing stream keep the partition token of the old
partition count after TASKROUTER_PARTITIONS changes; drain the routers (no
pending events) before changing it.
TODO: routing positions are written without a version filter, so a replica
that lost its lease without noticing (paused longer than the lease TTL) may
still overwrite a position once; the dispatcher's step sequence (`seq`) keeps
such a stale move from taking effect there.

NOTE: the routing stream sources events from the moment it is created. To
switch partitioning on in a running system, let the single router catch up
(its consumer lag at 0) and stop it first: events it had not handled yet would
not reach the partitioned routers.
TODO: the routing stream copies every event, worker events included, which the
router ignores; a source filter per event family would keep it smaller.
TODO: `taskrouter_consumer_lag` does not report the per-partition consumers of
the routing stream; read their `num_pending` with `nats consumer info` meanwhile.

On acquiring a partition the replica also loads its routing positions from
the store, re-arms their step deadlines and re-sends each current step (the
dispatcher ignores a repeat); on releasing it stops the consumer and forgets
the positions and deadlines.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import nats
from nats.js.api import (
    RetentionPolicy,
    StorageType,
    StreamConfig,
    StreamSource,
    SubjectTransform,
)
from nats.js.errors import BadRequestError
from nats.js.errors import NotFoundError as JsNotFoundError

from services.workflow_router.router import Router, is_routing_barrier
from shared import metrics
from shared.consumer import KeyedEventConsumer, KeyOf
from shared.leases import PartitionLeases
from shared.partitions import partition_of
from shared.runtime import ServiceRuntime
from shared.settings import CommonSettings
from shared.storage import collections as c
from shared.subjects import Subjects

logger = logging.getLogger(__name__)


def routing_stream_config(
    settings: CommonSettings, start: datetime | None = None
) -> StreamConfig:
    """The router's partitioned copy of the event stream."""
    subjects = Subjects(settings.subject_prefix)
    source, destination = subjects.routing_transform(settings.partitions)
    return StreamConfig(
        name=subjects.routing_stream,
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        num_replicas=settings.event_stream_replicas,
        sources=[
            StreamSource(
                name=subjects.event_stream,
                # From now on: older events were routed before partitioning
                # was switched on (or there are none yet).
                opt_start_time=start or datetime.now(UTC),
                subject_transforms=[SubjectTransform(src=source, dest=destination)],
            )
        ],
    )


async def ensure_routing_stream(settings: CommonSettings) -> None:
    """Create the routing stream, or bring its transform up to date."""
    config = routing_stream_config(settings)
    connection = await nats.connect(settings.nats_url.split(","), connect_timeout=5)
    try:
        js = connection.jetstream()
        try:
            info = await js.stream_info(config.name)
        except JsNotFoundError:
            try:
                await js.add_stream(config=config)
                return
            except BadRequestError:
                # Another replica starting at the same moment created it first
                # (with its own start time): use theirs.
                info = await js.stream_info(config.name)
        # Keep the original start time: moving it would skip or repeat events.
        old = (info.config.sources or [None])[0]
        if old is not None and config.sources:
            config.sources[0].opt_start_time = old.opt_start_time
            config.sources[0].opt_start_seq = old.opt_start_seq
        try:
            await js.update_stream(config=config)
        except BadRequestError:
            logger.warning("routing stream configuration left unchanged", exc_info=True)
    finally:
        await connection.close()


class PartitionedRouting:
    """Per-partition consumers and positions of the partitions this replica owns."""

    def __init__(
        self,
        runtime: ServiceRuntime,
        settings: CommonSettings,
        router: Router,
        key_of: KeyOf,
    ) -> None:
        self._runtime = runtime
        self._settings = settings
        self._router = router
        self._key_of = key_of
        self._consumers: dict[int, KeyedEventConsumer] = {}
        self._resyncs: dict[int, asyncio.Task[None]] = {}
        self.leases = PartitionLeases(
            settings.nats_url,
            runtime.subjects,
            runtime.name,
            settings.partitions,
            settings.lease_ttl_seconds,
            self.acquire,
            self.release,
            replicas=settings.event_stream_replicas,
        )

    def inside(self, partition: int) -> Callable[[str], bool]:
        """Whether a workspace belongs to `partition`."""
        count = self._settings.partitions
        return lambda workspace_sid: partition_of(workspace_sid, count) == partition

    async def acquire(self, partition: int) -> None:
        """Load the partition's positions, then consume its events from where they stand."""
        inside = self.inside(partition)
        sids = {
            doc["_id"]
            async for doc in self._runtime.db[c.WORKSPACES].find({}, {"_id": 1})
            if inside(doc["_id"])
        }
        count = await self._router.load_partition(sids)
        await self._reset_consumer(partition)
        consumer = KeyedEventConsumer(
            self._settings.nats_url,
            handler=metrics.counted_events(self._on_event, self._runtime.name, False),
            key_of=self._key_of,
            is_barrier=is_routing_barrier,
            stream=self._runtime.subjects.routing_stream,
            filter_subject=self._runtime.subjects.routing_events(partition),
            durable=self._durable(partition),
            batch_size=64,
        )
        await consumer.start()
        self._consumers[partition] = consumer
        self._resyncs[partition] = asyncio.create_task(self._router.resync(inside))
        logger.info(
            "routing partition loaded",
            extra={"partition": partition, "positions": count},
        )

    async def release(self, partition: int) -> None:
        """Stop consuming the partition's events and forget its positions."""
        resync = self._resyncs.pop(partition, None)
        if resync is not None:
            resync.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await resync
        consumer = self._consumers.pop(partition, None)
        if consumer is not None:
            await consumer.stop()
        await self._router.release_workspaces(self.inside(partition))

    async def _on_event(self, body: dict[str, Any]) -> None:
        await self._router.on_event(body)

    async def _reset_consumer(self, partition: int) -> None:
        js = self._runtime.broker.connection.jetstream()
        with contextlib.suppress(JsNotFoundError):
            await js.delete_consumer(
                self._runtime.subjects.routing_stream, self._durable(partition)
            )

    def _durable(self, partition: int) -> str:
        return f"{self._runtime.name}-p{partition}"
