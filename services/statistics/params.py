"""Parameters of statistics queries: SplitByWaitTime, TaskChannel, QueueSids."""

from __future__ import annotations

from typing import Any

from shared.config_view import WorkspaceConfig
from shared.errors import DomainValidationError
from shared.sids import SidPrefix, is_sid

MAX_BULK_QUEUES = 50


def parse_thresholds(value: Any) -> list[int] | None:
    """SplitByWaitTime as a list of whole seconds: `[5, 30]` or `"5,30"`."""
    if value in (None, "", []):
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    try:
        thresholds = [int(str(item).strip()) for item in items]
    except ValueError:
        raise DomainValidationError(
            f"SplitByWaitTime must be whole seconds separated by commas, got {value!r}",
            param="SplitByWaitTime",
        ) from None
    if any(t < 0 for t in thresholds):
        raise DomainValidationError(
            f"SplitByWaitTime thresholds cannot be negative, got {value!r}",
            param="SplitByWaitTime",
        )
    return thresholds


def channel_sid(config: WorkspaceConfig, key: Any) -> str | None:
    """The TaskChannel SID named by a SID or unique name; None when not given."""
    if key in (None, ""):
        return None
    channel = config.channel(str(key))
    if channel is not None:
        return channel.sid
    if is_sid(key, SidPrefix.TASK_CHANNEL):
        return str(key)
    raise DomainValidationError(
        f"TaskChannel {key!r} does not exist", param="TaskChannel"
    )


def bulk_queue_sids(value: Any) -> list[str]:
    """The 1 to 50 well-formed task queue SIDs of a bulk real-time request."""
    sids = value if isinstance(value, list) else []
    if not 1 <= len(sids) <= MAX_BULK_QUEUES:
        raise DomainValidationError(
            f"QueueSids must list 1 to {MAX_BULK_QUEUES} task queue SIDs, "
            f"got {len(sids)}",
            param="QueueSids",
        )
    for sid in sids:
        if not is_sid(sid, SidPrefix.TASK_QUEUE):
            raise DomainValidationError(
                f"QueueSids holds a malformed task queue SID: {sid!r}",
                param="QueueSids",
            )
    return sids
