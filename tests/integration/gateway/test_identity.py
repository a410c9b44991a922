"""Authentication, restricted keys and rate limits on routes shaped like the gateway's.

The app here is built in the test from the identity pieces and the gateway's
error table, the way the gateway's app factory wires them.
"""

from __future__ import annotations

import httpx
import pytest
from fastapi import Depends, FastAPI, Request

from services.gateway import errors as gateway_errors
from services.gateway.accounts import Accounts
from services.gateway.api_keys import ApiKeys, create_api_key
from services.gateway.identity import (
    IDENTITY_ERROR_STATUSES,
    Identity,
    RateLimitHeaders,
    identify,
)
from services.gateway.rate_limit import RateLimiter
from shared.events import Event
from shared.settings import CommonSettings, load
from shared.sids import SidPrefix, new_sid
from shared.storage.committer import Committer
from shared.storage.mongo import open_client

pytestmark = pytest.mark.integration

SECRET_KEY = "identity-test-key"
WS = "WS" + "1" * 32
OWNERS: dict[str, str] = {}  # workspace -> owning account, as the configuration cache knows it


async def _no_events(event: Event) -> None:
    raise AssertionError("no events expected")


@pytest.fixture
async def stack(isolated_env, monkeypatch):
    for error, status in IDENTITY_ERROR_STATUSES.items():
        monkeypatch.setitem(gateway_errors.ERROR_TABLE, error, status)
    settings = load(CommonSettings, isolated_env)
    client = open_client(settings.mongodb_url)
    db = client[settings.mongodb_database]
    committer = Committer(client, db, _no_events, outbox="outbox_gateway")
    await committer.start()
    accounts = Accounts(db, committer, SECRET_KEY)
    account_sid = new_sid(SidPrefix.ACCOUNT)
    await accounts.save(account_sid, "token-1")
    keys = ApiKeys(db, SECRET_KEY)
    limiter = RateLimiter(1, {WS: 2})
    OWNERS.clear()
    OWNERS[WS] = account_sid
    yield db, committer, accounts, keys, limiter, account_sid
    await committer.stop()
    await client.close()


def _app(accounts: Accounts, keys: ApiKeys, limiter: RateLimiter) -> FastAPI:
    app = FastAPI()
    gateway_errors.register_error_handlers(app)
    app.add_middleware(RateLimitHeaders)

    async def caller(request: Request) -> Identity:
        return await identify(request, accounts, keys, limiter, OWNERS.get)

    # A default, not an annotation: annotations are strings here (postponed).
    who_calls = Depends(caller)

    @app.get("/v1/Workspaces")
    async def list_workspaces(who: Identity = who_calls) -> dict[str, str | None]:
        return {"account_sid": who.account_sid, "key_sid": who.key_sid}

    @app.post("/v1/Workspaces/{workspace_sid}/Tasks")
    async def create_task(
        workspace_sid: str, who: Identity = who_calls
    ) -> dict[str, str]:
        return {"workspace_sid": workspace_sid}

    @app.get("/v1/Workspaces/{workspace_sid}/Tasks/{sid}")
    async def fetch_task(
        workspace_sid: str, sid: str, who: Identity = who_calls
    ) -> dict[str, str]:
        return {"sid": sid}

    return app


def _http(app: FastAPI, auth: tuple[str, str] | None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway", auth=auth
    )


async def test_account_token_and_standard_key_pass_with_rate_limit_headers(stack):
    db, committer, accounts, keys, limiter, account_sid = stack
    key = await create_api_key(db, committer, SECRET_KEY, account_sid)
    app = _app(accounts, keys, limiter)

    async with _http(app, (account_sid, "token-1")) as http:
        by_token = await http.get("/v1/Workspaces")
    async with _http(app, (key.sid, key.secret)) as http:
        by_key = await http.get("/v1/Workspaces")

    assert by_token.status_code == 200 and by_token.json()["key_sid"] is None
    assert by_key.json() == {"account_sid": account_sid, "key_sid": key.sid}
    assert by_key.headers["X-Rate-Limit-Limit"] == "1"
    assert by_key.headers["X-Rate-Limit-Remaining"] == "8"
    assert by_key.headers["X-Rate-Limit-Config"] == "Account-Default;window=10"


