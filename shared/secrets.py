"""Keeping credentials: keyed hashes for checking, encryption for reuse.

An auth token is needed in two ways. The gateway only checks it, so it keeps a
keyed hash (`hash_secret`, compared with `secret_matches` in constant time).
The events service must sign webhooks with it (`X-Twilio-Signature`), so the
token is also kept encrypted (`encrypt_secret` / `decrypt_secret`, Fernet with a
key derived from `settings.secret_key`). Both keys come from the same setting;
changing it invalidates every stored hash and ciphertext.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken


def hash_secret(secret_key: str, secret: str) -> str:
    """HMAC-SHA256 of `secret` keyed with `secret_key`, as hex."""
    return hmac.new(secret_key.encode(), secret.encode(), hashlib.sha256).hexdigest()


def secret_matches(secret_key: str, secret: str, expected_hash: str) -> bool:
    """True when `secret` hashes to `expected_hash`; constant time."""
    return hmac.compare_digest(hash_secret(secret_key, secret), expected_hash)


def _fernet(secret_key: str) -> Fernet:
    # Fernet wants 32 url-safe base64 bytes; derive them so any setting works.
    digest = hashlib.sha256(b"taskrouter-fernet:" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt_secret(secret_key: str, secret: str) -> str:
    """Encrypt `secret` for storage; the result is ASCII text."""
    return _fernet(secret_key).encrypt(secret.encode()).decode()


def decrypt_secret(secret_key: str, ciphertext: str) -> str:
    """The secret stored by `encrypt_secret`; ValueError when the key does not fit."""
    try:
        return _fernet(secret_key).decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("the secret was encrypted with another key") from exc
