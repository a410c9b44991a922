"""Events handled concurrently are stored as one batch."""

from __future__ import annotations

import asyncio

import pytest

from services.events.batching import EventBatcher


async def test_concurrent_submissions_form_one_batch_in_order():
    batches: list[list[dict]] = []

    async def handle(bodies):
        batches.append(bodies)

    batcher = EventBatcher(handle)

    await asyncio.gather(*(batcher.submit({"n": n}) for n in range(10)))

    assert batches == [[{"n": n} for n in range(10)]]
    await batcher.stop()


async def test_failed_batch_fails_every_submission():
    async def handle(bodies):
        raise RuntimeError("store down")

    batcher = EventBatcher(handle)

    results = await asyncio.gather(
        *(batcher.submit({"n": n}) for n in range(3)), return_exceptions=True
    )

    assert [type(r) for r in results] == [RuntimeError] * 3
    await batcher.stop()


async def test_batches_are_bounded():
    sizes: list[int] = []

    async def handle(bodies):
        sizes.append(len(bodies))

    batcher = EventBatcher(handle, max_batch=4)

    await asyncio.gather(*(batcher.submit({"n": n}) for n in range(10)))

    assert sizes == [4, 4, 2]
    await batcher.stop()


async def test_batcher_recovers_after_a_failed_batch():
    calls = 0

    async def handle(bodies):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("once")

    batcher = EventBatcher(handle)

    with pytest.raises(RuntimeError):
        await batcher.submit({"n": 1})
    await batcher.submit({"n": 2})

    assert calls == 2
    await batcher.stop()
