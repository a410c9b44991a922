"""Who is calling, may they, and not too often: the checks every request passes.

`identify(request, ...)` runs, in order:
1. authentication: HTTP Basic with `AC…`/auth token (`Accounts`) or `SK…`/secret
   (`ApiKeys`); 401 / 20003 when wrong, 403 / 20403 for a suspended account;
2. the averaged rate limit of the caller's account (or of the workspace, when it
   has an override); 429 / 20429 with `Retry-After` when over it. Every
   authenticated request counts, also one the next step refuses;
3. the permissions of a restricted key for the matched route; 403 / 70051.

The rate-limit decision is left on `request.state.rate_limit`, and the
`rate_limit_headers` middleware copies its `X-Rate-Limit-*` headers onto the
answer, error answers included. Unauthenticated requests carry none.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from fastapi import Request, Response

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
    request: Request, accounts: Accounts, api_keys: ApiKeys, limiter: Limiter
) -> Identity:
    """Authenticate, rate-limit and authorize one request (see the module docstring)."""
    # TODO: failed authentications are not rate-limited (there is no account to
    # charge them to), so guessing credentials is only slowed by the HMAC check.
    identity = await authenticate(
        request.headers.get("authorization"), accounts, api_keys
    )

    decision = limiter.check(identity.account_sid, workspace_of(request))
    request.state.rate_limit = decision
    decision.enforce()

    check_permission(
        identity.permissions, request.method, route_template(request), request.url.path
    )
    return identity


async def rate_limit_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """HTTP middleware: put the request's rate-limit headers on its answer."""
    response = await call_next(request)
    decision: Decision | None = getattr(request.state, "rate_limit", None)
    if decision is not None:
        response.headers.update(decision.headers())
    return response
