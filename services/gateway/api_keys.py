"""API keys: `SK…` credentials of an account, standard or restricted, checked in memory.

A key document (`api_keys`, `_id` = SK SID, written only by the gateway and its
admin tool):

    {"_id": "SK…", "account_sid": "AC…", "friendly_name": "ci",
     "secret_hash": "<HMAC-SHA256 of the secret keyed with settings.secret_key>",
     "permissions": null | ["/twilio/taskrouter/workspaces.tasks/create", …],
     "date_created": …, "revoked": false, "date_revoked": null}

The secret itself is shown once, when the key is created, and never stored.

Every gateway replica keeps all keys (and the status of their accounts) in memory
(`ApiKeys`), so checking a request reads no store. Replicas learn about a change
(a key created or revoked, an account's token rotated) from a core-NATS broadcast
on `subjects.credentials_changed()`, sent by whoever made the change, and drop
what the message names. A replica that missed the broadcast (disconnected at that
moment) catches up at its next full reload, every `credentials_refresh_seconds`
(30 s by default): that is the longest a revoked key may still work on it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import string
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from pymongo import InsertOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from services.gateway.accounts import ACTIVE
from services.gateway.permissions import PermissionSet
from shared.errors import (
    AuthenticationError,
    DomainValidationError,
    NotFoundError,
    PermissionDeniedError,
)
from shared.models import utcnow
from shared.runtime import ServiceRuntime
from shared.secrets import hash_secret, secret_matches
from shared.sids import SidPrefix, is_sid, new_sid
from shared.storage import collections as c
from shared.storage.committer import Committer, Write

logger = logging.getLogger(__name__)

SECRET_LENGTH = 32
_ALPHABET = string.ascii_letters + string.digits
MAX_FRIENDLY_NAME = 64


@dataclass(frozen=True)
class KeyIdentity:
    """A caller authenticated with an API key: the key, its account, its grant."""

    key_sid: str
    account_sid: str
    permissions: PermissionSet | None  # None: a standard key, allowed everything


@dataclass(frozen=True)
class IssuedKey:
    """A key just created; the only object that ever holds its secret."""

    sid: str
    account_sid: str
    friendly_name: str | None
    secret: str
    permissions: tuple[str, ...] | None
    date_created: datetime


# -- store --------------------------------------------------------------------------


def new_secret() -> str:
    """32 random letters and digits (about 190 bits), like Twilio's key secrets."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(SECRET_LENGTH))


async def create_api_key(
    db: AsyncDatabase[Any],
    committer: Committer,
    secret_key: str,
    account_sid: str,
    *,
    friendly_name: str | None = None,
    permissions: Sequence[str] | None = None,
) -> IssuedKey:
    """Store a new key of `account_sid`; restricted when `permissions` is given.

    Raises NotFoundError for an unknown account and DomainValidationError (or its
    PermissionSyntaxError) for a bad name or permission.
    """
    if friendly_name is not None and len(friendly_name) > MAX_FRIENDLY_NAME:
        raise DomainValidationError(
            f"FriendlyName is longer than {MAX_FRIENDLY_NAME} characters",
            param="FriendlyName",
        )
    granted = (
        None if permissions is None else PermissionSet.parse(permissions).permissions
    )
    if await db[c.ACCOUNTS].find_one({"_id": account_sid}, {"_id": 1}) is None:
        raise NotFoundError("Account", account_sid)

    issued = IssuedKey(
        new_sid(SidPrefix.API_KEY),
        account_sid,
        friendly_name,
        new_secret(),
        granted,
        utcnow(),
    )
    document = {
        "_id": issued.sid,
        "account_sid": account_sid,
        "friendly_name": friendly_name,
        "secret_hash": hash_secret(secret_key, issued.secret),
        "permissions": list(granted) if granted is not None else None,
        "date_created": issued.date_created,
        "revoked": False,
        "date_revoked": None,
    }
    await committer.commit([Write(c.API_KEYS, InsertOne(document))])
    logger.info(
        "api key created", extra={"key_sid": issued.sid, "account_sid": account_sid}
    )
    return issued


async def revoke_api_key(
    db: AsyncDatabase[Any], committer: Committer, key_sid: str
) -> str:
    """Mark a key revoked (idempotent); returns its account SID, or NotFoundError."""
    found = await db[c.API_KEYS].find_one(
        {"_id": key_sid}, {"account_sid": 1, "revoked": 1}
    )
    if found is None:
        raise NotFoundError("Key", key_sid)
    if not found.get("revoked"):
        operation = UpdateOne(
            {"_id": key_sid}, {"$set": {"revoked": True, "date_revoked": utcnow()}}
        )
        await committer.commit([Write(c.API_KEYS, operation)])
        logger.info("api key revoked", extra={"key_sid": key_sid})
    return found["account_sid"]


async def list_api_keys(
    db: AsyncDatabase[Any], account_sid: str
) -> list[dict[str, Any]]:
    """The keys of one account, oldest first, without their secret hashes."""
    cursor = db[c.API_KEYS].find({"account_sid": account_sid}, {"secret_hash": 0})
    documents = await cursor.sort([("date_created", 1), ("_id", 1)]).to_list(None)
    return [{"sid": d.pop("_id"), **d} for d in documents]


def credentials_changed_message(
    *, account_sid: str | None = None, key_sid: str | None = None
) -> bytes:
    """Body of the broadcast naming what changed (either or both SIDs)."""
    return orjson.dumps({"account_sid": account_sid, "key_sid": key_sid})


