"""Helpers for the events service integration tests: receiver, configuration, events."""

from __future__ import annotations

import asyncio
import queue
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from services.events.settings import EventsSettings
from shared.events import make_event
from shared.models import Workflow, Workspace, utcnow
from shared.runtime import ServiceRuntime
from shared.secrets import encrypt_secret
from shared.settings import load
from shared.storage import collections as c

AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
ACCOUNT = "AC" + "1" * 32
WORKSPACE = "WS" + "1" * 32
WORKFLOW = "WW" + "1" * 32


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    form: dict[str, str]


Reply = tuple[int, str, bytes]


@dataclass
class Receiver:
    """A local HTTP server recording every POST; replies come from `reply(request)`."""

    base_url: str
    requests: queue.Queue[Received] = field(default_factory=queue.Queue)
    reply: Callable[[Received], Reply] = lambda request: (204, "application/json", b"")

    async def next(self, timeout: float = 30.0) -> Received:
        """The next request, waiting at most `timeout` seconds."""
        return await asyncio.to_thread(self.requests.get, True, timeout)


def events_settings(env: dict[str, str], **overrides: str) -> EventsSettings:
    return load(
        EventsSettings,
        {
            **env,
            "TASKROUTER_WEBHOOK_ALLOW_PRIVATE": "true",
            "TASKROUTER_WEBHOOK_BACKOFF_SECONDS": "0.05",
            "TASKROUTER_WEBHOOK_SCAN_INTERVAL_SECONDS": "0.2",
            "TASKROUTER_WEBHOOK_WORKSPACE_CONCURRENCY": "1",
            **overrides,
        },
    )


async def seed_configuration(
    runtime: ServiceRuntime,
    *,
    event_callback_url: str | None = None,
    events_filter: str | None = None,
    assignment_callback_url: str | None = None,
    fallback_assignment_callback_url: str | None = None,
) -> None:
    """Write what the gateway would own: the account, the workspace, one workflow."""
    db = runtime.db
    await db[c.ACCOUNTS].insert_one(
        {
            "_id": ACCOUNT,
            "auth_token_encrypted": encrypt_secret(
                runtime.settings.secret_key, AUTH_TOKEN
            ),
        }
    )
    workspace = Workspace(
        sid=WORKSPACE,
        account_sid=ACCOUNT,
        friendly_name="Support",
        event_callback_url=event_callback_url,
        events_filter=events_filter,
    )
    workflow = Workflow(
        sid=WORKFLOW,
        account_sid=ACCOUNT,
        workspace_sid=WORKSPACE,
        friendly_name="Main",
        configuration="{}",
        assignment_callback_url=assignment_callback_url,
        fallback_assignment_callback_url=fallback_assignment_callback_url,
    )
    await db[c.WORKSPACES].insert_one(workspace.to_document())
    await db[c.WORKFLOWS].insert_one(workflow.to_document())


def task_event(
    event_type: str = "task.created", task_sid: str = "WT" + "1" * 32, **data: Any
):
    return make_event(
        event_type,
        account_sid=ACCOUNT,
        workspace_sid=WORKSPACE,
        resource_type="task",
        resource_sid=task_sid,
        at=utcnow(),
        description=f"Task {task_sid} event",
        data={"task_sid": task_sid, "task_attributes": '{"type": "support"}', **data},
    )


def reservation_created(reservation_sid: str = "WR" + "1" * 32):
    return make_event(
        "reservation.created",
        account_sid=ACCOUNT,
        workspace_sid=WORKSPACE,
        resource_type="reservation",
        resource_sid=reservation_sid,
        at=utcnow(),
        description="Reservation created",
        data={
            "task_sid": "WT" + "2" * 32,
            "task_attributes": '{"type": "support"}',
            "task_age": "0",
            "task_priority": "0",
            "task_queue_sid": "WQ" + "1" * 32,
            "workflow_sid": WORKFLOW,
            "reservation_sid": reservation_sid,
            "worker_sid": "WK" + "1" * 32,
            "worker_attributes": '{"languages": ["fr"]}',
        },
    )


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 30.0) -> Any:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.02)
