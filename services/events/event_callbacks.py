"""Attempts of EventCallbackUrl deliveries (events.md §2)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from services.events.deliveries import (
    AttemptResult,
    DeliveryStatus,
    Finished,
    RetryLater,
    WebhookDelivery,
)
from services.events.overrides import ConnectionOverrides, backoff_seconds
from services.events.sender import Outcome, Sender

TokenLookup = Callable[[str], Awaitable[str | None]]


def describe(outcome: Outcome) -> str:
    """A short reason for the delivery record: `HTTP 503`, `ct: ConnectError`, ..."""
    if outcome.status is not None:
        return f"HTTP {outcome.status}"
    return f"{outcome.failure}: {outcome.detail}" if outcome.failure else "delivered"


class EventCallbacks:
    """One attempt: POST, then delivered, retry per the URL's overrides, or failed."""

    def __init__(
        self,
        sender: Sender,
        auth_token: TokenLookup,
        defaults: ConnectionOverrides,
        backoff_base: float,
    ) -> None:
        self._sender = sender
        self._auth_token = auth_token
        self._defaults = defaults
        self._backoff_base = backoff_base

    async def attempt(self, delivery: WebhookDelivery) -> AttemptResult:
        overrides = self._defaults.apply_fragment(delivery.url)
        outcome = await self._sender.post(
            delivery.url,
            delivery.params,
            auth_token=await self._auth_token(delivery.account_sid),
            idempotency_token=delivery.idempotency_token,
            overrides=overrides,
        )
        if outcome.delivered:
            return Finished(status=DeliveryStatus.DELIVERED)
        attempts_made = delivery.attempts + 1
        # A blocked destination stays blocked: a retry would only repeat it.
        retry = outcome.failure is not None and not outcome.blocked
        if retry and overrides.should_retry(outcome.failure, attempts_made):
            delay = backoff_seconds(attempts_made, self._backoff_base)
            return RetryLater(delay=delay, error=describe(outcome))
        return Finished(status=DeliveryStatus.FAILED, error=describe(outcome))
