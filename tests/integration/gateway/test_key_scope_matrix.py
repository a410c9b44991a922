"""Every operation of the contract × API keys of every kind, against a gateway process.

Only the gateway runs, so operations owned by other services answer 503 or 404
once allowed; what matters here is that a key's permissions decide 403 before
anything else, and that bad or missing credentials answer 401 everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from shared.sids import SidPrefix
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

W = "/v1/Workspaces/{WorkspaceSid}"
TASK_PATHS = {f"{W}/Tasks", f"{W}/Tasks/{{Sid}}"}
# Answers of an allowed request when the other services are not running.
ALLOWED_ANSWERS = {200, 201, 204, 400, 404, 503}


@dataclass(frozen=True)
class Key:
    name: str
    sid: str
    secret: str
    permissions: list[str] | None

    def allows(self, operation: Operation) -> bool:
        """What the key's permissions should allow, written out independently of
        the gateway's table."""
        if self.name in ("standard", "wildcard"):
            return True
        if self.name == "read-only":
            # Twilio names the bulk real-time statistics POST `.../list`.
            return operation.method == "GET" or operation.is_bulk_statistics
        if self.name == "writes-only":
            return operation.method != "GET" and not operation.is_bulk_statistics
        if self.name == "tasks-only":
            return operation.path in TASK_PATHS
        if self.name == "unrelated":
            return False
        raise AssertionError(self.name)


KEY_PERMISSIONS: dict[str, list[str] | None] = {
    "standard": None,
    "read-only": ["/twilio/taskrouter/*/read", "/twilio/taskrouter/*/list"],
    "writes-only": [
        "/twilio/taskrouter/*/create",
        "/twilio/taskrouter/*/update",
        "/twilio/taskrouter/*/delete",
    ],
    "tasks-only": ["/twilio/taskrouter/workspaces.tasks/*"],
    "wildcard": ["/twilio/taskrouter/*"],
    # Names a real resource, but no operation needs it.
    "unrelated": ["/twilio/taskrouter/workspaces.events/create"],
}


@dataclass
class Setup:
    url: str
    account: tuple[str, str]
    keys: list[Key]
    revoked: Key
    sids: dict[str, str]  # SID prefix -> an existing object's SID, where one exists


@pytest.fixture
async def setup(isolated_env, tmp_path) -> Iterator[Setup]:
    account_sid, auth_token = new_account()
    env = gateway_env(
        isolated_env, account_sid, auth_token, TASKROUTER_RATE_LIMIT_PER_SECOND="0"
    )
    process, url = start_gateway_process(env, tmp_path / "gateway.log")
    try:
        settings = admin_settings(env)
        keys = []
        for name, permissions in KEY_PERMISSIONS.items():
            argv = ["keys", "create", account_sid, "--friendly-name", name]
            for permission in permissions or ():
                argv += ["--permission", permission]
            created = await admin(settings, *argv)
            assert created["permissions"] == permissions
            keys.append(Key(name, created["sid"], created["secret"], permissions))
        created = await admin(settings, "keys", "create", account_sid)
        await admin(settings, "keys", "revoke", created["sid"])
        revoked = Key("revoked", created["sid"], created["secret"], None)

        with httpx.Client(
            base_url=url, auth=(account_sid, auth_token), timeout=15
        ) as http:
            sids = _create_configuration(http)
        yield Setup(url, (account_sid, auth_token), keys, revoked, sids)
    finally:
        process.stop()


def _create_configuration(http: httpx.Client) -> dict[str, str]:
    """A workspace with an activity, a task channel, a queue and a workflow."""

    def created(path: str, data: dict[str, str]) -> str:
        response = http.post(path, data=data)
        assert response.status_code == 201, (
            f"{path}: {response.status_code} {response.text}"
        )
        return response.json()["sid"]

    workspace = created("/v1/Workspaces", {"FriendlyName": "matrix"})
    base = f"/v1/Workspaces/{workspace}"
    queue = created(f"{base}/TaskQueues", {"FriendlyName": "queue"})
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
        SidPrefix.ACTIVITY: created(f"{base}/Activities", {"FriendlyName": "busy"}),
        SidPrefix.TASK_CHANNEL: created(
            f"{base}/TaskChannels", {"FriendlyName": "matrix", "UniqueName": "matrix"}
        ),
        SidPrefix.TASK_QUEUE: queue,
        SidPrefix.WORKFLOW: created(
            f"{base}/Workflows",
            {"FriendlyName": "flow", "Configuration": json.dumps(configuration)},
        ),
    }


