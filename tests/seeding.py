"""Workspace configuration written straight to the store, as the gateway stores it.

For tests of services other than the gateway: they need a workspace to exist
without running the gateway.
"""

from __future__ import annotations

from typing import Any

from shared.models import Activity, TaskChannel, Workspace
from shared.storage import collections as c


async def seed_workspace(
    db: Any, *, account: str, workspace: str, available: str, offline: str, channel: str
) -> None:
    """A workspace with activities Available and Offline and the `default` channel."""
    common = {"account_sid": account, "workspace_sid": workspace}
    await db[c.WORKSPACES].insert_one(
        Workspace(
            sid=workspace,
            account_sid=account,
            friendly_name="ws",
            default_activity_sid=offline,
            default_activity_name="Offline",
            timeout_activity_sid=offline,
            timeout_activity_name="Offline",
        ).to_document()
    )
    await db[c.ACTIVITIES].insert_many(
        [
            Activity(sid=available, friendly_name="Available", available=True, **common).to_document(),
            Activity(sid=offline, friendly_name="Offline", available=False, **common).to_document(),
        ]
    )
    await db[c.TASK_CHANNELS].insert_one(
        TaskChannel(sid=channel, friendly_name="Default", unique_name="default", **common).to_document()
    )
