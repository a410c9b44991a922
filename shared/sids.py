"""SIDs: two upper-case letters naming the kind of object, then 32 hex digits.

`new_sid("WT")` makes a task SID; `is_sid(value, "WT")` checks one without raising.
"""

from __future__ import annotations

import re
import secrets
from enum import StrEnum


class SidPrefix(StrEnum):
    ACCOUNT = "AC"
    API_KEY = "SK"
    WORKSPACE = "WS"
    ACTIVITY = "WA"
    WORKER = "WK"
    TASK_QUEUE = "WQ"
    WORKFLOW = "WW"
    TASK = "WT"
    RESERVATION = "WR"
    TASK_CHANNEL = "TC"
    WORKER_CHANNEL = "WC"
    EVENT = "EV"
    PAGE_TOKEN = "PA"


_SID = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")


def new_sid(prefix: str) -> str:
    """Return a fresh random SID with `prefix`, lower-case hex as Twilio issues them."""
    return f"{prefix}{secrets.token_hex(16)}"


def is_sid(value: object, prefix: str | None = None) -> bool:
    """True when `value` is a well-formed SID (of `prefix`, when given)."""
    if not isinstance(value, str) or not _SID.match(value):
        return False
    return prefix is None or value.startswith(prefix)


def worker_channel_sid(worker_sid: str, task_channel_sid: str) -> str:
    """The WorkerChannel SID for one worker and one task channel.

    Derived rather than random so that both sides agree on it without a lookup:
    the same pair always gives the same SID.
    """
    import hashlib

    digest = hashlib.blake2b(
        f"{worker_sid}:{task_channel_sid}".encode(), digest_size=16
    ).hexdigest()
    return f"{SidPrefix.WORKER_CHANNEL}{digest}"
