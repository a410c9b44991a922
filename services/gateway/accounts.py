"""Accounts and HTTP Basic authentication, checked from an in-memory cache.

An account document (`accounts`, `_id` = AC SID) keeps a keyed hash of its auth
token for checking and the token encrypted for the events service, which signs
webhooks with it. Checking a request reads no store once the account is cached.
"""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from shared.errors import AuthenticationError, PermissionDeniedError
from shared.models import utcnow
from shared.secrets import decrypt_secret, encrypt_secret, hash_secret, secret_matches
from shared.sids import SidPrefix, is_sid, new_sid
from shared.storage import collections as c
from shared.storage.committer import Committer, Write

logger = logging.getLogger(__name__)

ACTIVE = "active"
SUSPENDED = "suspended"


@dataclass(frozen=True)
class Credentials:
    """What checking one account's requests needs."""

    account_sid: str
    token_hash: str
    status: str


def parse_basic_auth(header: str | None) -> tuple[str, str]:
    """Username and password of an `Authorization: Basic ...` header."""
    if not header or not header[:6].lower() == "basic ":
        raise AuthenticationError("Authentication Error - No credentials provided")
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise AuthenticationError("Authentication Error - invalid credentials") from exc
    username, sep, password = decoded.partition(":")
    if not sep:
        raise AuthenticationError("Authentication Error - invalid credentials")
    return username, password


class Accounts:
    """Cached credentials of every account, read from the store on a miss."""

    def __init__(self, db: AsyncDatabase[Any], committer: Committer, secret_key: str) -> None:
        self._db = db
        self._committer = committer
        self._secret_key = secret_key
        self._cache: dict[str, Credentials] = {}

    async def load(self) -> None:
        """Cache every account (at start)."""
        async for doc in self._db[c.ACCOUNTS].find({}):
            self._remember(doc)

    async def authenticate(self, header: str | None) -> str:
        """The account SID a request's Basic credentials prove; raises otherwise."""
        username, password = parse_basic_auth(header)
        credentials = await self._credentials(username)
        if credentials is None or not secret_matches(
            self._secret_key, password, credentials.token_hash
        ):
            raise AuthenticationError("Authentication Error - invalid username or password")
        if credentials.status != ACTIVE:
            raise PermissionDeniedError(f"Account {username} is not active")
        return credentials.account_sid

    async def _credentials(self, account_sid: str) -> Credentials | None:
        # TODO: API keys (SK...) are not accepted yet; only AccountSid/AuthToken pairs.
        if not is_sid(account_sid, SidPrefix.ACCOUNT):
            return None
        found = self._cache.get(account_sid)
        if found is None:
            doc = await self._db[c.ACCOUNTS].find_one({"_id": account_sid})
            found = self._remember(doc) if doc else None
        return found

    def _remember(self, doc: dict[str, Any]) -> Credentials:
        credentials = Credentials(doc["_id"], doc["auth_token_hash"], doc.get("status", ACTIVE))
        self._cache[credentials.account_sid] = credentials
        return credentials

    async def save(self, account_sid: str, auth_token: str, *, bootstrap: bool = False) -> None:
        """Create or update an account with this auth token."""
        now = utcnow()
        fields = {
            "auth_token_hash": hash_secret(self._secret_key, auth_token),
            "auth_token_encrypted": encrypt_secret(self._secret_key, auth_token),
            "status": ACTIVE,
            "bootstrap": bootstrap,
            "date_updated": now,
        }
        operation = UpdateOne(
            {"_id": account_sid},
            {"$set": fields, "$setOnInsert": {"date_created": now}},
            upsert=True,
        )
        await self._committer.commit([Write(c.ACCOUNTS, operation)])
        self._remember({"_id": account_sid, **fields})

    async def bootstrap(self, account_sid: str | None, auth_token: str | None) -> str:
        """Make sure the configured (or a generated) bootstrap account exists."""
        if account_sid and auth_token:
            await self.save(account_sid, auth_token, bootstrap=True)
            return account_sid
        existing = await self._db[c.ACCOUNTS].find_one(
            {"_id": account_sid} if account_sid else {"bootstrap": True}
        )
        if existing is not None:
            self._remember(existing)
            return existing["_id"]
        account_sid = account_sid or new_sid(SidPrefix.ACCOUNT)
        auth_token = secrets.token_hex(16)
        await self.save(account_sid, auth_token, bootstrap=True)
        # Logged once, when generated: the only way an operator learns the token.
        logger.warning(
            "generated bootstrap account",
            extra={"account_sid": account_sid, "auth_token": auth_token},
        )
        return account_sid

    def auth_token(self, doc: dict[str, Any]) -> str:
        """The clear auth token of a stored account document."""
        return decrypt_secret(self._secret_key, doc["auth_token_encrypted"])
