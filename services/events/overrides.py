"""Connection overrides: timeouts and retries of one webhook URL.

Twilio lets a webhook URL carry its delivery settings in the fragment, e.g.
`https://x.test/cb#ct=2000&rt=5000&rc=3&rp=5xx,ct`:

    ct  connect timeout, ms (default 5,000)       rc  retry count, 0-5 (default 1)
    rt  read timeout, ms (default 15,000)         rp  retry policy (default ct)
    tt  total timeout, ms (default 15,000)

`rp` is a comma list of `4xx`, `5xx`, `ct` (connect failed), `rt` (read timed
out) and `all`. The operator can change the defaults for every URL (settings);
the fragment always wins. Unknown or malformed keys are ignored, values are
clamped to the documented ranges.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from enum import StrEnum
from urllib.parse import parse_qsl, urldefrag

MAX_RETRY_COUNT = 5
_MAX_TIMEOUT_MS = 60_000


class Failure(StrEnum):
    """Why one delivery attempt failed, in the terms of the retry policy."""

    CONNECT = "ct"
    READ_TIMEOUT = "rt"
    CLIENT_ERROR = "4xx"
    SERVER_ERROR = "5xx"
    OTHER = "other"


def failure_of_status(status: int) -> Failure:
    if 400 <= status < 500:
        return Failure.CLIENT_ERROR
    if 500 <= status < 600:
        return Failure.SERVER_ERROR
    return Failure.OTHER


@dataclass(frozen=True)
class ConnectionOverrides:
    connect_timeout_ms: int = 5_000
    read_timeout_ms: int = 15_000
    total_timeout_ms: int = 15_000
    retry_count: int = 1
    retry_policy: frozenset[str] = frozenset({"ct"})

    def retries_after(self, failure: Failure) -> bool:
        """True when the policy retries an attempt that failed this way."""
        return "all" in self.retry_policy or failure.value in self.retry_policy

    def should_retry(self, failure: Failure, attempts_made: int) -> bool:
        """Retry after `attempts_made` attempts (the first attempt is not a retry)?"""
        return attempts_made <= self.retry_count and self.retries_after(failure)

    def apply_fragment(self, url: str) -> ConnectionOverrides:
        """These settings changed by the fragment of `url`."""
        fragment = urldefrag(url).fragment
        result = self
        for key, value in parse_qsl(fragment, keep_blank_values=False):
            result = _apply(result, key.strip().lower(), value.strip())
        return result


def parse_retry_policy(text: str) -> frozenset[str]:
    known = {"4xx", "5xx", "ct", "rt", "all"}
    return frozenset(p.strip().lower() for p in text.split(",")) & known


def _apply(overrides: ConnectionOverrides, key: str, value: str) -> ConnectionOverrides:
    if key == "rp":
        policy = parse_retry_policy(value)
        return replace(overrides, retry_policy=policy) if policy else overrides
    if not value.isdigit():
        return overrides
    number = int(value)
    if key == "rc":
        return replace(overrides, retry_count=min(number, MAX_RETRY_COUNT))
    timeouts = {
        "ct": "connect_timeout_ms",
        "rt": "read_timeout_ms",
        "tt": "total_timeout_ms",
    }
    if key in timeouts and number > 0:
        return replace(overrides, **{timeouts[key]: min(number, _MAX_TIMEOUT_MS)})
    return overrides


def backoff_seconds(attempts_made: int, base: float, cap: float = 60.0) -> float:
    """Delay before the next attempt: `base`, doubling per attempt, with jitter.

    With base 1 s: about 1, 2, 4, 8 ... seconds, each between 50% and 100% of that.
    """
    delay = min(cap, base * 2 ** max(0, attempts_made - 1))
    return delay * (0.5 + random.random() / 2)
