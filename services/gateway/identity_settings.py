"""Settings of the gateway's API keys, rate limits and TLS (prefix `TASKROUTER_`).

`IdentitySettings` extends `CommonSettings`; the gateway's own settings class
inherits from it to read these fields too.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import NoDecode

from shared.settings import CommonSettings
from shared.sids import SidPrefix, is_sid


def parse_rate_limit_overrides(value: Any) -> dict[str, int]:
    """`AC…=200,WS…=20` or the JSON object `{"AC…": 200, "WS…": 20}` -> a dict.

    Keys are account or workspace SIDs; values are requests per second (> 0).
    """
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            value = json.loads(text)
        else:
            pairs = [part.partition("=") for part in text.split(",") if part.strip()]
            if any(not sep for _, sep, _ in pairs):
                raise ValueError(
                    f"expected SID=LIMIT pairs separated by commas, got {text!r}"
                )
            value = {sid.strip(): limit.strip() for sid, _, limit in pairs}
    if not isinstance(value, dict):
        raise TypeError(f"expected a mapping of SID to limit, got {value!r}")
    overrides = {}
    for sid, limit in value.items():
        if not (is_sid(sid, SidPrefix.ACCOUNT) or is_sid(sid, SidPrefix.WORKSPACE)):
            raise ValueError(f"rate-limit override key {sid!r} is no AC or WS SID")
        if int(limit) <= 0:
            raise ValueError(
                f"rate-limit override for {sid} must be positive, not {limit!r}"
            )
        overrides[sid] = int(limit)
    return overrides


class IdentitySettings(CommonSettings):
    """API-key cache refresh, averaged rate limits and the TLS policy."""

    credentials_refresh_seconds: float = Field(
        30.0,
        validation_alias=AliasChoices(
            "TASKROUTER_CREDENTIALS_REFRESH_SECONDS", "credentials_refresh_seconds"
        ),
        description="How often each gateway reloads API keys and accounts from the "
        "store, in case a credentials-changed broadcast was missed.",
    )
    rate_limit_per_second: int = Field(
        100,
        ge=0,
        validation_alias=AliasChoices(
            "TASKROUTER_RATE_LIMIT_PER_SECOND", "rate_limit_per_second"
        ),
        description="Requests per second per account, averaged over 10 s; 0 = off.",
    )
    # NoDecode: the environment value is parsed by `_overrides`, not as JSON only.
    rate_limit_overrides: Annotated[dict[str, int], NoDecode] = Field(
        default_factory=dict,
        validation_alias=AliasChoices(
            "TASKROUTER_RATE_LIMIT_OVERRIDES", "rate_limit_overrides"
        ),
        description="Per-account or per-workspace limits: `AC…=200,WS…=20` or JSON. "
        "A workspace with an override has its own budget, apart from its account's.",
    )
    rate_limit_sync_ms: int = Field(
        100,
        gt=0,
        validation_alias=AliasChoices(
            "TASKROUTER_RATE_LIMIT_SYNC_MS", "rate_limit_sync_ms"
        ),
        description="How often a gateway replica shares its request counts.",
    )
    tls_cert_file: str | None = Field(
        None,
        validation_alias=AliasChoices("TASKROUTER_TLS_CERT_FILE", "tls_cert_file"),
        description="PEM certificate (chain); with tls_key_file turns HTTPS on.",
    )
    tls_key_file: str | None = Field(
        None,
        validation_alias=AliasChoices("TASKROUTER_TLS_KEY_FILE", "tls_key_file"),
        description="PEM private key of tls_cert_file.",
    )
    allow_insecure_http: bool = Field(
        False,
        validation_alias=AliasChoices(
            "TASKROUTER_ALLOW_INSECURE_HTTP", "allow_insecure_http"
        ),
        description="Allow plain HTTP off loopback (e.g. behind a TLS proxy).",
    )

    @field_validator("rate_limit_overrides", mode="before")
    @classmethod
    def _overrides(cls, value: Any) -> dict[str, int]:
        return parse_rate_limit_overrides(value)
