"""What every route needs, reached through FastAPI dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from services.gateway.accounts import Accounts
from services.gateway.api_keys import ApiKeys
from services.gateway.configuration import ConfigurationStore
from services.gateway.identity import identify
from services.gateway.rate_limit import SharedRateLimiter
from services.gateway.settings import GatewaySettings
from services.gateway.wire import Links
from shared.runtime import ServiceRuntime


@dataclass
class Gateway:
    """The gateway's settings, runtime, credentials and configuration cache."""

    settings: GatewaySettings
    runtime: ServiceRuntime
    accounts: Accounts
    configuration: ConfigurationStore
    links: Links
    api_keys: ApiKeys
    rate_limiter: SharedRateLimiter


@dataclass(frozen=True)
class Caller:
    """Who made the request: the authenticated account and the client address."""

    account_sid: str
    ip_address: str | None


async def get_gateway(request: Request) -> Gateway:
    # async, so FastAPI calls it in the event loop instead of a worker thread.
    return request.app.state.gateway


async def get_caller(request: Request) -> Caller:
    """Authenticate, rate-limit and authorize the request (see `identity.identify`)."""
    gateway: Gateway = request.app.state.gateway
    identity = await identify(
        request, gateway.accounts, gateway.api_keys, gateway.rate_limiter, gateway.configuration.owner_of
    )
    client = request.client.host if request.client else None
    return Caller(identity.account_sid, client)


GatewayDep = Annotated[Gateway, Depends(get_gateway)]
CallerDep = Annotated[Caller, Depends(get_caller)]
