"""A read view of workspace configuration, for services that do not own it.

The gateway owns workspaces, activities, task channels, task queues and
workflows. Other services read a workspace's configuration from the store the
first time they need it and reload it when a configuration event arrives
(`refresh`). A miss always reads through, so a worker created right after its
workspace never finds the view behind.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from shared.models import Activity, TaskChannel, TaskQueue, Workflow, Workspace
from shared.storage import collections as c

logger = logging.getLogger(__name__)

CONFIG_EVENT_PREFIXES = ("workspace.", "activity.", "task-channel.", "task-queue.", "workflow.")
# Routing events share the `workflow.` and `task-queue.` prefixes but change no configuration.
_NOT_CONFIG = {
    "workflow.entered", "workflow.target-matched", "workflow.timeout", "workflow.skipped",
    "task-queue.entered", "task-queue.moved", "task-queue.timeout",
}


def is_configuration_event(event_type: str) -> bool:
    return event_type.startswith(CONFIG_EVENT_PREFIXES) and event_type not in _NOT_CONFIG


# The same set as subject patterns of the event scheme (`shared.subjects`), for
# subscribers that want configuration changes and not the routing events that
# share their prefixes. tests/unit/shared/test_config_event_subjects.py keeps the two agreeing.
CONFIGURATION_EVENT_TYPES = (
    "workspace.>",
    "activity.>",
    "task-channel.>",
    "task-queue.created",
    "task-queue.updated",
    "task-queue.deleted",
    "task-queue.expression.updated",
    "workflow.created",
    "workflow.updated",
    "workflow.deleted",
)


@dataclass
class WorkspaceConfig:
    """Everything configured in one workspace."""

    workspace: Workspace
    activities: dict[str, Activity] = field(default_factory=dict)
    channels: dict[str, TaskChannel] = field(default_factory=dict)
    queues: dict[str, TaskQueue] = field(default_factory=dict)
    workflows: dict[str, Workflow] = field(default_factory=dict)

    def channel(self, key: str) -> TaskChannel | None:
        """A task channel by SID or unique name."""
        found = self.channels.get(key)
        if found is not None:
            return found
        return next((ch for ch in self.channels.values() if ch.unique_name == key), None)


Listener = Callable[[str, WorkspaceConfig | None], Awaitable[None]]


class ConfigView:
    """Workspace configurations by workspace SID, loaded on demand."""

    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self._db = db
        self._configs: dict[str, WorkspaceConfig] = {}
        self._listeners: list[Listener] = []
        self._reloading: dict[str, asyncio.Lock] = {}

    def on_change(self, listener: Listener) -> None:
        """Call `listener(workspace_sid, config_or_None)` after every refresh."""
        self._listeners.append(listener)

    def cached(self, workspace_sid: str) -> WorkspaceConfig | None:
        return self._configs.get(workspace_sid)

    def all_cached(self) -> list[WorkspaceConfig]:
        """Every workspace configuration held right now (no store read)."""
        return list(self._configs.values())

    async def get(self, workspace_sid: str) -> WorkspaceConfig | None:
        """The configuration, read from the store on a miss; None if no such workspace."""
        config = self._configs.get(workspace_sid)
        if config is None:
            config = await self.refresh(workspace_sid)
        return config

    async def refresh(self, workspace_sid: str) -> WorkspaceConfig | None:
        """Reload one workspace from the store and tell the listeners.

        Reloads of one workspace run one at a time, so the one that starts last
        also finishes last: a slow reload that read the store before a change
        (say, prompted by an earlier event) cannot overwrite the reload made
        after it. Without this, a workspace fetched right after its deletion
        was sometimes still found.
        """
        lock = self._reloading.setdefault(workspace_sid, asyncio.Lock())
        async with lock:
            config = await self._load(workspace_sid)
            if config is None:
                self._configs.pop(workspace_sid, None)
            else:
                self._configs[workspace_sid] = config
        if config is None and not lock.locked():
            self._reloading.pop(workspace_sid, None)
        for listener in self._listeners:
            await listener(workspace_sid, config)
        return config

    async def load_all(self) -> list[str]:
        """Load every workspace (at start); returns their SIDs."""
        sids = [doc["_id"] async for doc in self._db[c.WORKSPACES].find({}, {"_id": 1})]
        for sid in sids:
            await self.refresh(sid)
        return sids

    async def _load(self, workspace_sid: str) -> WorkspaceConfig | None:
        doc = await self._db[c.WORKSPACES].find_one({"_id": workspace_sid})
        if doc is None:
            return None
        config = WorkspaceConfig(Workspace.from_document(doc))
        where = {"workspace_sid": workspace_sid}
        async for d in self._db[c.ACTIVITIES].find(where):
            config.activities[d["_id"]] = Activity.from_document(d)
        async for d in self._db[c.TASK_CHANNELS].find(where):
            config.channels[d["_id"]] = TaskChannel.from_document(d)
        async for d in self._db[c.TASK_QUEUES].find(where):
            config.queues[d["_id"]] = TaskQueue.from_document(d)
        async for d in self._db[c.WORKFLOWS].find(where):
            config.workflows[d["_id"]] = Workflow.from_document(d)
        return config
