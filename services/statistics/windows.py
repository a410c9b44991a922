"""The time window of a cumulative query, and the buckets that cover it.

A query names its window with `minutes` (the last N minutes, default 15) or with
`start_date`/`end_date` (ISO 8601; they win over `minutes`; a missing end is now).
Counters are kept per minute and per hour (see `aggregates`), so a window is read
as whole hours in the middle and whole minutes at the edges:

    10:58:30 .. 13:02:10  ->  minutes 10:58, 10:59 | hours 11:00, 12:00
                              | minutes 13:00 .. 13:02

NOTE: the resolution is one minute. The minute holding the start and the minute
holding the end count whole, so an event at 10:58:05 is inside the window above.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.errors import DomainValidationError

HISTORY = timedelta(days=30)
DEFAULT_MINUTES = 15
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Window:
    """A closed interval [start, end] of time, both tz-aware UTC."""

    start: datetime
    end: datetime

    @property
    def start_time(self) -> str:
        return format_time(self.start)

    @property
    def end_time(self) -> str:
        return format_time(self.end)


@dataclass(frozen=True)
class BucketRange:
    """Buckets of one granularity ("m" or "h") with `start <= t < stop`."""

    granularity: str
    start: datetime
    stop: datetime


def format_time(moment: datetime) -> str:
    """ISO 8601 in UTC with second precision, as Twilio prints it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any, param: str) -> datetime:
    """An ISO 8601 date or date-time; naive values count as UTC."""
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise DomainValidationError(
                f"{param} must be an ISO 8601 date, got {value!r}", param=param
            ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # an offset that moves it outside the calendar
        raise DomainValidationError(
            f"{param} must be an ISO 8601 date, got {value!r}", param=param
        ) from None


def parse_window(params: dict[str, Any], now: datetime) -> Window:
    """The window a query asks for; DomainValidationError when it is not servable."""
    end = now
    if params.get("end_date") not in (None, ""):
        end = parse_time(params["end_date"], "EndDate")
        if end.year >= 9999:  # the buckets after it would fall outside the calendar
            raise DomainValidationError(
                f"EndDate must be before the year 9999, got {params['end_date']!r}",
                param="EndDate",
            )
    if params.get("start_date") not in (None, ""):
        start = parse_time(params["start_date"], "StartDate")
    else:
        minutes = _minutes(params.get("minutes"))
        try:
            start = end - timedelta(minutes=minutes)
        except OverflowError:  # EndDate near year 1, or Minutes beyond any calendar
            raise DomainValidationError(
                f"statistics older than 30 days are not available; the window "
                f"ends {format_time(end)!r} and spans {minutes} minutes",
                param="Minutes" if params.get("end_date") in (None, "") else "EndDate",
            ) from None
    if start > end:
        raise DomainValidationError(
            f"StartDate {format_time(start)!r} is after EndDate {format_time(end)!r}",
            param="StartDate",
        )
    if start < now - HISTORY:
        raise DomainValidationError(
            f"statistics older than 30 days are not available; StartDate was "
            f"{format_time(start)!r}",
            param="StartDate",
        )
    return Window(start, end)


def _minutes(value: Any) -> int:
    if value in (None, ""):
        return DEFAULT_MINUTES
    try:
        minutes = int(value)
    except (TypeError, ValueError):
        raise DomainValidationError(
            f"Minutes must be a whole number, got {value!r}", param="Minutes"
        ) from None
    if minutes < 1:
        raise DomainValidationError(
            f"Minutes must be positive, got {value!r}", param="Minutes"
        )
    return minutes


def floor_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def bucket_ranges(window: Window) -> list[BucketRange]:
    """The minute and hour buckets that cover `window`, without overlap."""
    first = floor_minute(window.start)
    stop = floor_minute(window.end) + MINUTE
    hours_start = floor_hour(first)
    if hours_start < first:
        hours_start += HOUR
    hours_stop = floor_hour(stop)
    if hours_start >= hours_stop:
        return [BucketRange("m", first, stop)]
    ranges = [BucketRange("h", hours_start, hours_stop)]
    if first < hours_start:
        ranges.insert(0, BucketRange("m", first, hours_start))
    if hours_stop < stop:
        ranges.append(BucketRange("m", hours_stop, stop))
    return ranges
