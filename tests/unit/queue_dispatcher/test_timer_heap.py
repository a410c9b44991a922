"""Cancelled timers do not pile up in the shared timer heap (task TTLs are long)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.timers import Timers

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def test_cancelled_timers_are_compacted_and_live_ones_still_fire():
    fired: list[int] = []

    async def on_due(key: int) -> None:
        fired.append(key)

    timers: Timers[int] = Timers(on_due, clock=lambda: T0)
    for key in range(10_000):
        timers.schedule(key, T0 + timedelta(days=1, seconds=key))
    for key in range(10_000):
        if key % 100:
            timers.cancel(key)

    assert len(timers) == 100
    assert len(timers._heap) <= 2 * len(timers) + 1024
    assert await timers.fire_due(T0 + timedelta(days=2)) == 100
    assert fired == list(range(0, 10_000, 100))
