"""The tally: counts kept in memory, flushed in one commit with the progress."""

from __future__ import annotations

import asyncio

import pytest
from tally_fakes import FakeStore, created

from services.statistics.tally import Tally
from shared.errors import ConflictError, UnavailableError


def tally_of(store: FakeStore, **options) -> Tally:
    tally = Tally(store, **options)  # type: ignore[arg-type]
    tally.resume(store.stored_progress)
    return tally


async def test_one_flush_writes_every_count_merged_with_the_progress():
    store = FakeStore(progress=7)
    tally = tally_of(store)
    for sequence in (8, 9, 11):
        tally.add(sequence, created(sequence))

    await tally.flush()
    await tally.flush()  # nothing new: no write

    assert store.records == [(7, 11, 3)]


async def test_counted_by_sequence_and_recently_by_sid():
    tally = tally_of(FakeStore(progress=7))
    tally.add(9, created(1))
    tally.pass_over(10)

    assert tally.is_counted(7) and tally.is_counted(10)
    assert not tally.is_counted(11)
    assert tally.is_counted(12, created(1).sid)  # the same event published again
    assert tally.counted_all([created(1).sid])
    assert not tally.counted_all([created(1).sid, created(2).sid])


async def test_only_the_most_recent_sids_are_remembered():
    tally = tally_of(FakeStore(), recent_sids=2)
    for n in (1, 2, 3):
        tally.add(n, created(n))

    assert not tally.is_counted(10, created(1).sid)
    assert tally.is_counted(10, created(3).sid)


async def test_a_failed_flush_is_retried_alone_before_newer_counts():
    store = FakeStore()
    tally = tally_of(store)
    tally.add(1, created(1))
    store.fail_next = UnavailableError("the store did not answer")
    with pytest.raises(UnavailableError):
        await tally.flush()
    tally.add(2, created(2))
    tally.add(3, created(3))

    await tally.flush()

    assert store.records == [(0, 1, 1), (1, 3, 2)]


async def test_a_flush_committed_despite_a_lost_answer_is_not_applied_twice():
    store = FakeStore()
    tally = tally_of(store)
    tally.add(1, created(1))
    store.lose_answer_of_next = True
    with pytest.raises(UnavailableError):
        await tally.flush()
    tally.add(2, created(2))

    await tally.flush()

    assert store.records == [(0, 1, 1), (1, 2, 1)]


async def test_a_progress_moved_by_someone_else_is_an_error():
    store = FakeStore()
    tally = tally_of(store)
    tally.add(1, created(1))
    store.stored_progress = 5

    with pytest.raises(ConflictError):
        await tally.flush()
    assert store.records == []


async def test_full_once_enough_events_wait():
    tally = tally_of(FakeStore(), max_pending=2)
    tally.add(1, created(1))
    assert not tally.full
    tally.add(2, created(2))
    assert tally.full
    await tally.flush()
    assert not tally.full


async def test_flushes_once_per_interval_and_survives_a_failed_one():
    store = FakeStore()
    tally = tally_of(store)
    ticks: asyncio.Queue[float] = asyncio.Queue()
    slept = asyncio.Event()

    async def sleep(seconds: float) -> None:
        slept.set()
        await ticks.get()

    async def tick() -> None:
        """Let one interval pass and wait until the loop sleeps again."""
        slept.clear()
        ticks.put_nowait(1.0)
        await asyncio.wait_for(slept.wait(), 5)

    loop = asyncio.create_task(tally.flush_periodically(1.0, sleep))
    try:
        await asyncio.wait_for(slept.wait(), 5)
        tally.add(1, created(1))
        assert store.records == []
        await tick()
        assert store.records == [(0, 1, 1)]
        tally.add(2, created(2))
        store.fail_next = UnavailableError("the store did not answer")
        await tick()
        assert store.records == [(0, 1, 1)]
        await tick()
        assert store.records == [(0, 1, 1), (1, 2, 1)]
    finally:
        loop.cancel()