async def test_wrong_credentials_answer_401_without_rate_limit_headers(stack):
    _, _, accounts, keys, limiter, account_sid = stack
    app = _app(accounts, keys, limiter)

    async with _http(app, (account_sid, "wrong")) as http:
        wrong = await http.get("/v1/Workspaces")
    async with _http(app, (new_sid(SidPrefix.API_KEY), "wrong")) as http:
        unknown_key = await http.get("/v1/Workspaces")

    for answer in (wrong, unknown_key):
        assert answer.status_code == 401 and answer.json()["code"] == 20003
        assert "X-Rate-Limit-Limit" not in answer.headers


async def test_restricted_key_is_refused_outside_its_permissions_with_70051(stack):
    db, committer, accounts, keys, limiter, account_sid = stack
    key = await create_api_key(
        db,
        committer,
        SECRET_KEY,
        account_sid,
        permissions=["/twilio/taskrouter/workspaces.tasks/read"],
    )
    app = _app(accounts, keys, limiter)
    task_sid = new_sid(SidPrefix.TASK)

    async with _http(app, (key.sid, key.secret)) as http:
        fetched = await http.get(f"/v1/Workspaces/{WS}/Tasks/{task_sid}")
        created = await http.post(
            f"/v1/Workspaces/{WS}/Tasks", data={"Attributes": "{}"}
        )
        listed = await http.get("/v1/Workspaces")

    assert fetched.status_code == 200
    for refused in (created, listed):
        body = refused.json()
        assert (
            refused.status_code == 403
            and body["code"] == 70051
            and body["status"] == 403
        )
        assert "X-Rate-Limit-Remaining" in refused.headers
    assert "/twilio/taskrouter/workspaces.tasks/create" in created.json()["message"]


async def test_over_the_limit_answers_429_with_retry_after_and_processes_nothing(stack):
    _, _, accounts, keys, limiter, account_sid = stack
    app = _app(accounts, keys, limiter)

    async with _http(app, (account_sid, "token-1")) as http:
        answers = [await http.get("/v1/Workspaces") for _ in range(11)]
        own_budget = await http.post(f"/v1/Workspaces/{WS}/Tasks")

    assert [a.status_code for a in answers] == [200] * 10 + [429]
    refused = answers[-1]
    assert refused.json()["code"] == 20429
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["X-Rate-Limit-Remaining"] == "0"
    # The workspace with an override draws from its own budget.
    assert own_budget.status_code == 200
    assert own_budget.headers["X-Rate-Limit-Config"] == "Workspace-Override;window=10"


async def test_another_account_cannot_draw_on_a_workspace_budget(stack):
    _, _, accounts, keys, limiter, account_sid = stack
    stranger = new_sid(SidPrefix.ACCOUNT)
    await accounts.save(stranger, "token-2")
    app = _app(accounts, keys, limiter)

    async with _http(app, (stranger, "token-2")) as http:
        probes = [await http.post(f"/v1/Workspaces/{WS}/Tasks") for _ in range(3)]
    async with _http(app, (account_sid, "token-1")) as http:
        owner = await http.post(f"/v1/Workspaces/{WS}/Tasks")

    # The stranger is charged to its own account, as for any workspace it does not own...
    assert {p.headers["X-Rate-Limit-Config"] for p in probes} == {"Account-Default;window=10"}
    # ...and the workspace's budget of 2/s x 10 s is untouched for its owner.
    assert owner.status_code == 200
    assert owner.headers["X-Rate-Limit-Config"] == "Workspace-Override;window=10"
    assert owner.headers["X-Rate-Limit-Remaining"] == str(2 * 10 - 1)
