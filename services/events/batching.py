"""Gather events that arrive one by one into batches for the store.

The pull consumer hands each fetched message to its own handler call, and those
calls run concurrently. Each call puts its event here and waits; one loop takes
everything waiting (in arrival order) and handles it as one batch, so 64 fetched
events cost one `insert_many` instead of 64 inserts. A failed batch fails every
waiting call, so every message in it is redelivered.

(FastStream's own batch mode was measured to hold a lone event for up to the
pull timeout, about 0.5 s at the median; this adds no wait.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

Body = dict[str, Any]


class EventBatcher:
    """`await batcher.submit(body)` returns once the batch holding `body` is handled."""

    def __init__(
        self, handle: Callable[[list[Body]], Awaitable[None]], max_batch: int = 256
    ) -> None:
        self._handle = handle
        self._max_batch = max_batch
        self._queue: asyncio.Queue[tuple[Body, asyncio.Future[None]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def submit(self, body: Body) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="event-batcher")
        done = asyncio.get_running_loop().create_future()
        await self._queue.put((body, done))
        await done

    async def stop(self, grace: float = 5.0) -> None:
        """Finish the events already waiting (for at most `grace` s), then stop."""
        if self._task is None:
            return
        try:
            async with asyncio.timeout(grace):
                await self._queue.join()
        except TimeoutError:
            pass
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            # Let handler calls started together by the same fetch join this batch.
            await asyncio.sleep(0)
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._handle_batch(batch)
            for _ in batch:
                self._queue.task_done()

    async def _handle_batch(
        self, batch: list[tuple[Body, asyncio.Future[None]]]
    ) -> None:
        try:
            await self._handle([body for body, _ in batch])
        except Exception as exc:  # noqa: BLE001 - each waiting call re-raises it
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc)
            return
        for _, done in batch:
            if not done.done():
                done.set_result(None)
