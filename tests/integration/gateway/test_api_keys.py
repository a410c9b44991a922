"""API keys on the real store and NATS: create, check from memory, revoke everywhere."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import nats
import pytest

from services.gateway.accounts import Accounts
from services.gateway.api_keys import (
    ApiKeys,
    create_api_key,
    credentials_changed_message,
    list_api_keys,
    revoke_api_key,
    subscribe_credentials_changed,
)
from services.gateway.identity_settings import IdentitySettings
from services.gateway.permissions import Permission, PermissionSyntaxError
from shared.errors import AuthenticationError, NotFoundError, PermissionDeniedError
from shared.runtime import ServiceRuntime
from shared.secrets import secret_matches
from shared.settings import load
from shared.sids import SidPrefix, is_sid, new_sid
from shared.storage import collections as c

pytestmark = pytest.mark.integration


async def _eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 5.0
) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not reached before the deadline"
        await asyncio.sleep(0.02)


async def _rejects(keys: ApiKeys, sid: str, secret: str) -> bool:
    try:
        await keys.authenticate(sid, secret)
    except AuthenticationError:
        return True
    return False


@pytest.fixture
async def gateway_runtime(isolated_env):
    settings = load(IdentitySettings, isolated_env)
    runtime = ServiceRuntime("gateway", settings)
    keys = ApiKeys(runtime.db, settings.secret_key)
    subscribe_credentials_changed(runtime, keys.on_credentials_changed)
    await runtime.start()
    account_sid = new_sid(SidPrefix.ACCOUNT)
    await Accounts(runtime.db, runtime.committer, settings.secret_key).save(
        account_sid, "tok"
    )
    await keys.load()
    yield runtime, keys, account_sid
    await runtime.stop()


async def test_create_api_key_stores_keyed_hash_never_the_secret(gateway_runtime):
    runtime, _, account_sid = gateway_runtime
    secret_key = runtime.settings.secret_key

    issued = await create_api_key(
        runtime.db, runtime.committer, secret_key, account_sid, friendly_name="ci"
    )

    stored = await runtime.db[c.API_KEYS].find_one({"_id": issued.sid})
    assert is_sid(issued.sid, SidPrefix.API_KEY) and len(issued.secret) == 32
    assert issued.secret not in str(stored)
    assert secret_matches(secret_key, issued.secret, stored["secret_hash"])
    assert stored["account_sid"] == account_sid and stored["permissions"] is None
    assert stored["revoked"] is False and stored["friendly_name"] == "ci"


async def test_authenticate_returns_account_and_permissions_of_restricted_key(
    gateway_runtime,
):
    runtime, keys, account_sid = gateway_runtime
    issued = await create_api_key(
        runtime.db,
        runtime.committer,
        runtime.settings.secret_key,
        account_sid,
        permissions=["/twilio/taskrouter/workspaces.tasks/create"],
    )

    identity = await keys.authenticate(issued.sid, issued.secret)

    assert identity.account_sid == account_sid and identity.key_sid == issued.sid
    assert identity.permissions is not None
    assert identity.permissions.allows(Permission("workspaces.tasks", "create"))
    assert not identity.permissions.allows(Permission("workspaces.tasks", "delete"))


async def test_authenticate_refuses_wrong_secret_unknown_and_malformed_sid(
    gateway_runtime,
):
    runtime, keys, account_sid = gateway_runtime
    issued = await create_api_key(
        runtime.db, runtime.committer, runtime.settings.secret_key, account_sid
    )

    for sid, secret in [
        (issued.sid, issued.secret + "x"),
        (new_sid(SidPrefix.API_KEY), issued.secret),
        ("SKnot-a-sid", issued.secret),
        (account_sid, "tok"),
    ]:
        with pytest.raises(AuthenticationError):
            await keys.authenticate(sid, secret)


async def test_authenticate_reads_no_store_once_cached(gateway_runtime):
    runtime, keys, account_sid = gateway_runtime
    issued = await create_api_key(
        runtime.db, runtime.committer, runtime.settings.secret_key, account_sid
    )
    await keys.load()

    # Revoke behind the cache's back (no broadcast): the cached key still works,
    # which shows the check reads memory, until the periodic reload catches up.
    await runtime.db[c.API_KEYS].update_one(
        {"_id": issued.sid}, {"$set": {"revoked": True}}
    )
    assert (await keys.authenticate(issued.sid, issued.secret)).key_sid == issued.sid
    await keys.load()

    with pytest.raises(AuthenticationError):
        await keys.authenticate(issued.sid, issued.secret)


async def test_key_created_after_load_is_found_on_first_use(gateway_runtime):
    runtime, keys, account_sid = gateway_runtime
    with pytest.raises(AuthenticationError):
        await keys.authenticate(new_sid(SidPrefix.API_KEY), "x")

    issued = await create_api_key(
        runtime.db, runtime.committer, runtime.settings.secret_key, account_sid
    )

    assert (
        await keys.authenticate(issued.sid, issued.secret)
    ).account_sid == account_sid


async def test_revoke_broadcast_reaches_every_replica(gateway_runtime, isolated_env):
    runtime, keys, account_sid = gateway_runtime
    settings = load(IdentitySettings, isolated_env)
    second = ServiceRuntime("gateway", settings)
    second_keys = ApiKeys(second.db, settings.secret_key)
    subscribe_credentials_changed(second, second_keys.on_credentials_changed)
    await second.start()
    try:
        issued = await create_api_key(
            runtime.db, runtime.committer, settings.secret_key, account_sid
        )
        await second_keys.load()
        await keys.authenticate(issued.sid, issued.secret)
        await second_keys.authenticate(issued.sid, issued.secret)

        await revoke_api_key(runtime.db, runtime.committer, issued.sid)
        connection = await nats.connect(settings.nats_url)
        await connection.publish(
            runtime.subjects.credentials_changed(),
            credentials_changed_message(account_sid=account_sid, key_sid=issued.sid),
        )
        await connection.drain()

        await _eventually(lambda: _rejects(keys, issued.sid, issued.secret))
        await _eventually(lambda: _rejects(second_keys, issued.sid, issued.secret))
    finally:
        await second.stop()


async def test_key_of_suspended_account_is_refused_with_403(gateway_runtime):
    runtime, keys, account_sid = gateway_runtime
    issued = await create_api_key(
        runtime.db, runtime.committer, runtime.settings.secret_key, account_sid
    )
    await runtime.db[c.ACCOUNTS].update_one(
        {"_id": account_sid}, {"$set": {"status": "suspended"}}
    )
    keys.forget(account_sid=account_sid)

    with pytest.raises(PermissionDeniedError):
        await keys.authenticate(issued.sid, issued.secret)


async def test_create_api_key_refuses_unknown_account_and_bad_permission(
    gateway_runtime,
):
    runtime, _, account_sid = gateway_runtime
    secret_key = runtime.settings.secret_key

    with pytest.raises(NotFoundError):
        await create_api_key(
            runtime.db, runtime.committer, secret_key, new_sid(SidPrefix.ACCOUNT)
        )
    with pytest.raises(PermissionSyntaxError):
        await create_api_key(
            runtime.db,
            runtime.committer,
            secret_key,
            account_sid,
            permissions=["/twilio/taskrouter/workspace.tasks/read"],
        )
    assert await runtime.db[c.API_KEYS].count_documents({}) == 0


async def test_list_and_revoke_api_keys(gateway_runtime):
    runtime, _, account_sid = gateway_runtime
    secret_key = runtime.settings.secret_key
    first = await create_api_key(runtime.db, runtime.committer, secret_key, account_sid)
    second = await create_api_key(
        runtime.db,
        runtime.committer,
        secret_key,
        account_sid,
        permissions=["/twilio/taskrouter/*"],
    )

    assert await revoke_api_key(runtime.db, runtime.committer, first.sid) == account_sid
    assert await revoke_api_key(runtime.db, runtime.committer, first.sid) == account_sid
    listed = await list_api_keys(runtime.db, account_sid)

    assert [k["sid"] for k in listed] == [first.sid, second.sid]
    assert [k["revoked"] for k in listed] == [True, False]
    assert listed[1]["permissions"] == ["/twilio/taskrouter/*"]
    assert all("secret_hash" not in k for k in listed)
    with pytest.raises(NotFoundError):
        await revoke_api_key(runtime.db, runtime.committer, new_sid(SidPrefix.API_KEY))
