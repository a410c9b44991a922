"""Who is calling, may they, and not too often: the checks every request passes.

`identify(request, ...)` runs, in order:
1. authentication: HTTP Basic with `AC…`/auth token (`Accounts`) or `SK…`/secret
   (`ApiKeys`); 401 / 20003 when wrong, 403 / 20403 for a suspended account;
2. the averaged rate limit of the caller's account (or of the workspace, when it
   has an override); 429 / 20429 with `Retry-After` when over it. Every
   authenticated request counts, also one the next step refuses;
3. the permissions of a restricted key for the matched route; 403 / 70051.

The rate-limit decision is left on `request.state.rate_limit`, and the
`RateLimitHeaders` middleware copies its `X-Rate-Limit-*` headers onto the
answer, error answers included. Unauthenticated requests carry none.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import Request
from starlette.datastructures import MutableHeaders

from services.gateway.accounts import Accounts, parse_basic_auth
from services.gateway.api_keys import ApiKeys
from services.gateway.errors import ErrorStatus
from services.gateway.permissions import (
    PERMISSION_DENIED_CODE,
    KeyPermissionDeniedError,
    PermissionSet,
    check_permission,
)
from services.gateway.rate_limit import Decision
from shared.sids import SidPrefix

# Merge into services.gateway.errors.ERROR_TABLE (looked up along the MRO, so it
# wins over PermissionDeniedError's 20403 for restricted keys only).
IDENTITY_ERROR_STATUSES = {
    KeyPermissionDeniedError: ErrorStatus(403, PERMISSION_DENIED_CODE)
}


class Limiter(Protocol):
    def check(self, account_sid: str, workspace_sid: str | None = None) -> Decision: ...


@dataclass(frozen=True)
class Identity:
    """The authenticated caller: its account, and the API key used, if any."""

    account_sid: str
    key_sid: str | None = None
    permissions: PermissionSet | None = None  # None: allowed everything


async def authenticate(
    header: str | None, accounts: Accounts, api_keys: ApiKeys
) -> Identity:
    """The identity an `Authorization` header proves; raises AuthenticationError."""
    username, password = parse_basic_auth(header)
    if username.startswith(SidPrefix.API_KEY):
        key = await api_keys.authenticate(username, password)
        return Identity(key.account_sid, key.key_sid, key.permissions)
    return Identity(await accounts.authenticate(header))


def workspace_of(request: Request) -> str | None:
    """The workspace a request addresses, from the matched route's path parameters."""
    params = request.path_params
    if "workspace_sid" in params:
        return params["workspace_sid"]
    sid = params.get("sid")
    if isinstance(sid, str) and sid.startswith(SidPrefix.WORKSPACE):
        return sid  # /v1/Workspaces/{sid}
    return None


def route_template(request: Request) -> str:
    """The route's path with placeholders: `/v1/Workspaces/{workspace_sid}/…`."""
    route = request.scope.get("route")
    return getattr(route, "path", request.url.path)


async def identify(
    request: Request,
    accounts: Accounts,
    api_keys: ApiKeys,
    limiter: Limiter,
    owner_of: Callable[[str], str | None],
) -> Identity:
    """Authenticate, rate-limit and authorize one request (see the module docstring).

    `owner_of(workspace_sid)` names the account owning a workspace (None when
    unknown): a workspace's own budget is charged only by its own account, so
    another account can neither use it up nor tell from it that the workspace exists.
    """
    # TODO: failed authentications are not rate-limited (there is no account to
    # charge them to), so guessing credentials is only slowed by the HMAC check.
    identity = await authenticate(
        request.headers.get("authorization"), accounts, api_keys
    )

    workspace_sid = workspace_of(request)
    if workspace_sid is not None and owner_of(workspace_sid) != identity.account_sid:
        workspace_sid = None  # someone else's or no workspace: the caller's own budget
    decision = limiter.check(identity.account_sid, workspace_sid)
    request.state.rate_limit = decision
    decision.enforce()

    check_permission(
        identity.permissions, request.method, route_template(request), request.url.path
    )
    return identity


class RateLimitHeaders:
    """ASGI middleware: put the request's rate-limit headers on its answer.

    A plain ASGI middleware rather than `@app.middleware("http")`: Starlette's
    `BaseHTTPMiddleware` costs a task and a stream per request, a measurable share
    of the gateway's CPU per created task. The decision is read from the
    request's state (`scope["state"]`) when the answer starts.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                decision: Decision | None = (scope.get("state") or {}).get("rate_limit")
                if decision is not None:
                    headers = MutableHeaders(scope=message)
                    for name, value in decision.headers().items():
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)