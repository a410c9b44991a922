"""Fixtures of the per-operation suite: one recording client, one populated workspace.

`api` is the official client whose every answer is checked against the contract
(see `recorder.py`). `world` is a FIFO workspace with a worker made available and
a task reserved to it; tests that change or delete objects make their own.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from twilio.rest import Client

from tests.e2e.conftest import RunningSystem, eventually
from tests.e2e.operations.recorder import RecordingHttpClient


@dataclass
class Api:
    client: Client
    recorder: RecordingHttpClient

    @property
    def v1(self) -> Any:
        return self.client.taskrouter.v1

    def last_body(self) -> Any:
        """The raw JSON of the last answer."""
        return self.recorder.calls.latest.body


@pytest.fixture(scope="session")
def api(system: RunningSystem) -> Api:
    recorder = RecordingHttpClient()
    client = Client(system.account_sid, system.auth_token, http_client=recorder)
    client.taskrouter.base_url = system.base_url
    return Api(client, recorder)


@dataclass
class Reserved:
    """Tasks reserved to workers that only their own queue targets: every task
    to every worker (`max_reserved_workers` and channel capacity suffice)."""

    workers: list[Any]
    tasks: list[Any]
    reservation: Any  # of the first task to the first worker
    queue: Any
    workflow: Any

    @property
    def worker(self) -> Any:
        return self.workers[0]

    @property
    def task(self) -> Any:
        return self.tasks[0]


@dataclass
class World:
    workspace: Any
    ws: Any  # the WorkspaceContext
    available: Any
    offline: Any
    queue: Any
    workflow: Any
    reserved: Reserved
    reserve: Callable[..., Reserved]


def routing_to(queue_sid: str, **target: Any) -> str:
    """A workflow configuration sending every task to one queue."""
    return json.dumps(
        {
            "task_routing": {
                "filters": [],
                "default_filter": {"queue": queue_sid},
                **target,
            }
        }
    )


def make_reserve(ws: Any, available_sid: str) -> Callable[..., Reserved]:
    def reserve(workers: int = 1, tasks: int = 1) -> Reserved:
        tag = uuid.uuid4().hex[:12]
        queue = ws.task_queues.create(
            friendly_name=f"Q {tag}",
            target_workers=f"tag == '{tag}'",
            max_reserved_workers=workers,
        )
        workflow = ws.workflows.create(
            friendly_name=f"W {tag}", configuration=routing_to(queue.sid)
        )
        made = []
        for n in range(workers):
            worker = ws.workers.create(
                friendly_name=f"Worker {tag} {n}", attributes=json.dumps({"tag": tag})
            )
            ws.workers(worker.sid).worker_channels("default").update(capacity=tasks)
            made.append(ws.workers(worker.sid).update(activity_sid=available_sid))
        created = [
            ws.tasks.create(
                workflow_sid=workflow.sid, attributes=json.dumps({"tag": tag})
            )
            for _ in range(tasks)
        ]

        def all_reserved() -> bool:
            return all(
                len(ws.tasks(t.sid).reservations.list()) == workers for t in created
            )

        eventually(all_reserved)
        first = ws.tasks(created[0].sid).reservations.list(worker_sid=made[0].sid)[0]
        return Reserved(made, created, first, queue, workflow)

    return reserve


@pytest.fixture(scope="session")
def world(api: Api) -> Iterator[World]:
    workspace = api.v1.workspaces.create(
        friendly_name=f"Operations {uuid.uuid4().hex[:6]}", template="FIFO"
    )
    ws = api.v1.workspaces(workspace.sid)
    activities = {a.friendly_name: a for a in ws.activities.list()}
    queue = ws.task_queues.list()[0]
    workflow = ws.workflows.list()[0]
    reserve = make_reserve(ws, activities["Available"].sid)
    yield World(
        workspace,
        ws,
        activities["Available"],
        activities["Offline"],
        queue,
        workflow,
        reserve(workers=2, tasks=2),
        reserve,
    )