# -- the in-memory cache --------------------------------------------------------------


@dataclass(frozen=True)
class _Key:
    account_sid: str
    secret_hash: str
    permissions: PermissionSet | None
    revoked: bool


def _key_of(doc: dict[str, Any]) -> _Key:
    permissions = doc.get("permissions")
    return _Key(
        doc["account_sid"],
        doc["secret_hash"],
        None if permissions is None else PermissionSet.parse(permissions),
        bool(doc.get("revoked")),
    )


class ApiKeys:
    """Every API key and account status in memory; unknown SIDs read the store once."""

    def __init__(
        self, db: AsyncDatabase[Any], secret_key: str, *, max_unknown: int = 10_000
    ) -> None:
        self._db = db
        self._secret_key = secret_key
        self._keys: dict[str, _Key] = {}
        self._unknown: set[str] = set()
        self._account_status: dict[str, str] = {}
        self._max_unknown = max_unknown
        # Bumped by every invalidation, so a store read that started before it
        # does not put back what the invalidation removed.
        self._generation = 0
        self._dummy_hash = hash_secret(secret_key, new_secret())

    async def load(self) -> None:
        """Replace the cache with every key and account status in the store."""
        generation = self._generation + 1
        self._generation = generation
        keys = {d["_id"]: _key_of(d) async for d in self._db[c.API_KEYS].find({})}
        statuses = {
            d["_id"]: d.get("status", ACTIVE)
            async for d in self._db[c.ACCOUNTS].find({}, {"status": 1})
        }
        if generation == self._generation:
            self._keys, self._account_status, self._unknown = keys, statuses, set()

    async def authenticate(self, key_sid: str, secret: str) -> KeyIdentity:
        """The identity an `SK…` SID and secret prove; else raises AuthenticationError.

        A key of a suspended account raises PermissionDeniedError (403).
        """
        key = await self._key(key_sid) if is_sid(key_sid, SidPrefix.API_KEY) else None
        expected = key.secret_hash if key is not None else self._dummy_hash
        # Compare even for an unknown key, so the answer takes about as long.
        matches = secret_matches(self._secret_key, secret, expected)
        if key is None or key.revoked or not matches:
            raise AuthenticationError(
                "Authentication Error - invalid username or password"
            )
        status = await self._status(key.account_sid)
        if status is None:
            raise AuthenticationError(
                "Authentication Error - invalid username or password"
            )
        if status != ACTIVE:
            raise PermissionDeniedError(f"Account {key.account_sid} is not active")
        return KeyIdentity(key_sid, key.account_sid, key.permissions)

    def forget(
        self, *, account_sid: str | None = None, key_sid: str | None = None
    ) -> None:
        """Drop cached credentials; the next request using them reads the store."""
        self._generation += 1
        if key_sid is not None:
            self._keys.pop(key_sid, None)
            self._unknown.discard(key_sid)
        if account_sid is not None:
            self._account_status.pop(account_sid, None)
            for sid in [
                s for s, k in self._keys.items() if k.account_sid == account_sid
            ]:
                del self._keys[sid]

    async def on_credentials_changed(self, body: dict[str, Any]) -> None:
        """Handler of the credentials-changed broadcast."""
        self.forget(account_sid=body.get("account_sid"), key_sid=body.get("key_sid"))
        logger.info(
            "cached credentials dropped",
            extra={
                "account_sid": body.get("account_sid"),
                "key_sid": body.get("key_sid"),
            },
        )

    async def refresh_forever(self, every: float) -> None:
        """Reload everything every `every` seconds: the net for missed broadcasts."""
        while True:
            await asyncio.sleep(every)
            try:
                await self.load()
            except Exception:
                logger.warning("api key reload failed; will retry", exc_info=True)

    async def _key(self, key_sid: str) -> _Key | None:
        found = self._keys.get(key_sid)
        if found is not None or key_sid in self._unknown:
            return found
        # NOTE: each never-seen SID costs one store read, then is remembered as
        # unknown until the next reload; the set is emptied when it grows too big.
        generation = self._generation
        doc = await self._db[c.API_KEYS].find_one({"_id": key_sid})
        key = _key_of(doc) if doc is not None else None
        if generation == self._generation:
            if key is not None:
                self._keys[key_sid] = key
            else:
                if len(self._unknown) >= self._max_unknown:
                    self._unknown.clear()
                self._unknown.add(key_sid)
        return key

    async def _status(self, account_sid: str) -> str | None:
        status = self._account_status.get(account_sid)
        if status is not None:
            return status
        generation = self._generation
        doc = await self._db[c.ACCOUNTS].find_one({"_id": account_sid}, {"status": 1})
        status = doc.get("status", ACTIVE) if doc is not None else None
        if status is not None and generation == self._generation:
            self._account_status[account_sid] = status
        return status


CredentialsHandler = Callable[[dict[str, Any]], Awaitable[None]]


def subscribe_credentials_changed(
    runtime: ServiceRuntime, *handlers: CredentialsHandler
) -> None:
    """Call `handlers` on each credentials-changed broadcast (every replica gets it).

    Register before `runtime.start()`.
    """

    @runtime.broker.subscriber(runtime.subjects.credentials_changed())
    async def on_credentials_changed(body: dict[str, Any]) -> None:
        for handler in handlers:
            await handler(body)
