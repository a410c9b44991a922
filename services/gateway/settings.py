"""Settings of the gateway, read once at start-up (prefix `TASKROUTER_`)."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from services.gateway.identity_settings import IdentitySettings


class GatewaySettings(IdentitySettings):
    """Where the HTTP edge listens and which account it bootstraps."""

    http_host: str = Field(
        "127.0.0.1",
        validation_alias=AliasChoices("TASKROUTER_HTTP_HOST", "http_host"),
        description="Interface the HTTP server binds to.",
    )
    http_port: int = Field(
        8080,
        validation_alias=AliasChoices("TASKROUTER_HTTP_PORT", "http_port"),
        description="Port the HTTP server listens on.",
    )
    account_sid: str | None = Field(
        None,
        validation_alias=AliasChoices("TASKROUTER_ACCOUNT_SID", "account_sid"),
        description="Bootstrap account SID; generated and logged once when unset.",
    )
    auth_token: str | None = Field(
        None,
        validation_alias=AliasChoices("TASKROUTER_AUTH_TOKEN", "auth_token"),
        description="Auth token of the bootstrap account; generated when unset.",
    )
