"""Shared rate limits when replicas' reports do not arrive at the same moment.

The two-process integration test found 53 of 50 admitted: one replica started a
fresh share on its report while the other still spent a share granted before
the first one's admissions were known. These reproduce it with a fixed clock.
"""

from __future__ import annotations

import random

from services.gateway.rate_limit import RateLimiter

AC = "AC" + "a" * 32


class Clock:
    def __init__(self) -> None:
        self.micros = 1_700_000_000 * 1_000_000

    def __call__(self) -> float:
        return self.micros / 1_000_000

    def advance(self, seconds: float) -> None:
        self.micros += round(seconds * 1_000_000)


def _admit(limiter: RateLimiter, count: int) -> int:
    return sum(limiter.check(AC).allowed for _ in range(count))


def _pair(clock: Clock) -> tuple[RateLimiter, RateLimiter]:
    a = RateLimiter(5, replica_id="a", clock=clock)
    b = RateLimiter(5, replica_id="b", clock=clock)
    reports = [a.report(), b.report()]
    for limiter in (a, b):
        for report in reports:
            limiter.merge(report)
    return a, b


def test_a_fresh_share_does_not_reuse_what_an_unreported_peer_spent():
    clock = Clock()
    a, b = _pair(clock)  # capacity 50, two replicas: 25 each per interval
    assert _admit(a, 25) == 25
    assert _admit(b, 25) == 25

    # a reports first; b has not reported its 25 yet when a asks again.
    clock.advance(0.1)
    b.merge(a.report())
    admitted_by_a_before_b_reports = _admit(a, 50)
    b_report = b.report()
    a.merge(b_report)
    admitted_after = _admit(a, 50) + _admit(b, 50)

    assert 50 + admitted_by_a_before_b_reports + admitted_after == 50


def test_interleaved_load_with_reports_a_little_apart_stays_within_capacity():
    clock = Clock()
    replicas = list(_pair(clock))
    rng = random.Random(7)
    admitted = 0
    in_flight: list[tuple[int, dict]] = []  # (deliver at step, report)
    b_late = 0
    for step in range(3000):
        replica = rng.choice(replicas)
        admitted += replica.check(AC).allowed
        # Both report every 100 steps (on the clock's 100 ms boundaries), "b" up
        # to 3 steps late; a report reaches the other replica 1 to 5 steps later.
        if step % 100 == 0:
            b_late = rng.randint(0, 3)
            in_flight.append((step + rng.randint(1, 5), replicas[0].report()))
        if step % 100 == b_late:
            in_flight.append((step + rng.randint(1, 5), replicas[1].report()))
        for due, report in [m for m in in_flight if m[0] <= step]:
            for limiter in replicas:
                limiter.merge(report)
            in_flight.remove((due, report))
        clock.advance(0.001)  # three seconds in all: nothing leaves the window

    assert admitted == 50


def test_a_peer_that_announced_nothing_for_a_budget_is_kept_an_even_split():
    clock = Clock()
    a, b = _pair(clock)
    clock.advance(0.1)
    a.report()  # b has not reported since: it may have spent up to half of 50

    assert _admit(a, 50) == 13  # (50 - 25) split in two, remainder to "a"
    a.merge(b.report())
    assert _admit(a, 50) == 12  # its share of the interval: (50 - 0) // 2 - 13
