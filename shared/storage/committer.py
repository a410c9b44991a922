"""Durable writes with their events: the outbox, committed in groups.

A service hands `commit()` the writes of one decision and the events describing
them. The committer gathers every decision waiting at that moment into one
transaction that applies the writes and inserts the events into the service's
outbox collection, then publishes the events to JetStream (with the event SID as
`Nats-Msg-Id`, so a second publish of the same event is dropped by the stream).
A published batch's outbox document is deleted inside the next transaction (or
by the relay when none follows), so the clean-up costs no command of its own.
`commit()` returns once the transaction is durable; publishing follows in order.

A crash after the transaction and before the publish leaves the events in the
outbox; `relay_outbox()` (run at start and then periodically) publishes them.
So an event is never published before its write is durable, and never lost.

Batching is what keeps the store off the critical path: the local store does
~450 small transactions/s but ~10,000 documents/s inside one transaction.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import (
    AsyncMongoClient,
    DeleteMany,
    DeleteOne,
    InsertOne,
    ReplaceOne,
    UpdateOne,
)
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from shared.errors import ConflictError, TaskRouterError, UnavailableError
from shared.events import Event
from shared.storage.mongo import supports_transactions, translate_errors

logger = logging.getLogger(__name__)

Operation = InsertOne[Any] | ReplaceOne[Any] | UpdateOne | DeleteOne | DeleteMany

# MongoDB 8.0 (wire version 25) added `bulkWrite` across collections in one
# command; the local store speaks it too.
CLIENT_BULK_WRITE_WIRE_VERSION = 25
# Up to this many writes a batch goes as that one command; above, one bulk write
# per collection is cheaper. On the local store (measured with
# tests/bench/bench_committer.py) the single command saves ~0.5 ms per
# transaction but costs ~0.25 ms more per write.
ONE_COMMAND_MAX_WRITES = 3
Publish = Callable[[Event], Awaitable[None]]


@dataclass
class Write:
    """One write to `collection`. `must_match` makes a missed filter a conflict.

    Use `must_match` for versioned updates: `UpdateOne({"_id": sid, "version": 3}, …)`
    that matches nothing means someone else changed the object first.
    """

    collection: str
    operation: Operation
    must_match: bool = False


@dataclass
class _Unit:
    writes: Sequence[Write]
    events: Sequence[Event]
    outbox_id: str | None = None
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Committer:
    """Group-commits writes and outbox events; publishes events after commit."""

    def __init__(
        self,
        client: AsyncMongoClient[Any],
        db: AsyncDatabase[Any],
        publish: Publish,
        *,
        outbox: str,
        max_batch: int = 256,
    ) -> None:
        self._client = client
        self._db = db
        self._publish = publish
        self._outbox = db[outbox]
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Unit] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._transactions = True
        self._one_command = False
        # Outbox documents whose events are published: deleted by the next commit
        # (or the relay), not by a command of their own.
        self._published: list[str] = []
        # Outbox documents committed whose events this loop is still publishing:
        # the relay leaves them alone instead of publishing them a second time.
        self._in_flight: set[str] = set()

    async def start(self) -> None:
        self._transactions = await supports_transactions(self._client)
        if not self._transactions:
            logger.warning("store has no transactions; writes and outbox are separate")
        hello = await self._client.admin.command("hello")
        self._one_command = self._transactions and (
            int(hello.get("maxWireVersion", 0)) >= CLIENT_BULK_WRITE_WIRE_VERSION
        )
        await self._outbox.create_index("created_at")
        self._task = asyncio.create_task(self._run(), name="committer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        try:
            await asyncio.wait_for(self._delete_published(), 2)
        except Exception:  # the relay of the next start deletes them instead
            logger.warning("published outbox documents left for the relay", exc_info=True)

    async def commit(self, writes: Sequence[Write], events: Sequence[Event] = ()) -> None:
        """Apply `writes` and record `events` durably; raises ConflictError on a lost race."""
        unit = _Unit(writes, events)
        await self._queue.put(unit)
        await unit.done

    # -- the loop -------------------------------------------------------------
    async def _run(self) -> None:
        # NOTE: publishing is not overlapped with the next commit on purpose: on the
        # local store each transaction costs ~2.7 ms of its CPU, and waiting for the
        # publish lets the next batch grow. Overlapping them was measured to halve
        # throughput (more, smaller transactions on a saturated store).
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            committed = await self._commit_batch(batch)
            try:
                await self._publish_committed(committed)
            except Exception:
                # Whatever was not deleted from the outbox is relayed later.
                logger.warning("outbox clean-up failed; relay will finish it", exc_info=True)

    async def _commit_batch(self, batch: list[_Unit]) -> list[_Unit]:
        try:
            await self._apply(batch)
        except ConflictError as exc:
            if len(batch) == 1:
                return self._fail(batch, exc)
            return await self._commit_one_by_one(batch)
        except TaskRouterError as exc:  # the store is unreachable or refused the write
            if len(batch) > 1:
                # One decision may be the cause (a document held by the open
                # transaction of a crashed process): let the others through.
                return await self._commit_one_by_one(batch)
            logger.warning("store write failed", extra={"reason": exc.message})
            return self._fail(batch, exc)
        except PyMongoError as exc:
            logger.exception("store write failed")
            return self._fail(batch, UnavailableError(f"the store failed: {type(exc).__name__}"))
        for unit in batch:
            if unit.outbox_id:
                self._in_flight.add(unit.outbox_id)
            if not unit.done.done():
                unit.done.set_result(None)
        return batch

    async def _commit_one_by_one(self, batch: list[_Unit]) -> list[_Unit]:
        committed = []
        for unit in batch:
            committed.extend(await self._commit_batch([unit]))
        return committed

    @staticmethod
    def _fail(batch: list[_Unit], error: Exception) -> list[_Unit]:
        for unit in batch:
            if not unit.done.done():
                unit.done.set_exception(error)
        return []

    async def _apply(self, batch: list[_Unit]) -> None:
        """One transaction for the whole batch; raises ConflictError on a missed match.

        The same transaction deletes the outbox documents of batches already
        published, so their clean-up costs no command of its own.
        """
        for unit in batch:
            unit.outbox_id = None  # a failed earlier try of a larger batch may have set it
        stale, self._published = self._published, []
        try:
            if not self._transactions:
                await self._apply_writes(batch, stale, None)
                return
            async with self._client.start_session() as session:
                async with await session.start_transaction():
                    await self._apply_writes(batch, stale, session)
        except BaseException:
            self._published = stale + self._published
            raise

    async def _apply_writes(self, batch: list[_Unit], stale: list[str], session: Any) -> None:
        writes = sum(len(unit.writes) for unit in batch)
        if self._one_command and writes <= ONE_COMMAND_MAX_WRITES:
            await self._apply_in_one_command(batch, stale, session)
        else:
            await self._apply_per_collection(batch, stale, session)

    async def _apply_per_collection(self, batch: list[_Unit], stale: list[str], session: Any) -> None:
        """One bulk write per collection, the outbox's last."""
        by_collection: dict[str, list[Write]] = defaultdict(list)
        for unit in batch:
            for write in unit.writes:
                by_collection[write.collection].append(write)
        for name, writes in by_collection.items():
            await self._bulk(name, writes, session)
        # One outbox document per batch: the local store pays per document, so
        # 80 events cost one insert and one delete instead of 80 of each.
        outbox_writes: list[Any] = [DeleteOne({"_id": i}) for i in stale]
        outbox_id, document = _outbox_document(batch)
        if document is not None:
            outbox_writes.append(InsertOne(document))
        if outbox_writes:
            await translate_errors(
                lambda: self._outbox.bulk_write(outbox_writes, ordered=True, session=session)
            )
        for unit in batch:
            unit.outbox_id = outbox_id

    async def _apply_in_one_command(self, batch: list[_Unit], stale: list[str], session: Any) -> None:
        """The batch's writes, its outbox document and the deletion of published ones,
        as one `bulkWrite` command inside the transaction.

        On the local store a transaction of k collections costs k + 3 commands
        (k bulk writes, the outbox write, the commit); this is two, but each
        write in it costs about twice as much, so only small batches go this way.
        """
        models: list[Any] = []
        must_match: list[int] = []
        for unit in batch:
            for write in unit.writes:
                if write.must_match:
                    must_match.append(len(models))
                models.append(_in_namespace(write.operation, self._namespace(write.collection)))
        outbox = self._namespace(self._outbox.name)
        models.extend(DeleteOne({"_id": i}, namespace=outbox) for i in stale)
        outbox_id, document = _outbox_document(batch)
        if document is not None:
            models.append(InsertOne(document, namespace=outbox))
        if not models:
            return
        result = await translate_errors(
            lambda: self._client.bulk_write(
                models, session=session, ordered=True, verbose_results=bool(must_match)
            )
        )
        for index in must_match:
            update = result.update_results.get(index)
            if update is None or update.matched_count + (1 if update.upserted_id is not None else 0) < 1:
                raise ConflictError("the object changed meanwhile (a versioned write matched nothing)")
        for unit in batch:
            unit.outbox_id = outbox_id

    def _namespace(self, collection: str) -> str:
        return f"{self._db.name}.{collection}"

    async def _delete_published(self) -> None:
        ids, self._published = self._published, []
        if ids:
            await self._outbox.delete_many({"_id": {"$in": ids}})

    async def _bulk(self, name: str, writes: list[Write], session: Any) -> None:
        operations = [w.operation for w in writes]
        result = await translate_errors(
            lambda: self._db[name].bulk_write(operations, ordered=True, session=session)
        )
        expected = sum(1 for w in writes if w.must_match)
        if expected and result.matched_count + result.upserted_count < expected:
            raise ConflictError(f"the object changed meanwhile (a versioned write to {name} matched nothing)")

    # -- publishing -----------------------------------------------------------
    async def _publish_committed(self, committed: list[_Unit]) -> None:
        outbox_ids = {unit.outbox_id for unit in committed if unit.outbox_id}
        try:
            await self._publish_and_forget(committed, outbox_ids)
        finally:
            self._in_flight.difference_update(outbox_ids)

    async def _publish_and_forget(self, committed: list[_Unit], outbox_ids: set[str]) -> None:
        events = [e for unit in committed for e in unit.events]
        if not events:
            return
        try:
            await asyncio.gather(*(self._publish(e) for e in events))
        except Exception:
            # The events stay in the outbox; relay_outbox() publishes them later.
            logger.warning("event publish failed; left in outbox", exc_info=True)
            return
        self._published.extend(outbox_ids)  # deleted by the next commit, or the relay

    async def relay_outbox(self, older_than: timedelta = timedelta(seconds=2)) -> int:
        """Publish events a crash or an outage left behind; returns how many.

        A second publish of an event already in the stream is dropped there
        (same `Nats-Msg-Id` within the duplicate window), and consumers ignore
        repeats beyond it.
        """
        await self._delete_published()
        cutoff = datetime.now(UTC) - older_than
        cursor = self._outbox.find({"created_at": {"$lt": cutoff}}).sort("created_at", 1)
        relayed = 0
        async for doc in cursor:
            if doc["_id"] in self._in_flight or doc["_id"] in self._published:
                continue  # the commit loop is publishing it, or has, meanwhile
            for body in doc.get("events") or [doc["event"]]:  # "event": one-event documents
                await self._publish(Event.model_validate(body))
                relayed += 1
            await self._outbox.delete_one({"_id": doc["_id"]})
        if relayed:
            logger.warning("relayed events from the outbox", extra={"count": relayed})
        return relayed

    async def run_relay(self, every: float = 5.0) -> None:
        """Relay leftovers forever, every `every` seconds."""
        while True:
            try:
                await self.relay_outbox()
            except Exception:
                logger.warning("outbox relay failed; will retry", exc_info=True)
            await asyncio.sleep(every)


def _outbox_document(batch: list[_Unit]) -> tuple[str | None, dict[str, Any] | None]:
    """The batch's one outbox document and its id, or (None, None) without events."""
    events = [e.dump() for unit in batch for e in unit.events]
    if not events:
        return None, None
    outbox_id = f"OB{uuid.uuid4().hex}"
    return outbox_id, {"_id": outbox_id, "created_at": datetime.now(UTC), "events": events}


def _in_namespace(operation: Operation, namespace: str) -> Operation:
    """A copy of a collection-level write model addressed to `namespace`.

    NOTE: pymongo's write models take the namespace only in their constructors;
    the callers build them without one (they are also used per collection), so
    the copy sets the same slot the constructor would.
    """
    addressed = copy.copy(operation)
    addressed._namespace = namespace
    return addressed
