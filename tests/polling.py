"""Waiting for asynchronous work in tests: poll a condition until a deadline.

Tests never sleep a fixed time hoping work is done; they poll what they expect
and fail with the last assertion (or a clear message) when the deadline passes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(
    check: Callable[[], T], timeout: float = 20.0, interval: float = 0.05, what: str = ""
) -> T:
    """Call `check` until it returns something truthy; return that value."""
    deadline = time.monotonic() + timeout
    last_error: AssertionError | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except AssertionError as exc:
            last_error = exc
        threading.Event().wait(interval)  # the pause between two polls
    if last_error:
        raise last_error
    raise AssertionError(f"condition not met within {timeout}s {what}".rstrip())
