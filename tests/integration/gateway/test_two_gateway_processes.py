"""Two gateway processes against one NATS and one store share one averaged rate limit.

Both serve the same bootstrap account with TASKROUTER_RATE_LIMIT_PER_SECOND=5,
i.e. 50 requests per 10-second window for the account, whichever replica
answers. Only the gateway runs: `/v1/Workspaces` is its own configuration.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import nats
import orjson
import pytest
from pymongo import AsyncMongoClient

from shared.storage import collections as c
from shared.subjects import Subjects
from tests.integration.gateway.gateway_probe import (
    assert_twilio_error,
    gateway_env,
    new_account,
    start_gateway_process,
)

pytestmark = pytest.mark.integration

LIMIT = 5
CAPACITY = LIMIT * 10  # per 10-second window


@pytest.fixture
def two_gateways(
    isolated_env, tmp_path
) -> Iterator[tuple[dict[str, str], list[str], tuple]]:
    account_sid, auth_token = new_account()
    env = gateway_env(
        isolated_env,
        account_sid,
        auth_token,
        TASKROUTER_RATE_LIMIT_PER_SECOND=str(LIMIT),
    )
    processes, urls = [], []
    try:
        for name in ("a", "b"):
            process, url = start_gateway_process(env, tmp_path / f"gateway-{name}.log")
            processes.append(process)
            urls.append(url)
        yield env, urls, (account_sid, auth_token)
    finally:
        for process in processes:
            process.stop()


async def _wait_until_replicas_hear_each_other(
    env: dict[str, str], replicas: int
) -> None:
    """Wait until every replica has published rate counts twice after all were seen.

    A replica reports every 100 ms on a core-NATS subject; once this listener has
    seen all of them report, and each has reported once more since, each has had a
    report of every other delivered to it as well.
    """
    subject = Subjects(env["TASKROUTER_SUBJECT_PREFIX"]).rate_counts()
    connection = await nats.connect(env["NATS_URL"].split(","))
    seen: dict[str, int] = {}
    all_seen = asyncio.Event()
    after: dict[str, int] = {}
    done = asyncio.Event()

    async def on_report(message) -> None:
        replica = orjson.loads(message.data)["replica"]
        seen[replica] = seen.get(replica, 0) + 1
        if len(seen) >= replicas:
            if not all_seen.is_set():
                all_seen.set()
                return
            after[replica] = after.get(replica, 0) + 1
            if len(after) >= replicas and min(after.values()) >= 2:
                done.set()

    subscription = await connection.subscribe(subject, cb=on_report)
    try:
        await asyncio.wait_for(done.wait(), timeout=15)
    finally:
        await subscription.unsubscribe()
        await connection.close()


async def _workspace_count(env: dict[str, str]) -> int:
    client = AsyncMongoClient(env["MONGODB_URL"], tz_aware=True)
    try:
        return await client[env["MONGODB_DATABASE"]][c.WORKSPACES].count_documents({})
    finally:
        await client.close()


def _assert_refusal(response: httpx.Response, what: str) -> None:
    body = assert_twilio_error(response, 429, 20429, what)
    assert "Too many requests" in body["message"], what
    retry_after = response.headers.get("Retry-After")
    assert retry_after is not None and int(retry_after) >= 1, (
        f"{what}: {response.headers}"
    )
    assert response.headers["X-Rate-Limit-Limit"] == str(LIMIT), what
    assert int(response.headers["X-Rate-Limit-Remaining"]) >= 0, what
    assert response.headers["X-Rate-Limit-Config"] == "Account-Default;window=10", what


def _spent(response: httpx.Response) -> bool:
    """A refusal because the window is full (not only this replica's share)."""
    return (
        response.status_code == 429
        and response.headers.get("X-Rate-Limit-Remaining") == "0"
    )


async def test_alternating_requests_share_one_budget_across_two_processes(two_gateways):
    env, urls, auth = two_gateways
    await _wait_until_replicas_hear_each_other(env, replicas=2)
    sessions = [httpx.Client(base_url=url, auth=auth, timeout=15) for url in urls]
    try:
        started = time.monotonic()
        answers: list[tuple[int, httpx.Response]] = []
        spent = [False, False]
        # Alternate until both replicas refuse because the shared window is full.
        while not all(spent) and time.monotonic() - started < 8:
            replica = len(answers) % 2
            response = sessions[replica].get("/v1/Workspaces")
            answers.append((replica, response))
            spent[replica] = spent[replica] or _spent(response)
        # With the budget spent, a POST to either replica is refused and writes nothing.
        refused_posts = [
            session.post("/v1/Workspaces", data={"FriendlyName": f"refused-{n}"})
            for n, session in enumerate(sessions)
        ]
        elapsed = time.monotonic() - started
    finally:
        for session in sessions:
            session.close()

    # Everything was sent inside one window, so no admitted request left it meanwhile.
    assert elapsed < 9, f"the burst took {elapsed:.1f} s, longer than one window"
    assert all(spent), (
        f"not both replicas saw the budget spent after {len(answers)} requests"
    )
    admitted = [r for _, r in answers if 200 <= r.status_code < 300]
    by_replica = [
        sum(1 for n, r in answers if n == k and r.status_code < 300) for k in (0, 1)
    ]
    # Never more than the shared budget; and both replicas saw it full, so all of it.
    # (Before replicas kept a not-yet-reported peer's share aside, this was 53.)
    assert len(admitted) == CAPACITY, f"admitted {len(admitted)} ({by_replica})"
    assert all(n > 0 for n in by_replica), by_replica
    for response in admitted:
        assert response.json()["workspaces"] == []
        assert response.headers["X-Rate-Limit-Limit"] == str(LIMIT)
        assert 0 <= int(response.headers["X-Rate-Limit-Remaining"]) < CAPACITY
    refusals = [(n, r) for n, r in answers if r.status_code >= 300]
    assert refusals
    for number, (replica, response) in enumerate(refusals):
        _assert_refusal(response, f"refusal #{number} by replica {replica}")
    for n, response in enumerate(refused_posts):
        _assert_refusal(response, f"POST to replica {n}")
        assert response.headers["X-Rate-Limit-Remaining"] == "0"
    assert await _workspace_count(env) == 0


async def test_an_idle_replica_refuses_once_the_busy_one_spent_the_budget(two_gateways):
    env, urls, auth = two_gateways
    await _wait_until_replicas_hear_each_other(env, replicas=2)
    busy, idle = (httpx.Client(base_url=url, auth=auth, timeout=15) for url in urls)
    try:
        started = time.monotonic()
        admitted = [0, 0]
        # A replica spends only its share of what is left between two reports
        # (100 ms apart), so it keeps asking until the window is full. The last
        # request of the window may belong to the other replica (the remainder of
        # a share goes to the lowest replica id), so stop after 2 s either way.
        while time.monotonic() - started < 2:
            response = busy.get("/v1/Workspaces")
            if response.status_code < 300:
                admitted[0] += 1
                continue
            _assert_refusal(response, "busy replica")
            if _spent(response):
                break
        assert CAPACITY - 1 <= admitted[0] <= CAPACITY, admitted

        # The idle replica knows the busy one's counts from its reports: at most
        # what is left passes there, then it refuses with the window full.
        while time.monotonic() - started < 8:
            response = idle.get("/v1/Workspaces")
            if response.status_code < 300:
                admitted[1] += 1
                continue
            _assert_refusal(response, "idle replica")
            if _spent(response):
                break
        assert _spent(response), "the idle replica never saw the window full"
        assert sum(admitted) == CAPACITY, admitted
        refused = idle.post("/v1/Workspaces", data={"FriendlyName": "late"})
        _assert_refusal(refused, "POST to the idle replica")
        assert time.monotonic() - started < 9
    finally:
        busy.close()
        idle.close()
    assert await _workspace_count(env) == 0
