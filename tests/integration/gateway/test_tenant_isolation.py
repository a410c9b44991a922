"""Account B cannot see or touch account A's objects: every operation of the
contract answers B exactly as it would for an object that does not exist.

One gateway process; account A is its bootstrap account, account B comes from
the admin tool (`accounts create`). A has a workspace with an activity, a task
channel, a queue and a workflow (the configuration the gateway owns); tasks,
workers, reservations and events need other services, so their SIDs are random.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from shared.sids import SidPrefix
from shared.storage import collections as c
from tests.integration.gateway.gateway_probe import (
    Operation,
    admin,
    admin_settings,
    assert_twilio_error,
    contract_operations,
    gateway_env,
    new_account,
    random_sid,
    send,
    start_gateway_process,
)

pytestmark = pytest.mark.integration

_SID = re.compile(r"\b([A-Z]{2})[0-9a-fA-F]{32}\b")
CONFIGURATION_PREFIXES = (
    SidPrefix.WORKSPACE,
    SidPrefix.ACTIVITY,
    SidPrefix.TASK_CHANNEL,
    SidPrefix.TASK_QUEUE,
    SidPrefix.WORKFLOW,
)


@dataclass
class Tenants:
    url: str
    env: dict[str, str]
    a: tuple[str, str]
    b: tuple[str, str]
    b_key: tuple[str, str]  # a standard API key of account B
    a_sids: dict[str, str]
    b_sids: dict[str, str]


def _create_configuration(http: httpx.Client, name: str) -> dict[str, str]:
    def created(path: str, data: dict[str, str]) -> str:
        response = http.post(path, data=data)
        assert response.status_code == 201, (
            f"{path}: {response.status_code} {response.text}"
        )
        return response.json()["sid"]

    workspace = created("/v1/Workspaces", {"FriendlyName": name})
    base = f"/v1/Workspaces/{workspace}"
    queue = created(f"{base}/TaskQueues", {"FriendlyName": f"{name}-queue"})
    configuration = {
        "task_routing": {
            "filters": [
                {
                    "filter_friendly_name": "all",
                    "expression": "1==1",
                    "targets": [{"queue": queue}],
                }
            ],
            "default_filter": {"queue": queue},
        }
    }
    return {
        SidPrefix.WORKSPACE: workspace,
        SidPrefix.ACTIVITY: created(
            f"{base}/Activities", {"FriendlyName": f"{name}-busy"}
        ),
        SidPrefix.TASK_CHANNEL: created(
            f"{base}/TaskChannels",
            {"FriendlyName": name, "UniqueName": f"{name}-channel"},
        ),
        SidPrefix.TASK_QUEUE: queue,
        SidPrefix.WORKFLOW: created(
            f"{base}/Workflows",
            {
                "FriendlyName": f"{name}-flow",
                "Configuration": json.dumps(configuration),
            },
        ),
    }


@pytest.fixture
async def tenants(isolated_env, tmp_path) -> Iterator[Tenants]:
    a_sid, a_token = new_account()
    env = gateway_env(
        isolated_env, a_sid, a_token, TASKROUTER_RATE_LIMIT_PER_SECOND="0"
    )
    process, url = start_gateway_process(env, tmp_path / "gateway.log")
    try:
        b = await admin(
            admin_settings(env), "accounts", "create", "--friendly-name", "B"
        )
        b_auth = (b["account_sid"], b["auth_token"])
        key = await admin(admin_settings(env), "keys", "create", b["account_sid"])
        with httpx.Client(base_url=url, timeout=15) as http:
            http.auth = (a_sid, a_token)
            a_sids = _create_configuration(http, "alpha")
            http.auth = b_auth
            b_sids = _create_configuration(http, "beta")
        yield Tenants(
            url,
            env,
            (a_sid, a_token),
            b_auth,
            (key["sid"], key["secret"]),
            a_sids,
            b_sids,
        )
    finally:
        process.stop()


async def _snapshot(
    env: dict[str, str], workspace_sid: str
) -> dict[str, list[dict[str, Any]]]:
    """Every stored document of one workspace, per collection."""
    client = AsyncMongoClient(env["MONGODB_URL"], tz_aware=True)
    try:
        db = client[env["MONGODB_DATABASE"]]
        found = {}
        for collection in (*c.CONFIGURATION, c.WORKERS, c.TASKS, c.RESERVATIONS):
            query = {"$or": [{"_id": workspace_sid}, {"workspace_sid": workspace_sid}]}
            found[collection] = (
                await db[collection].find(query).sort("_id").to_list(None)
            )
        return found
    finally:
        await client.close()


def _shape(message: str) -> str:
    """The message with every SID reduced to its prefix."""
    return _SID.sub(lambda m: f"{m.group(1)}<sid>", message)


def _assert_like_missing(
    http: httpx.Client,
    operation: Operation,
    probe_url: str,
    missing_url: str,
    what: str,
) -> None:
    """B's probe answers 404/20404 with the same message as for SIDs naming nothing."""
    probe = send(http, operation, probe_url, None)
    missing = send(http, operation, missing_url, None)
    assert missing.status_code == 404, (
        f"{what}, random SIDs: {missing.status_code} {missing.text}"
    )
    probe_body = assert_twilio_error(probe, 404, 20404, what)
    missing_body = missing.json()
    assert _shape(probe_body["message"]) == _shape(missing_body["message"]), (
        f"{what}: {probe_body['message']!r} vs {missing_body['message']!r}"
    )
    assert {k: v for k, v in probe_body.items() if k != "message"} == {
        k: v for k, v in missing_body.items() if k != "message"
    }, what


