"""Connection overrides in the URL fragment, and the retry decision."""

from __future__ import annotations

import pytest

from services.events.overrides import (
    ConnectionOverrides,
    Failure,
    backoff_seconds,
    failure_of_status,
    parse_retry_policy,
)

DEFAULTS = ConnectionOverrides()


def test_defaults_are_twilios():
    assert DEFAULTS == ConnectionOverrides(5_000, 15_000, 15_000, 1, frozenset({"ct"}))


def test_fragment_changes_every_setting():
    url = "https://x.test/cb#ct=2000&rt=3000&tt=4000&rc=3&rp=5xx,rt"

    overrides = DEFAULTS.apply_fragment(url)

    assert overrides == ConnectionOverrides(
        2000, 3000, 4000, 3, frozenset({"5xx", "rt"})
    )


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        ("rc=9", ConnectionOverrides(retry_count=5)),
        ("rc=x&ct=-1&tt=0", DEFAULTS),
        ("rp=bogus", DEFAULTS),
        ("ct=999999", ConnectionOverrides(connect_timeout_ms=60_000)),
        ("e=sg1&rc=0", ConnectionOverrides(retry_count=0)),
    ],
    ids=[
        "rc-clamped",
        "malformed-ignored",
        "unknown-policy",
        "timeout-clamped",
        "unknown-key",
    ],
)
def test_fragment_is_clamped_and_malformed_parts_ignored(fragment, expected):
    assert DEFAULTS.apply_fragment(f"https://x.test/cb#{fragment}") == expected


@pytest.mark.parametrize(
    ("policy", "failure", "attempts", "retry"),
    [
        ("ct", Failure.CONNECT, 1, True),
        ("ct", Failure.CONNECT, 2, False),
        ("ct", Failure.SERVER_ERROR, 1, False),
        ("ct", Failure.READ_TIMEOUT, 1, False),
        ("5xx", Failure.SERVER_ERROR, 1, True),
        ("4xx,5xx", Failure.CLIENT_ERROR, 1, True),
        ("all", Failure.READ_TIMEOUT, 1, True),
        ("all", Failure.OTHER, 1, True),
    ],
)
def test_should_retry(policy, failure, attempts, retry):
    overrides = ConnectionOverrides(
        retry_policy=parse_retry_policy(policy), retry_count=1
    )

    assert overrides.should_retry(failure, attempts) is retry


def test_retry_count_bounds_the_attempts():
    overrides = ConnectionOverrides(retry_count=3, retry_policy=frozenset({"5xx"}))

    decisions = [overrides.should_retry(Failure.SERVER_ERROR, n) for n in range(1, 6)]

    assert decisions == [True, True, True, False, False]


@pytest.mark.parametrize(
    ("status", "failure"),
    [(404, Failure.CLIENT_ERROR), (503, Failure.SERVER_ERROR), (302, Failure.OTHER)],
)
def test_failure_of_status(status, failure):
    assert failure_of_status(status) is failure


def test_backoff_doubles_within_jitter_and_is_capped():
    for attempts, nominal in [(1, 1.0), (2, 2.0), (3, 4.0), (10, 60.0)]:
        delay = backoff_seconds(attempts, base=1.0, cap=60.0)
        assert nominal / 2 <= delay <= nominal
