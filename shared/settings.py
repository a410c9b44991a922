"""Settings every service reads from the environment once, at start-up.

Each service has its own `settings.py` subclassing `CommonSettings`. Build them with
`load(SettingsClass, mapping)` in tests so no test depends on the real environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    """Connection and naming settings shared by all five services."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    nats_url: str = Field(
        "nats://127.0.0.1:4222",
        validation_alias=AliasChoices("NATS_URL", "nats_url"),
        description="NATS server URL(s), comma-separated for a cluster.",
    )
    mongodb_url: str = Field(
        "mongodb://127.0.0.1:27017/?retryWrites=false",
        validation_alias=AliasChoices("MONGODB_URL", "mongodb_url"),
        description="MongoDB connection string.",
    )
    mongodb_database: str = Field(
        "taskrouter",
        validation_alias=AliasChoices("MONGODB_DATABASE", "mongodb_database"),
        description="Database holding every collection of the system.",
    )
    subject_prefix: str = Field(
        "taskrouter",
        validation_alias=AliasChoices("TASKROUTER_SUBJECT_PREFIX", "subject_prefix"),
        description="First token of every NATS subject the system uses.",
    )
    public_url: str = Field(
        "http://127.0.0.1:8080",
        validation_alias=AliasChoices("TASKROUTER_PUBLIC_URL", "public_url"),
        description="Base URL that clients use; embedded in every url and link.",
    )
    command_restart_wait: float = Field(
        10.0,
        ge=0,
        validation_alias=AliasChoices("TASKROUTER_COMMAND_RESTART_WAIT", "command_restart_wait"),
        description="Seconds a command waits for a restarting service (nobody subscribed) before 503.",
    )
    log_level: str = Field(
        "INFO",
        validation_alias=AliasChoices("TASKROUTER_LOG_LEVEL", "log_level"),
    )
    log_format: str = Field(
        "json",
        validation_alias=AliasChoices("TASKROUTER_LOG_FORMAT", "log_format"),
        description="'json' for JSON lines, 'text' for people reading a terminal.",
    )
    secret_key: str = Field(
        "dev-only-insecure-secret-key-change-me",
        validation_alias=AliasChoices("TASKROUTER_SECRET_KEY", "secret_key"),
        description="Key for hashing API-key secrets and encrypting auth tokens.",
    )
    event_stream_max_age_days: int = Field(
        7,
        validation_alias=AliasChoices(
            "TASKROUTER_EVENT_STREAM_MAX_AGE_DAYS", "event_stream_max_age_days"
        ),
        description="How long the JetStream event stream keeps events.",
    )
    event_stream_replicas: int = Field(
        1,
        ge=1,
        le=5,
        validation_alias=AliasChoices(
            "TASKROUTER_EVENT_STREAM_REPLICAS", "event_stream_replicas"
        ),
        description="Copies of the event stream in a NATS cluster (3 in production).",
    )
    metrics_port: int = Field(
        0,
        validation_alias=AliasChoices("TASKROUTER_METRICS_PORT", "metrics_port"),
        description="Port for /metrics, /livez and /readyz (see shared.health); 0 = off.",
    )
    metrics_host: str = Field(
        "127.0.0.1",
        validation_alias=AliasChoices("TASKROUTER_METRICS_HOST", "metrics_host"),
        description="Interface the metrics and probe server binds to ('0.0.0.0' in a pod).",
    )

    partitioning: bool = Field(
        False,
        validation_alias=AliasChoices("TASKROUTER_PARTITIONING", "partitioning"),
        description=(
            "'on' spreads workspaces over queue-dispatcher and workflow-router "
            "replicas (see shared.partitions); every service must agree on it."
        ),
    )
    partitions: int = Field(
        16,
        ge=1,
        le=1024,
        validation_alias=AliasChoices("TASKROUTER_PARTITIONS", "partitions"),
        description="Number of workspace partitions; the same in every service.",
    )
    lease_ttl_seconds: float = Field(
        5.0,
        gt=0,
        validation_alias=AliasChoices(
            "TASKROUTER_LEASE_TTL_SECONDS", "lease_ttl_seconds"
        ),
        description=(
            "How long a partition lease outlives its holder; a dead replica's "
            "partitions are taken over after about this long."
        ),
    )

    @property
    def partitioned(self) -> bool:
        """True when workspaces are split between replicas (on, and more than one)."""
        return self.partitioning and self.partitions > 1


S = TypeVar("S", bound=BaseSettings)


def load(cls: type[S], environ: Mapping[str, str] | None = None) -> S:
    """Build settings from `environ` (default: the process environment)."""
    if environ is None:
        return cls()
    return cls.model_validate(dict(environ))
