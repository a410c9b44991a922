"""Seeding and polling shared by the partitioning tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from shared.models import TaskQueue, Workflow
from shared.partitions import partition_of
from shared.sids import SidPrefix, new_sid
from shared.storage import collections as c
from tests.seeding import seed_workspace


async def eventually(
    probe: Callable[[], Awaitable[Any]], what: str, seconds: float = 30.0
) -> Any:
    """Poll `probe` until it returns something truthy, or fail after `seconds`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        value = await probe()
        if value:
            return value
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def workspaces_covering(partitions: int) -> list[str]:
    """Workspace SIDs, at least one in each partition."""
    found: dict[int, str] = {}
    while len(found) < partitions:
        sid = new_sid(SidPrefix.WORKSPACE)
        found.setdefault(partition_of(sid, partitions), sid)
    return [found[p] for p in range(partitions)]


class Seeded:
    """One workspace as the gateway would store it: two queues, one workflow."""

    def __init__(self, workspace_sid: str, account_sid: str) -> None:
        self.account = account_sid
        self.workspace = workspace_sid
        self.available = new_sid(SidPrefix.ACTIVITY)
        self.offline = new_sid(SidPrefix.ACTIVITY)
        self.channel = new_sid(SidPrefix.TASK_CHANNEL)
        self.first_queue = new_sid(SidPrefix.TASK_QUEUE)
        self.second_queue = new_sid(SidPrefix.TASK_QUEUE)
        self.workflow = new_sid(SidPrefix.WORKFLOW)

    async def seed(
        self,
        db: Any,
        *,
        reservation_timeout: int = 120,
        first_step_timeout: int | None = None,
    ) -> None:
        """Store the configuration; with `first_step_timeout`, the first queue has no workers."""
        common = {"account_sid": self.account, "workspace_sid": self.workspace}
        await seed_workspace(
            db,
            account=self.account,
            workspace=self.workspace,
            available=self.available,
            offline=self.offline,
            channel=self.channel,
        )
        first_targets = "1==1" if first_step_timeout is None else "1==2"
        await db[c.TASK_QUEUES].insert_many(
            [
                TaskQueue(
                    sid=self.first_queue,
                    friendly_name="first",
                    target_workers=first_targets,
                    **common,
                ).to_document(),
                TaskQueue(
                    sid=self.second_queue, friendly_name="second", **common
                ).to_document(),
            ]
        )
        first: dict[str, Any] = {"queue": self.first_queue}
        if first_step_timeout is not None:
            first["timeout"] = first_step_timeout
        routing = {
            "task_routing": {
                "filters": [
                    {
                        "filter_friendly_name": "all",
                        "expression": "1==1",
                        "targets": [first, {"queue": self.second_queue}],
                    }
                ]
            }
        }
        await db[c.WORKFLOWS].insert_one(
            Workflow(
                sid=self.workflow,
                friendly_name="flow",
                configuration=orjson.dumps(routing).decode(),
                task_reservation_timeout=reservation_timeout,
                **common,
            ).to_document()
        )
