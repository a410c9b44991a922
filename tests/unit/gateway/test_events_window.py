"""The Events API's time window: StartDate/EndDate inclusive, to the second as shown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.gateway.params import Params
from services.gateway.routes.events import _window

NOW = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)


def test_an_end_date_given_to_the_second_takes_in_that_whole_second():
    start, end = _window(Params([("StartDate", "2026-12-04T09:19:10Z"),
                                 ("EndDate", "2026-12-04T09:19:10Z")]), NOW)
    assert start == datetime(2026, 12, 4, 9, 19, 10, tzinfo=UTC)
    assert end == start + timedelta(milliseconds=999)


def test_an_end_date_with_milliseconds_is_taken_as_it_is():
    _, end = _window(Params([("EndDate", "2026-12-04T09:19:10.579Z")]), NOW)
    assert end == datetime(2026, 12, 4, 9, 19, 10, 579000, tzinfo=UTC)
