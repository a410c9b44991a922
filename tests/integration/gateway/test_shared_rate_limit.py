"""Two gateway rate limiters in one process share one budget over the real NATS."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from services.gateway.identity_settings import IdentitySettings
from services.gateway.rate_limit import RateLimiter, SharedRateLimiter
from shared.runtime import ServiceRuntime
from shared.settings import load
from shared.sids import SidPrefix, new_sid

pytestmark = pytest.mark.integration

LIMIT = 5  # per second: 50 requests per 10-second window, shared


async def _eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached before the deadline"
        await asyncio.sleep(0.01)


@pytest.fixture
async def replicas(isolated_env):
    settings = load(IdentitySettings, isolated_env)
    runtimes, limiters = [], []
    for name in ("a", "b"):
        runtime = ServiceRuntime("gateway", settings)
        limiters.append(
            SharedRateLimiter(
                runtime, RateLimiter(LIMIT, replica_id=name), interval=0.05
            )
        )
        runtimes.append(runtime)
    for runtime, limiter in zip(runtimes, limiters, strict=True):
        await runtime.start()
        await limiter.start()
    await _eventually(
        lambda: all(len(x.limiter.live_replicas()) == 2 for x in limiters)
    )
    yield limiters
    for runtime in runtimes:
        await runtime.stop()


async def test_simultaneous_burst_on_two_replicas_stays_within_the_shared_budget(
    replicas,
):
    a, b = replicas
    account_sid = new_sid(SidPrefix.ACCOUNT)

    # No await between checks: neither replica hears the other during the burst.
    admitted = sum(r.check(account_sid).allowed for _ in range(200) for r in (a, b))

    assert admitted == LIMIT * 10
    await _eventually(lambda: a.limiter.counted(account_sid) == LIMIT * 10)
    await _eventually(lambda: b.limiter.counted(account_sid) == LIMIT * 10)
    refused = b.check(account_sid)
    assert not refused.allowed and refused.remaining == 0 and refused.retry_after >= 1


async def test_one_busy_replica_gets_the_whole_budget_and_the_other_sees_it(replicas):
    a, b = replicas
    account_sid = new_sid(SidPrefix.ACCOUNT)
    admitted = 0
    deadline = time.monotonic() + 5

    while admitted < LIMIT * 10 and time.monotonic() < deadline:
        if a.check(account_sid).allowed:
            admitted += 1
        else:
            await asyncio.sleep(0.01)  # this replica's share is spent until it reports

    assert admitted == LIMIT * 10
    await _eventually(lambda: b.limiter.counted(account_sid) == LIMIT * 10)
    assert not b.check(account_sid).allowed
    assert not a.check(account_sid).allowed
    assert a.limiter.counted(account_sid) == LIMIT * 10
