"""Event handling of the statistics service: in order, each event counted once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pymongo.errors import AutoReconnect
from tally_fakes import AT, QUEUE, WS, FakeStore, created

from services.statistics import handlers as handlers_module
from services.statistics.handlers import StatisticsHandlers
from services.statistics.realtime import RealtimeState
from services.statistics.tally import Tally
from shared.events import make_event


class FakeConfig:
    """A configuration view whose first `failures` loads raise `error`."""

    def __init__(self, failures: int = 0, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or AutoReconnect("the store did not answer")
        self.loads = 0

    def on_change(self, _listener) -> None:
        pass

    def cached(self, _workspace_sid: str) -> None:
        return None

    async def get(self, _workspace_sid: str) -> None:
        self.loads += 1
        if self.loads <= self.failures:
            raise self.error


def handlers_of(config: FakeConfig) -> tuple[StatisticsHandlers, FakeStore]:
    store = FakeStore()
    tally = Tally(store)  # type: ignore[arg-type]
    tally.resume(0)
    clock = lambda: datetime.now(UTC)
    handlers = StatisticsHandlers(RealtimeState(), store, config, clock, tally)  # type: ignore[arg-type]
    return handlers, store


@pytest.fixture(autouse=True)
def no_back_off(monkeypatch):
    monkeypatch.setattr(handlers_module, "_RETRY_DELAYS", (0.0, 0.0))


async def test_an_unreachable_store_holds_the_event_until_it_answers():
    config = FakeConfig(failures=3)
    handlers, store = handlers_of(config)

    await handlers.on_events([(1, created(1).model_dump())])
    await handlers.flush()

    assert config.loads == 4
    assert store.records == [(0, 1, 1)]


async def test_an_event_that_cannot_be_followed_is_counted_all_the_same():
    handlers, store = handlers_of(FakeConfig(failures=1, error=RuntimeError("a bug")))

    await handlers.on_events([(1, created(1).model_dump())])
    await handlers.flush()

    assert store.records == [(0, 1, 1)]


async def test_repeats_by_sequence_or_sid_and_bad_envelopes_are_passed_over():
    handlers, store = handlers_of(FakeConfig())
    first, second = created(1).model_dump(), created(2).model_dump()

    await handlers.on_events([(1, first), (2, second)])
    await handlers.on_events([(2, second), (3, first), (4, {"not": "an event"})])
    await handlers.flush()

    assert store.records == [(0, 4, 2)]


async def test_an_event_whose_figures_cannot_be_computed_raises_nothing():
    """Counting is by sequence: a raise would make the consumer redeliver events one
    by one out of order. A creation date far outside the calendar is such a case."""
    handlers, store = handlers_of(FakeConfig())
    absurd = make_event(
        "task.canceled",
        account_sid="AC" + "a" * 32,
        workspace_sid=WS,
        resource_type="task",
        resource_sid="WT" + "9" * 32,
        at=AT,
        data={"task_queue_sid": QUEUE, "task_date_created": "9" * 20},
    )

    await handlers.on_events([(1, absurd.model_dump()), (2, created(2).model_dump())])
    await handlers.flush()

    assert store.records == [(0, 2, 1)]