def _ordered(operations: tuple[Operation, ...]) -> list[Operation]:
    """Reads and updates first, then deletes, the workspace's own delete last."""

    def rank(operation: Operation) -> tuple[int, int]:
        if operation.method != "DELETE":
            return (0, 0)
        return (2, 0) if operation.path == "/v1/Workspaces/{Sid}" else (1, 0)

    return sorted(operations, key=rank)


def _urls(setup: Setup) -> dict[Operation, str]:
    """Each operation's URL: existing objects' SIDs where the gateway alone has
    them, well-formed random ones elsewhere (fixed per operation)."""
    return {
        operation: operation.url(
            lambda name, prefix: setup.sids.get(prefix) or random_sid(name, prefix)
        )
        for operation in contract_operations()
    }


def test_the_contract_has_61_operations():
    operations = contract_operations()
    assert len(operations) == 61 and len(set(operations)) == 61


def test_every_operation_with_every_key_is_allowed_or_refused_by_its_permissions(setup):
    urls = _urls(setup)
    outcomes: dict[str, dict[str, int]] = {
        key.name: {"allowed": 0, "refused": 0} for key in setup.keys
    }
    with httpx.Client(base_url=setup.url, timeout=15) as http:
        for operation in _ordered(contract_operations()):
            for key in setup.keys:
                what = f"{key.name} key: {operation}"
                response = send(http, operation, urls[operation], (key.sid, key.secret))
                if key.allows(operation):
                    assert response.status_code in ALLOWED_ANSWERS, (
                        f"{what}: {response.status_code} {response.text[:300]}"
                    )
                    outcomes[key.name]["allowed"] += 1
                else:
                    body = assert_twilio_error(response, 403, 70051, what)
                    assert urls[operation] in body["message"], what
                    outcomes[key.name]["refused"] += 1
                # Rate limiting is off: no rate-limit headers on any answer.
                assert "X-Rate-Limit-Limit" not in response.headers, what

    assert outcomes == {
        "standard": {"allowed": 61, "refused": 0},
        "read-only": {"allowed": 37, "refused": 24},
        "writes-only": {"allowed": 24, "refused": 37},
        "tasks-only": {"allowed": 5, "refused": 56},
        "wildcard": {"allowed": 61, "refused": 0},
        "unrelated": {"allowed": 0, "refused": 61},
    }


def test_the_account_token_is_allowed_every_operation(setup):
    urls = _urls(setup)
    with httpx.Client(base_url=setup.url, auth=setup.account, timeout=15) as http:
        for operation in _ordered(contract_operations()):
            response = send(http, operation, urls[operation], None)
            assert response.status_code in ALLOWED_ANSWERS, (
                f"{operation}: {response.status_code} {response.text[:300]}"
            )


def test_bad_or_missing_credentials_answer_401_on_every_operation(setup):
    urls = _urls(setup)
    account_sid, auth_token = setup.account
    standard = setup.keys[0]
    credentials: dict[str, tuple[str, str] | None] = {
        "wrong auth token": (account_sid, auth_token[::-1]),
        "unknown account": (random_sid("", SidPrefix.ACCOUNT), auth_token),
        "unknown key": (random_sid("", SidPrefix.API_KEY), standard.secret),
        "wrong key secret": (standard.sid, standard.secret[::-1]),
        "revoked key": (setup.revoked.sid, setup.revoked.secret),
        "not a SID": ("admin", "admin"),
        "missing": None,
    }
    with httpx.Client(base_url=setup.url, timeout=15) as http:
        for operation in contract_operations():
            for name, auth in credentials.items():
                what = f"{name} credentials: {operation}"
                response = send(http, operation, urls[operation], auth)
                assert_twilio_error(response, 401, 20003, what)
                assert (
                    response.headers.get("WWW-Authenticate")
                    == 'Basic realm="TaskRouter"'
                ), what
                assert "X-Rate-Limit-Limit" not in response.headers, what
        # Nothing was changed by the refused requests: the objects are all still there.
        http.auth = setup.account
        workspace = setup.sids[SidPrefix.WORKSPACE]
        assert (
            http.get(f"/v1/Workspaces/{workspace}").json()["friendly_name"] == "matrix"
        )
        for prefix, collection in (
            (SidPrefix.ACTIVITY, "Activities"),
            (SidPrefix.TASK_CHANNEL, "TaskChannels"),
            (SidPrefix.TASK_QUEUE, "TaskQueues"),
            (SidPrefix.WORKFLOW, "Workflows"),
        ):
            fetched = http.get(
                f"/v1/Workspaces/{workspace}/{collection}/{setup.sids[prefix]}"
            )
            assert fetched.status_code == 200, fetched.text
            assert "probe" not in fetched.json()["friendly_name"]
        assert len(http.get("/v1/Workspaces").json()["workspaces"]) == 1
