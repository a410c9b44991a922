"""Query windows: parameters, the 30-day limit, and the buckets that cover a window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.statistics.windows import BucketRange, Window, bucket_ranges, parse_window
from shared.errors import DomainValidationError

NOW = datetime(2026, 5, 10, 12, 30, 15, tzinfo=UTC)


def at(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2026, 5, 10, hour, minute, second, tzinfo=UTC)


def test_parse_window_defaults_to_last_15_minutes():
    window = parse_window({}, NOW)

    assert window == Window(NOW - timedelta(minutes=15), NOW)
    assert window.start_time == "2026-05-10T12:15:15Z"
    assert window.end_time == "2026-05-10T12:30:15Z"


def test_parse_window_dates_win_over_minutes():
    window = parse_window(
        {
            "minutes": 5,
            "start_date": "2026-05-10T10:00:00Z",
            "end_date": "2026-05-10T11:00:00",
        },
        NOW,
    )

    assert window == Window(at(10, 0), at(11, 0))


def test_parse_window_start_date_alone_ends_now():
    assert parse_window({"start_date": "2026-05-10"}, NOW) == Window(at(0, 0), NOW)


def test_parse_window_minutes_end_at_end_date():
    window = parse_window(
        {"minutes": "30", "end_date": "2026-05-10T11:00:00+00:00"}, NOW
    )

    assert window == Window(at(10, 30), at(11, 0))


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"start_date": "2026-04-10T12:30:14Z"}, "StartDate"),
        ({"minutes": 43201}, "StartDate"),
        (
            {"start_date": "2026-05-10T12:00:00Z", "end_date": "2026-05-10T11:00:00Z"},
            "StartDate",
        ),
        ({"start_date": "yesterday"}, "StartDate"),
        ({"end_date": "12/05/2026"}, "EndDate"),
        ({"minutes": "ten"}, "Minutes"),
        ({"minutes": 0}, "Minutes"),
        ({"end_date": "0001-01-01T00:00:00Z"}, "EndDate"),
        ({"minutes": 10**12}, "Minutes"),
        ({"end_date": "0001-01-01T00:00:00+05:00"}, "EndDate"),
        ({"end_date": "9999-12-31T23:59:59Z"}, "EndDate"),
    ],
    ids=[
        "older-than-30-days",
        "minutes-beyond-30-days",
        "start-after-end",
        "bad-start",
        "bad-end",
        "minutes-not-a-number",
        "minutes-zero",
        "end-at-the-start-of-the-calendar",
        "minutes-beyond-the-calendar",
        "offset-beyond-the-calendar",
        "end-at-the-end-of-the-calendar",
    ],
)
def test_parse_window_refuses(params, param):
    with pytest.raises(DomainValidationError) as caught:
        parse_window(params, NOW)

    assert caught.value.param == param


def test_parse_window_accepts_exactly_30_days():
    window = parse_window({"minutes": 43200}, NOW)

    assert window.start == NOW - timedelta(days=30)


def test_bucket_ranges_use_hours_inside_and_minutes_at_the_edges():
    ranges = bucket_ranges(Window(at(10, 58, 30), at(13, 2, 10)))

    assert ranges == [
        BucketRange("m", at(10, 58), at(11, 0)),
        BucketRange("h", at(11, 0), at(13, 0)),
        BucketRange("m", at(13, 0), at(13, 3)),
    ]


def test_bucket_ranges_of_a_short_window_are_minutes():
    assert bucket_ranges(Window(at(10, 5, 59), at(10, 20))) == [
        BucketRange("m", at(10, 5), at(10, 21))
    ]


def test_bucket_ranges_of_whole_hours_have_no_minute_edges_but_the_end_minute():
    assert bucket_ranges(Window(at(10, 0), at(11, 59, 59))) == [
        BucketRange("h", at(10, 0), at(12, 0))
    ]
    assert bucket_ranges(Window(at(10, 0), at(12, 0))) == [
        BucketRange("h", at(10, 0), at(12, 0)),
        BucketRange("m", at(12, 0), at(12, 1)),
    ]


def test_bucket_ranges_within_one_hour_crossing_no_boundary_are_minutes():
    assert bucket_ranges(Window(at(10, 30), at(11, 29))) == [
        BucketRange("m", at(10, 30), at(11, 30))
    ]
