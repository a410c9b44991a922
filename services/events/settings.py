"""Settings of the events service, read once at start-up."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from services.events.overrides import ConnectionOverrides, parse_retry_policy
from shared.settings import CommonSettings


def _env(name: str, field: str) -> AliasChoices:
    return AliasChoices(name, field)


class EventsSettings(CommonSettings):
    """Event log retention and webhook delivery."""

    event_retention_days: int = Field(
        30,
        validation_alias=_env(
            "TASKROUTER_EVENTS_RETENTION_DAYS", "event_retention_days"
        ),
        description="Days an event stays in the Events API before it expires.",
    )
    webhook_allow_private: bool = Field(
        False,
        validation_alias=_env(
            "TASKROUTER_WEBHOOK_ALLOW_PRIVATE", "webhook_allow_private"
        ),
        description="Allow webhooks to loopback, link-local and private addresses.",
    )
    webhook_concurrency: int = Field(
        64,
        validation_alias=_env("TASKROUTER_WEBHOOK_CONCURRENCY", "webhook_concurrency"),
        description="Webhook requests in flight at once, over all workspaces.",
    )
    webhook_workspace_concurrency: int = Field(
        4,
        validation_alias=_env(
            "TASKROUTER_WEBHOOK_WORKSPACE_CONCURRENCY", "webhook_workspace_concurrency"
        ),
        description="Requests in flight at once for one workspace; 1 keeps order.",
    )
    webhook_retry_count: int = Field(
        1,
        validation_alias=_env("TASKROUTER_WEBHOOK_RETRY_COUNT", "webhook_retry_count"),
        description="Default retries of an EventCallbackUrl delivery (Twilio's `rc`).",
    )
    webhook_retry_policy: str = Field(
        "ct",
        validation_alias=_env(
            "TASKROUTER_WEBHOOK_RETRY_POLICY", "webhook_retry_policy"
        ),
        description="Default failures retried (Twilio's `rp`): 4xx,5xx,ct,rt,all.",
    )
    webhook_connect_timeout_ms: int = Field(
        5_000,
        validation_alias=_env(
            "TASKROUTER_WEBHOOK_CONNECT_TIMEOUT_MS", "webhook_connect_timeout_ms"
        ),
    )
    webhook_read_timeout_ms: int = Field(
        15_000,
        validation_alias=_env(
            "TASKROUTER_WEBHOOK_READ_TIMEOUT_MS", "webhook_read_timeout_ms"
        ),
    )
    webhook_total_timeout_ms: int = Field(
        15_000,
        validation_alias=_env(
            "TASKROUTER_WEBHOOK_TOTAL_TIMEOUT_MS", "webhook_total_timeout_ms"
        ),
    )
    webhook_backoff_seconds: float = Field(
        1.0,
        validation_alias=_env(
            "TASKROUTER_WEBHOOK_BACKOFF_SECONDS", "webhook_backoff_seconds"
        ),
        description="Delay before the first retry; doubles per retry, at most 60 s.",
    )
    webhook_scan_interval_seconds: float = Field(
        5.0,
        validation_alias=_env(
            "TASKROUTER_WEBHOOK_SCAN_INTERVAL_SECONDS", "webhook_scan_interval_seconds"
        ),
        description="How often stored deliveries that are due are picked up.",
    )
    webhook_lease_seconds: float = Field(
        60.0,
        validation_alias=_env(
            "TASKROUTER_WEBHOOK_LEASE_SECONDS", "webhook_lease_seconds"
        ),
        description="How long a replica owns a delivery it attempts; then another may.",
    )
    webhook_max_in_memory: int = Field(
        10_000,
        validation_alias=_env(
            "TASKROUTER_WEBHOOK_MAX_IN_MEMORY", "webhook_max_in_memory"
        ),
        description="Deliveries held in memory; beyond it they wait in the store.",
    )
    webhook_keep_days: int = Field(
        7,
        validation_alias=_env("TASKROUTER_WEBHOOK_KEEP_DAYS", "webhook_keep_days"),
        description="Days a finished delivery record is kept for inspection.",
    )
    assignment_callback_timeout_seconds: float = Field(
        5.0,
        validation_alias=_env(
            "TASKROUTER_ASSIGNMENT_CALLBACK_TIMEOUT_SECONDS",
            "assignment_callback_timeout_seconds",
        ),
        description="Time an AssignmentCallbackUrl has to answer (Twilio: 5 s).",
    )

    def default_overrides(self) -> ConnectionOverrides:
        """Connection settings of a URL without a fragment."""
        return ConnectionOverrides(
            connect_timeout_ms=self.webhook_connect_timeout_ms,
            read_timeout_ms=self.webhook_read_timeout_ms,
            total_timeout_ms=self.webhook_total_timeout_ms,
            retry_count=self.webhook_retry_count,
            retry_policy=parse_retry_policy(self.webhook_retry_policy),
        )