@pytest.mark.parametrize("credential", ["auth token", "API key"])
async def test_account_b_finds_none_of_account_as_objects_on_any_operation(
    tenants, credential
):
    a_workspace = tenants.a_sids[SidPrefix.WORKSPACE]
    before = await _snapshot(tenants.env, a_workspace)
    probed = 0
    auth = tenants.b if credential == "auth token" else tenants.b_key
    with httpx.Client(base_url=tenants.url, auth=auth, timeout=15) as http:
        for operation in contract_operations():
            if not operation.parameters():
                continue  # /v1/Workspaces: B's own list and create
            # Fixed random SIDs for what A has none of, the same in both requests.
            randoms = {
                name: random_sid(name, prefix)
                for name, prefix in operation.parameters()
            }
            probe_url = operation.url(
                lambda n, p, randoms=randoms: tenants.a_sids.get(p) or randoms[n]
            )
            missing_url = operation.url(
                lambda n, p, randoms=randoms: (
                    random_sid(n, p) if p in tenants.a_sids else randoms[n]
                )
            )
            _assert_like_missing(
                http, operation, probe_url, missing_url, f"A's SIDs: {operation}"
            )
            probed += 1
        listed = http.get("/v1/Workspaces").json()["workspaces"]
        assert [w["sid"] for w in listed] == [tenants.b_sids[SidPrefix.WORKSPACE]]
    assert probed == 59
    assert await _snapshot(tenants.env, a_workspace) == before


async def test_a_objects_inside_bs_own_workspace_are_missing_too(tenants):
    """B's workspace in the path, A's activity, channel, queue or workflow below it."""
    a_workspace = tenants.a_sids[SidPrefix.WORKSPACE]
    before = await _snapshot(tenants.env, a_workspace)
    b_workspace = tenants.b_sids[SidPrefix.WORKSPACE]
    probed = []
    with httpx.Client(base_url=tenants.url, auth=tenants.b, timeout=15) as http:
        for operation in contract_operations():
            below = [
                (name, prefix)
                for name, prefix in operation.parameters()
                if prefix != SidPrefix.WORKSPACE and prefix in tenants.a_sids
            ]
            if not below:
                continue
            probe_url = operation.url(
                lambda n, p: (
                    b_workspace if p == SidPrefix.WORKSPACE else tenants.a_sids[p]
                )
            )
            missing_url = operation.url(
                lambda n, p: (
                    b_workspace if p == SidPrefix.WORKSPACE else random_sid(n, p)
                )
            )
            _assert_like_missing(
                http, operation, probe_url, missing_url, f"B's workspace: {operation}"
            )
            probed.append(operation.operation_id)
    # Fetch, update and delete of four resources, and the seven statistics of
    # one queue or one workflow.
    assert len(probed) == 4 * 3 + 6, probed
    assert await _snapshot(tenants.env, a_workspace) == before


async def test_a_can_still_use_everything_b_probed(tenants):
    """The probes did not lock A out: A's token reads each of its objects."""
    with httpx.Client(base_url=tenants.url, timeout=15) as http:
        http.auth = tenants.b
        for operation in contract_operations():
            if operation.method == "GET" and operation.parameters():
                send(
                    http,
                    operation,
                    operation.url(
                        lambda n, p: tenants.a_sids.get(p) or random_sid(n, p)
                    ),
                    None,
                )
        http.auth = tenants.a
        workspace = tenants.a_sids[SidPrefix.WORKSPACE]
        assert (
            http.get(f"/v1/Workspaces/{workspace}").json()["friendly_name"] == "alpha"
        )
        for prefix, collection in (
            (SidPrefix.ACTIVITY, "Activities"),
            (SidPrefix.TASK_CHANNEL, "TaskChannels"),
            (SidPrefix.TASK_QUEUE, "TaskQueues"),
            (SidPrefix.WORKFLOW, "Workflows"),
        ):
            fetched = http.get(
                f"/v1/Workspaces/{workspace}/{collection}/{tenants.a_sids[prefix]}"
            )
            assert fetched.status_code == 200, fetched.text
            assert fetched.json()["account_sid"] == tenants.a[0]
