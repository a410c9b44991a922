"""Averaged rate limits with a controlled clock: counts, windows, shares, merging."""

from __future__ import annotations

import random

import pytest

from services.gateway.rate_limit import (
    Budget,
    Decision,
    RateLimiter,
    budget_for,
)
from shared.errors import RateLimitedError

AC = "AC" + "a" * 32
AC2 = "AC" + "b" * 32
WS = "WS" + "c" * 32
WS2 = "WS" + "d" * 32


class Clock:
    """Wall-clock seconds kept as whole microseconds, so steps add up exactly."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self._micros = round(now * 1_000_000)

    @property
    def now(self) -> float:
        return self._micros / 1_000_000

    @now.setter
    def now(self, value: float) -> None:
        self._micros = round(value * 1_000_000)

    def __call__(self) -> float:
        return self.now


def _admit(limiter: RateLimiter, count: int, workspace: str | None = None) -> int:
    return sum(limiter.check(AC, workspace).allowed for _ in range(count))


def test_burst_of_ten_times_the_limit_passes_then_refuses():
    clock = Clock()
    limiter = RateLimiter(2, clock=clock)

    assert _admit(limiter, 20) == 20
    refused = limiter.check(AC)

    assert not refused.allowed and refused.remaining == 0
    assert refused.retry_after == 11  # counted for 10.1 s at most, whole seconds up


def test_requests_leave_the_window_after_ten_seconds_and_a_bucket():
    clock = Clock()
    limiter = RateLimiter(2, clock=clock)
    _admit(limiter, 20)

    clock.now += 10.0
    assert not limiter.check(AC).allowed
    clock.now += 0.05  # still inside the 101st bucket
    assert not limiter.check(AC).allowed
    clock.now += 0.05
    assert _admit(limiter, 25) == 20


def test_sliding_window_frees_only_what_expired():
    clock = Clock()
    limiter = RateLimiter(2, clock=clock)
    assert _admit(limiter, 10) == 10
    clock.now += 5
    assert _admit(limiter, 15) == 10

    clock.now += 5.1  # the first ten are out, the second ten still in
    assert _admit(limiter, 15) == 10
    refused = limiter.check(AC)
    assert refused.retry_after == 5


def test_steady_rate_just_below_the_limit_is_never_refused():
    clock = Clock()
    limiter = RateLimiter(5, clock=clock)

    admitted = 0
    for _ in range(300):  # a minute at 1% below 5 per second
        admitted += limiter.check(AC).allowed
        clock.now += 0.202
        limiter.report()

    assert admitted == 300


def test_steady_rate_exactly_at_the_limit_is_sometimes_refused():
    # NOTE: a request counts for up to 10.1 s (whole 100 ms buckets), so a client
    # pacing at exactly the limit sees about one refusal in fifty.
    clock = Clock()
    limiter = RateLimiter(5, clock=clock)

    admitted = 0
    for _ in range(300):
        admitted += limiter.check(AC).allowed
        clock.now += 0.2

    assert 290 <= admitted < 300


def test_no_sliding_window_holds_more_than_ten_times_the_limit():
    clock = Clock()
    limiter = RateLimiter(3, clock=clock)
    rng = random.Random(7)
    times = []
    for _ in range(3000):
        clock.now += rng.expovariate(8.0)  # above the limit on average, bursty
        if limiter.check(AC).allowed:
            times.append(clock.now)
        if rng.random() < 0.05:
            limiter.report()

    for i, start in enumerate(times):
        inside = sum(1 for t in times[i:] if t <= start + 10)
        assert inside <= 30


def test_refused_requests_are_not_counted():
    clock = Clock()
    limiter = RateLimiter(1, clock=clock)
    _admit(limiter, 10)
    for _ in range(50):
        limiter.check(AC)

    clock.now += 10.1
    assert _admit(limiter, 11) == 10


def test_decision_headers_and_remaining():
    limiter = RateLimiter(3, clock=Clock())

    first = limiter.check(AC)

    assert first == Decision(True, 3, 29, 0, "Account-Default;window=10")
    assert first.headers() == {
        "X-Rate-Limit-Limit": "3",
        "X-Rate-Limit-Remaining": "29",
        "X-Rate-Limit-Config": "Account-Default;window=10",
    }
    _admit(limiter, 29)
    refused = limiter.check(AC)
    assert refused.headers()["Retry-After"] == "11"
    assert refused.headers()["X-Rate-Limit-Remaining"] == "0"


def test_enforce_raises_rate_limited_with_retry_after():
    limiter = RateLimiter(1, clock=Clock())
    _admit(limiter, 10)

    with pytest.raises(RateLimitedError) as caught:
        limiter.check(AC).enforce()

    assert caught.value.retry_after == 11
    RateLimiter(1, clock=Clock()).check(AC).enforce()


def test_accounts_have_separate_budgets():
    limiter = RateLimiter(1, clock=Clock())
    _admit(limiter, 10)

    assert not limiter.check(AC).allowed
    assert limiter.check(AC2).allowed


def test_workspace_override_has_its_own_budget_apart_from_the_account():
    limiter = RateLimiter(1, {WS: 2}, clock=Clock())

    assert _admit(limiter, 30, WS) == 20
    decision = limiter.check(AC, WS)
    assert decision.config == "Workspace-Override;window=10" and decision.limit == 2
    assert _admit(limiter, 15, WS2) == 10  # the account's own budget, untouched
    assert _admit(limiter, 5, None) == 0


def test_account_override_and_off_switch():
    assert budget_for(AC, None, 100, {AC: 7}) == Budget(AC, 7, "Account", False)
    assert budget_for(AC, WS, 100, {}) == Budget(AC, 100, "Account", True)
    assert budget_for(AC, WS, 0, {}) is None
    assert budget_for(AC, WS, 0, {WS: 4}) == Budget(WS, 4, "Workspace", False)

    limiter = RateLimiter(0, clock=Clock())
    decisions = [limiter.check(AC, WS) for _ in range(10_000)]
    assert all(d.allowed for d in decisions) and decisions[0].headers() == {}
    # Off with no overrides: nothing to share, so replicas send no reports.
    assert not limiter.enabled
    assert RateLimiter(0, {WS: 4}).enabled and RateLimiter(5).enabled


# -- several replicas ------------------------------------------------------------


def _replicas(count: int, limit: int, clock: Clock) -> list[RateLimiter]:
    replicas = [
        RateLimiter(limit, replica_id=f"r{i}", clock=clock) for i in range(count)
    ]
    _sync(replicas)
    return replicas


def _sync(replicas: list[RateLimiter]) -> None:
    reports = [r.report() for r in replicas]
    for replica in replicas:
        for report in reports:
            replica.merge(report)


def test_replicas_see_each_others_counts_after_a_report():
    clock = Clock()
    a, b = _replicas(2, 2, clock)
    assert _admit(a, 10) == 10

    _sync([a, b])

    decision = b.check(AC)
    assert decision.allowed and decision.remaining == 9


def test_replicas_hit_at_once_split_what_is_left():
    clock = Clock()
    replicas = _replicas(3, 10, clock)  # capacity 100 shared by three

    admitted = [_admit(r, 100) for r in replicas]

    assert admitted == [34, 33, 33]


def test_combined_count_never_exceeds_capacity_under_interleaved_load():
    clock = Clock()
    replicas = _replicas(3, 5, clock)
    rng = random.Random(11)
    admitted = 0
    for step in range(2000):
        replica = rng.choice(replicas)
        admitted += replica.check(AC).allowed
        if step % 17 == 0:
            _sync(replicas)
        clock.now += 0.001  # two seconds in all: nothing leaves the window

    assert admitted == 50


def test_single_busy_replica_reaches_the_whole_budget_over_a_few_reports():
    clock = Clock()
    a, b = _replicas(2, 10, clock)

    total = 0
    for _ in range(12):
        total += _admit(a, 100)
        _sync([a, b])

    assert total == 100


def test_merge_is_idempotent_and_late_reports_change_nothing():
    clock = Clock()
    a, b = _replicas(2, 2, clock)
    _admit(a, 5)
    report = a.report()

    b.merge(report)
    b.merge(report)
    b.merge(
        {
            "replica": "r0",
            "full": False,
            "counts": {AC: [[k, 1] for k, _ in report["counts"][AC]]},
        }
    )

    assert b.check(AC).remaining == 20 - 5 - 1


def test_new_peer_gets_a_full_report():
    clock = Clock()
    a = RateLimiter(2, replica_id="r0", clock=clock)
    a.report()  # the first report is full; the next ones carry changes only
    _admit(a, 4)
    a.report()
    assert a.report()["counts"] == {}

    late = RateLimiter(2, replica_id="r9", clock=clock)
    a.merge(late.report())
    full = a.report()

    assert full["full"] and sum(n for _, n in full["counts"][AC]) == 4


def test_silent_peer_stops_counting_as_live_but_its_counts_stay_until_they_expire():
    clock = Clock()
    a, b = _replicas(2, 1, clock)
    assert _admit(b, 6) == 5  # its share while a is alive
    _sync([a, b])

    clock.now += 1.5
    assert a.live_replicas() == ["r0"]
    assert _admit(a, 10) == 5

    clock.now += 10.1
    a.report()
    assert _admit(a, 20) == 10
