"""One signed form POST to a receiver, reduced to an outcome the caller can act on."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import httpx

from services.events.address_guard import (
    BlockedDestinationError,
    Resolver,
    check_destination,
    resolve_host,
)
from services.events.overrides import ConnectionOverrides, Failure, failure_of_status
from services.events.signing import SIGNATURE_HEADER, compute_signature, request_url

logger = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"
USER_AGENT = "taskrouter-selfhosted-events/0.1"
_MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class Outcome:
    """What one attempt gave: a 2xx (`failure` None) or why it failed."""

    failure: Failure | None
    status: int | None = None
    body: bytes = b""
    content_type: str = ""
    detail: str = ""
    blocked: bool = False

    @property
    def delivered(self) -> bool:
        return self.failure is None


class Sender:
    """Posts signed forms with one shared HTTP client; a bad receiver never raises."""

    def __init__(
        self,
        *,
        allow_private: bool,
        max_connections: int = 64,
        resolver: Resolver = resolve_host,
    ) -> None:
        self._allow_private = allow_private
        self._resolver = resolver
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            limits=httpx.Limits(max_connections=max_connections),
            headers={"User-Agent": USER_AGENT},
            trust_env=False,
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def post(
        self,
        url: str,
        params: dict[str, str],
        *,
        auth_token: str | None,
        idempotency_token: str,
        overrides: ConnectionOverrides,
    ) -> Outcome:
        """POST `params` form-encoded to `url`, signed when `auth_token` is known."""
        target = request_url(url)
        try:
            # TODO: the HTTP client resolves the host again after this check, so a DNS
            # name that changes its answer in between (DNS rebinding) can still reach a
            # private address; pinning the checked address needs a custom transport.
            await check_destination(
                target, allow_private=self._allow_private, resolver=self._resolver
            )
        except BlockedDestinationError as exc:
            return Outcome(Failure.OTHER, detail=str(exc), blocked=True)
        headers = {IDEMPOTENCY_HEADER: idempotency_token}
        if auth_token is not None:
            headers[SIGNATURE_HEADER] = compute_signature(target, params, auth_token)
        return await self._send(target, params, headers, overrides)

    async def _send(
        self,
        url: str,
        params: dict[str, str],
        headers: dict[str, str],
        overrides: ConnectionOverrides,
    ) -> Outcome:
        timeout = httpx.Timeout(
            overrides.read_timeout_ms / 1000,
            connect=overrides.connect_timeout_ms / 1000,
        )
        try:
            async with asyncio.timeout(overrides.total_timeout_ms / 1000):
                status, content_type, body = await self._exchange(
                    url, params, headers, timeout
                )
        except httpx.ConnectError as exc:
            return Outcome(Failure.CONNECT, detail=type(exc).__name__)
        except httpx.ConnectTimeout:
            return Outcome(Failure.CONNECT, detail="ConnectTimeout")
        except (httpx.TimeoutException, TimeoutError):
            return Outcome(Failure.READ_TIMEOUT, detail="timed out")
        except httpx.HTTPError as exc:
            return Outcome(Failure.OTHER, detail=type(exc).__name__)
        failure = None if 200 <= status < 300 else failure_of_status(status)
        return Outcome(failure, status=status, body=body, content_type=content_type)

    async def _exchange(
        self,
        url: str,
        params: dict[str, str],
        headers: dict[str, str],
        timeout: httpx.Timeout,
    ) -> tuple[int, str, bytes]:
        """POST and read at most `_MAX_BODY` bytes of the reply; the rest is dropped."""
        request = self._client.build_request(
            "POST", url, data=params, headers=headers, timeout=timeout
        )
        response = await self._client.send(request, stream=True)
        try:
            body = b""
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) >= _MAX_BODY:
                    break
        finally:
            await response.aclose()
        content_type = response.headers.get("content-type", "")
        return response.status_code, content_type, body[:_MAX_BODY]
