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
    """A task reserved to a worker that only its own queue targets."""

    worker: Any
    task: Any
    reservation: Any
    queue: Any
    workflow: Any


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
    return json.dumps({"task_routing": {"filters": [], "default_filter": {"queue": queue_sid},
                                        **target}})


def make_reserve(ws: Any, available_sid: str) -> Callable[..., Reserved]:
    def reserve(priority: int = 0, task_channel: str = "default") -> Reserved:
        tag = uuid.uuid4().hex[:12]
        queue = ws.task_queues.create(friendly_name=f"Q {tag}", target_workers=f"tag == '{tag}'")
        workflow = ws.workflows.create(friendly_name=f"W {tag}",
                                       configuration=routing_to(queue.sid))
        worker = ws.workers.create(friendly_name=f"Worker {tag}",
                                   attributes=json.dumps({"tag": tag}),
                                   activity_sid=available_sid)
        task = ws.tasks.create(workflow_sid=workflow.sid, priority=priority,
                               attributes=json.dumps({"tag": tag}), task_channel=task_channel)
        reservation = eventually(lambda: ws.tasks(task.sid).reservations.list())[0]
        return Reserved(worker, task, reservation, queue, workflow)

    return reserve


@pytest.fixture(scope="session")
def world(api: Api) -> Iterator[World]:
    workspace = api.v1.workspaces.create(friendly_name=f"Operations {uuid.uuid4().hex[:6]}",
                                         template="FIFO")
    ws = api.v1.workspaces(workspace.sid)
    activities = {a.friendly_name: a for a in ws.activities.list()}
    queue = ws.task_queues.list()[0]
    workflow = ws.workflows.list()[0]
    reserve = make_reserve(ws, activities["Available"].sid)
    yield World(workspace, ws, activities["Available"], activities["Offline"], queue, workflow,
                reserve(), reserve)
