"""Auth tokens for signing webhooks, read from the gateway's `accounts` collection.

The gateway stores each account's auth token encrypted (`auth_token_encrypted`,
see `shared.secrets`); this service decrypts it with the same `secret_key`.
Tokens are cached for a minute; the credentials-changed broadcast (sent by the
admin command when it rotates a token) drops an account's entry at once, so the
new token signs the next webhook. Without NATS, a changed token signs webhooks
within a minute.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from shared.secrets import decrypt_secret
from shared.storage import collections as c
from shared.storage.mongo import translate_errors

logger = logging.getLogger(__name__)


class AuthTokens:
    """`await tokens(account_sid)` -> the auth token, or None when it is unknown."""

    def __init__(
        self, db: AsyncDatabase[Any], secret_key: str, ttl_seconds: float = 60.0
    ) -> None:
        self._accounts = db[c.ACCOUNTS]
        self._secret_key = secret_key
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, str | None]] = {}

    async def __call__(self, account_sid: str) -> str | None:
        cached = self._cache.get(account_sid)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        token = await self._load(account_sid)
        self._cache[account_sid] = (time.monotonic() + self._ttl, token)
        return token

    async def on_credentials_changed(self, body: dict[str, Any]) -> None:
        """Handler of the credentials-changed broadcast: forget the account's token."""
        account_sid = body.get("account_sid")
        if account_sid is None:
            self._cache.clear()
        else:
            self._cache.pop(account_sid, None)

    async def _load(self, account_sid: str) -> str | None:
        doc = await translate_errors(
            lambda: self._accounts.find_one(
                {"_id": account_sid}, {"auth_token_encrypted": 1}
            )
        )
        ciphertext = (doc or {}).get("auth_token_encrypted")
        if not ciphertext:
            logger.warning(
                "no auth token for account; webhooks go unsigned",
                extra={"account_sid": account_sid},
            )
            return None
        try:
            return decrypt_secret(self._secret_key, ciphertext)
        except ValueError:
            logger.error(
                "auth token cannot be decrypted with this secret key; "
                "webhooks go unsigned",
                extra={"account_sid": account_sid},
            )
            return None
