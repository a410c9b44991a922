"""The admin tool against the real store and NATS, in-process and as `python -m`."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import subprocess
import sys
from typing import Any

import nats
import pytest
from pymongo import AsyncMongoClient

from services.gateway.accounts import Accounts
from services.gateway.admin import run
from services.gateway.api_keys import ApiKeys
from shared.errors import AuthenticationError
from shared.secrets import decrypt_secret, secret_matches
from shared.settings import CommonSettings, load
from shared.sids import SidPrefix, is_sid, new_sid
from shared.storage import collections as c
from shared.subjects import Subjects

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(isolated_env) -> CommonSettings:
    return load(
        CommonSettings, {**isolated_env, "TASKROUTER_SECRET_KEY": "admin-test-key"}
    )


@pytest.fixture
async def db(settings):
    client = AsyncMongoClient(settings.mongodb_url, tz_aware=True)
    yield client[settings.mongodb_database]
    await client.close()


async def _admin(settings: CommonSettings, *argv: str) -> tuple[int, Any, str]:
    out, err = io.StringIO(), io.StringIO()
    status = await run(argv, settings, out, err)
    return (
        status,
        json.loads(out.getvalue()) if out.getvalue() else None,
        err.getvalue(),
    )


async def test_accounts_create_stores_the_gateway_format(settings, db):
    status, created, _ = await _admin(
        settings, "accounts", "create", "--friendly-name", "Acme"
    )

    assert status == 0 and is_sid(created["account_sid"], SidPrefix.ACCOUNT)
    stored = await db[c.ACCOUNTS].find_one({"_id": created["account_sid"]})
    assert secret_matches(
        "admin-test-key", created["auth_token"], stored["auth_token_hash"]
    )
    assert (
        decrypt_secret("admin-test-key", stored["auth_token_encrypted"])
        == created["auth_token"]
    )
    assert stored["status"] == "active" and stored["friendly_name"] == "Acme"
    # The gateway's own accounts module accepts the token.
    accounts = Accounts(db, None, "admin-test-key")  # type: ignore[arg-type]
    header = (
        "Basic "
        + base64.b64encode(
            f"{created['account_sid']}:{created['auth_token']}".encode()
        ).decode()
    )
    assert await accounts.authenticate(header) == created["account_sid"]


async def test_rotate_token_replaces_the_token_and_broadcasts(settings, db):
    _, created, _ = await _admin(settings, "accounts", "create")
    connection = await nats.connect(settings.nats_url)
    heard: asyncio.Queue = asyncio.Queue()
    await connection.subscribe(
        Subjects(settings.subject_prefix).credentials_changed(), cb=heard.put
    )
    await connection.flush()

    status, rotated, _ = await _admin(
        settings, "accounts", "rotate-token", created["account_sid"]
    )

    assert status == 0 and rotated["auth_token"] != created["auth_token"]
    stored = await db[c.ACCOUNTS].find_one({"_id": created["account_sid"]})
    assert secret_matches(
        "admin-test-key", rotated["auth_token"], stored["auth_token_hash"]
    )
    message = await asyncio.wait_for(heard.get(), 5)
    assert json.loads(message.data) == {
        "account_sid": created["account_sid"],
        "key_sid": None,
    }
    await connection.close()


async def test_rotate_token_of_unknown_account_fails(settings):
    status, printed, err = await _admin(
        settings, "accounts", "rotate-token", new_sid(SidPrefix.ACCOUNT)
    )

    assert status == 1 and printed is None and "was not found" in err


async def test_keys_create_list_revoke(settings, db):
    _, account, _ = await _admin(settings, "accounts", "create")
    account_sid = account["account_sid"]

    status, key, err = await _admin(
        settings,
        "keys",
        "create",
        account_sid,
        "--friendly-name",
        "ci",
        "--permission",
        "/twilio/taskrouter/workspaces.tasks/create",
        "--permission",
        "/twilio/taskrouter/workspaces.tasks/read",
    )
    assert status == 0 and "shown only this once" in err
    keys = ApiKeys(db, "admin-test-key")
    identity = await keys.authenticate(key["sid"], key["secret"])
    assert identity.account_sid == account_sid
    assert (
        identity.permissions is not None and len(identity.permissions.permissions) == 2
    )

    status, listed, _ = await _admin(settings, "keys", "list", account_sid)
    assert status == 0 and [k["sid"] for k in listed] == [key["sid"]]
    assert "secret" not in json.dumps(listed).replace("secret_hash", "")
    assert listed[0]["permissions"] == key["permissions"]

    status, revoked, _ = await _admin(settings, "keys", "revoke", key["sid"])
    assert status == 0 and revoked == {
        "sid": key["sid"],
        "account_sid": account_sid,
        "revoked": True,
    }
    await keys.load()
    with pytest.raises(AuthenticationError):
        await keys.authenticate(key["sid"], key["secret"])


async def test_keys_create_refuses_bad_permission_and_unknown_account(settings, db):
    _, account, _ = await _admin(settings, "accounts", "create")

    bad = await _admin(
        settings,
        "keys",
        "create",
        account["account_sid"],
        "--permission",
        "/twilio/taskrouter/nothing/read",
    )
    unknown = await _admin(settings, "keys", "create", new_sid(SidPrefix.ACCOUNT))

    assert bad[0] == 1 and "nothing" in bad[2]
    assert unknown[0] == 1 and "was not found" in unknown[2]
    assert await db[c.API_KEYS].count_documents({}) == 0


async def test_broadcast_failure_only_warns(settings):
    offline = settings.model_copy(update={"nats_url": "nats://127.0.0.1:1"})

    status, created, err = await _admin(offline, "accounts", "create")

    assert status == 0 and is_sid(created["account_sid"], SidPrefix.ACCOUNT)
    assert "periodic reload" in err


def test_runs_as_a_module(isolated_env):
    env = {**os.environ, **isolated_env, "TASKROUTER_SECRET_KEY": "admin-test-key"}

    created = subprocess.run(
        [sys.executable, "-m", "services.gateway.admin", "accounts", "create"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    account_sid = json.loads(created.stdout)["account_sid"]
    listed = subprocess.run(
        [sys.executable, "-m", "services.gateway.admin", "keys", "list", account_sid],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    usage = subprocess.run(
        [sys.executable, "-m", "services.gateway.admin", "keys"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert json.loads(listed.stdout) == []
    assert usage.returncode == 2 and "usage:" in usage.stderr
