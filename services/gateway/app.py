"""The gateway's HTTP application: FastAPI on uvicorn, one ServiceRuntime inside.

`create_app(settings)` builds the app; its lifespan starts the runtime (NATS,
store, committer), bootstraps the account, loads credentials and configuration
into memory, and stops everything on shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from services.gateway.accounts import Accounts
from services.gateway.api_keys import ApiKeys, subscribe_credentials_changed
from services.gateway.configuration import ConfigurationStore
from services.gateway.context import Gateway
from services.gateway.errors import ERROR_TABLE, register_error_handlers
from services.gateway.identity import IDENTITY_ERROR_STATUSES, RateLimitHeaders
from services.gateway.rate_limit import RateLimiter, SharedRateLimiter
from services.gateway.routes import register_routes
from services.gateway.settings import GatewaySettings
from services.gateway.wire import Links
from shared.metrics import RequestMetricsMiddleware
from shared.runtime import ServiceRuntime
from shared.subjects import GATEWAY, SERVICES

logger = logging.getLogger(__name__)

ERROR_TABLE.update(IDENTITY_ERROR_STATUSES)



def build_gateway(settings: GatewaySettings) -> Gateway:
    """The runtime and the caches, not yet started."""
    runtime = ServiceRuntime(GATEWAY, settings)
    accounts = Accounts(runtime.db, runtime.committer, settings.secret_key)
    configuration = ConfigurationStore(runtime)
    api_keys = ApiKeys(runtime.db, settings.secret_key)
    limiter = SharedRateLimiter(
        runtime,
        RateLimiter(settings.rate_limit_per_second, settings.rate_limit_overrides),
        interval=settings.rate_limit_sync_ms / 1000,
    )

    async def reload_accounts(body: dict[str, Any]) -> None:
        if body.get("account_sid"):
            await accounts.load()

    subscribe_credentials_changed(runtime, api_keys.on_credentials_changed, reload_accounts)
    return Gateway(
        settings, runtime, accounts, configuration, Links(settings.public_url), api_keys, limiter
    )


async def _store_answers(gateway: Gateway) -> bool:
    """True when MongoDB answers a ping within a second."""
    try:
        await asyncio.wait_for(gateway.runtime.db.command("ping"), 1.0)
    except Exception:
        return False
    return True


def create_app(settings: GatewaySettings) -> FastAPI:
    """The FastAPI application serving TaskRouter's REST API."""
    gateway = build_gateway(settings)

    async def load_state() -> None:
        await gateway.accounts.bootstrap(settings.account_sid, settings.auth_token)
        await gateway.accounts.load()
        await gateway.api_keys.load()
        await gateway.rate_limiter.start()
        gateway.runtime.background(
            gateway.api_keys.refresh_forever(settings.credentials_refresh_seconds), "api-key-reload"
        )
        await gateway.configuration.start()

    gateway.runtime.on_ready(load_state)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await gateway.runtime.start()
        try:
            yield
        finally:
            await gateway.runtime.stop()

    app = FastAPI(
        title="TaskRouter (self-hosted)",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.gateway = gateway
    register_error_handlers(app)
    app.add_middleware(RateLimitHeaders)
    app.add_middleware(RequestMetricsMiddleware, service=GATEWAY, access_log=logger)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        """200 when all five services answer their readiness ping, else 503."""
        answers = await asyncio.gather(
            *(gateway.runtime.commands.ping(s) for s in SERVICES), _store_answers(gateway)
        )
        not_ready = [s for s, ready in zip((*SERVICES, "store"), answers, strict=True) if not ready]
        if not_ready:
            return JSONResponse({"status": "unavailable", "not_ready": not_ready}, 503)
        return JSONResponse({"status": "ok"})

    # TODO: the averaged per-workspace rate limits (429/20429, X-Rate-Limit-* headers) are not
    # enforced yet; every request is served. RateLimitedError is already mapped for them.
    register_routes(app)
    return app
