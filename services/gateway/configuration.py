"""The gateway's configuration: the only writer of workspaces, activities, task
channels, task queues and workflows, and an in-memory cache of all of them.

Reads come from the cache (`ConfigView`), loaded at start. Every write goes
through the committer with its events, then the cached workspace is reloaded,
so this replica reads its own writes at once. Other replicas learn of the
change from the configuration events (a plain NATS subscription, so every
replica gets every event) and reload that workspace.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel

from shared.config_view import CONFIGURATION_EVENT_TYPES, ConfigView, WorkspaceConfig
from shared.errors import NotFoundError
from shared.events import Event, make_event
from shared.models import TaskStatus, Workspace
from shared.runtime import ServiceRuntime
from shared.sids import SidPrefix, is_sid
from shared.storage import collections as c
from shared.storage.committer import Write

logger = logging.getLogger(__name__)

OPEN_TASK_STATUSES = [str(s) for s in TaskStatus if not s.is_terminal]


class ConfigurationStore:
    """Cached configuration of every workspace, and the way to change it."""

    def __init__(self, runtime: ServiceRuntime) -> None:
        self._runtime = runtime
        self._db = runtime.db
        self.view = ConfigView(runtime.db)
        self._subscribe_to_changes()

    def _subscribe_to_changes(self) -> None:
        subjects = self._runtime.subjects

        async def on_configuration_event(body: dict) -> None:
            workspace_sid = body.get("workspace_sid")
            if workspace_sid:
                await self.view.refresh(workspace_sid)

        for event_type in CONFIGURATION_EVENT_TYPES:
            self._runtime.broker.subscriber(subjects.events_matching(event_type=event_type))(
                on_configuration_event
            )

    async def start(self) -> None:
        """Create the indexes of the configuration collections and fill the cache."""
        by_workspace = IndexModel([("workspace_sid", ASCENDING)])
        for name in (c.ACTIVITIES, c.TASK_QUEUES, c.WORKFLOWS):
            await self._db[name].create_indexes([by_workspace])
        await self._db[c.TASK_CHANNELS].create_indexes(
            [
                by_workspace,
                IndexModel(
                    [("workspace_sid", ASCENDING), ("unique_name", ASCENDING)], unique=True
                ),
            ]
        )
        await self._db[c.WORKSPACES].create_indexes([IndexModel([("account_sid", ASCENDING)])])
        loaded = await self.view.load_all()
        logger.info("configuration loaded", extra={"workspaces": len(loaded)})

    # -- reads ----------------------------------------------------------------
    def workspaces_of(self, account_sid: str) -> list[Workspace]:
        """Every cached workspace of an account."""
        return [
            config.workspace
            for config in self.view.all_cached()
            if config.workspace.account_sid == account_sid
        ]

    def owner_of(self, workspace_sid: str) -> str | None:
        """The account owning a workspace, from the cache (every workspace is loaded at start)."""
        config = self.view.cached(workspace_sid)
        return None if config is None else config.workspace.account_sid

    async def config(self, account_sid: str, workspace_sid: str) -> WorkspaceConfig:
        """One workspace of the account; 404 when missing or someone else's."""
        found = None
        if is_sid(workspace_sid, SidPrefix.WORKSPACE):
            found = await self.view.get(workspace_sid)
        if found is None or found.workspace.account_sid != account_sid:
            raise NotFoundError("Workspace", workspace_sid)
        return found

    async def worker_holds(self, workspace_sid: str, field: str, value: str) -> bool:
        """True when some worker of the workspace has `field == value` (read-only)."""
        doc = await self._db[c.WORKERS].find_one(
            {"workspace_sid": workspace_sid, field: value}, {"_id": 1}
        )
        return doc is not None

    async def open_task_uses(self, workspace_sid: str, field: str, value: str) -> bool:
        """True when a non-terminal task of the workspace has `field == value`."""
        doc = await self._db[c.TASKS].find_one(
            {
                "workspace_sid": workspace_sid,
                field: value,
                "assignment_status": {"$in": OPEN_TASK_STATUSES},
            },
            {"_id": 1},
        )
        return doc is not None

    # -- writes ---------------------------------------------------------------
    async def commit(
        self, workspace_sid: str, writes: Sequence[Write], events: Sequence[Event]
    ) -> WorkspaceConfig | None:
        """Write and publish durably, then reload the cached workspace."""
        await self._runtime.committer.commit(writes, events)
        for event in events:
            logger.info(
                "configuration changed",
                extra={"event_type": event.event_type, "resource_sid": event.resource_sid},
            )
        return await self.view.refresh(workspace_sid)


def config_event(
    event_type: str,
    *,
    account_sid: str,
    workspace_sid: str,
    resource_type: str,
    resource_sid: str,
    at: datetime,
    data: dict[str, Any],
    description: str,
    source_ip_address: str | None = None,
) -> Event:
    """An event for a change made through the API: the account is the actor."""
    event = make_event(
        event_type,
        account_sid=account_sid,
        workspace_sid=workspace_sid,
        resource_type=resource_type,
        resource_sid=resource_sid,
        at=at,
        description=description,
        data=data,
        actor_type="account",
        actor_sid=account_sid,
    )
    event.source_ip_address = source_ip_address
    return event
