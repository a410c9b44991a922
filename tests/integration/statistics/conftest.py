"""Fixtures for the statistics service against real NATS and a real store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from services.statistics.app import StatisticsService, build
from services.statistics.settings import StatisticsSettings
from shared.runtime import ServiceRuntime
from shared.settings import CommonSettings, load


@pytest.fixture
async def start_statistics(isolated_env):
    """`await start(clock)` starts a statistics service; all are stopped afterwards.

    `env` adds settings, e.g. `{"STATISTICS_FLUSH_SECONDS": "3600"}` so that
    nothing is flushed but what a test flushes.
    """
    started: list[StatisticsService] = []

    async def start(
        clock: Callable[[], datetime], env: dict[str, str] | None = None
    ) -> StatisticsService:
        settings = load(
            StatisticsSettings,
            {**isolated_env, "STATISTICS_EVENT_BATCH_WAIT": "0.5", **(env or {})},
        )
        service = build(settings, clock)
        await service.runtime.start()
        started.append(service)
        return service

    async def stop(service: StatisticsService) -> None:
        await service.runtime.stop()
        started.remove(service)

    start.stop = stop  # type: ignore[attr-defined]
    yield start
    for service in reversed(started):
        await service.runtime.stop()


@pytest.fixture
async def probe(isolated_env):
    """Another service's runtime: publishes events (committer), sends queries."""
    runtime = ServiceRuntime("probe", load(CommonSettings, isolated_env))
    await runtime.start()
    yield runtime
    await runtime.stop()
