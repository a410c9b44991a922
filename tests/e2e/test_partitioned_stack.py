"""The whole system with partitioning on and two dispatchers and two routers.

Driven with the official `twilio` client, as users would: tasks in several
workspaces are reserved, accepted and completed while workspaces are spread
over two queue-dispatcher and two workflow-router replicas; then one replica
of each is killed and new tasks in every workspace are still reserved.
"""

from __future__ import annotations

import json
import secrets

import pytest
from twilio.rest import Client

from services import devstack
from services.__main__ import start_stack, wait_healthy
from shared.sids import SidPrefix, new_sid
from tests.e2e.conftest import eventually

pytestmark = pytest.mark.e2e

WORKSPACES = 6


@pytest.fixture
def partitioned(backends, tmp_path, monkeypatch):
    port = devstack.free_port()
    monkeypatch.setenv("TASKROUTER_HTTP_PORT", str(port))
    env = {
        **backends,
        "TASKROUTER_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "TASKROUTER_ACCOUNT_SID": new_sid(SidPrefix.ACCOUNT),
        "TASKROUTER_AUTH_TOKEN": secrets.token_hex(16),
        "MONGODB_DATABASE": f"part_{secrets.token_hex(4)}",
        "TASKROUTER_SUBJECT_PREFIX": f"pt{secrets.token_hex(4)}",
        "TASKROUTER_PARTITIONING": "on",
        "TASKROUTER_PARTITIONS": "4",
        "TASKROUTER_LEASE_TTL_SECONDS": "2",
    }
    stack = start_stack(tmp_path, env)
    try:
        for module in ("services.queue_dispatcher", "services.workflow_router"):
            name = module.rsplit(".", 1)[-1]
            log = tmp_path / "logs" / f"{name}-2.log"
            stack.processes.append(devstack.start_service(module, stack.env, log))
        wait_healthy(env["TASKROUTER_PUBLIC_URL"])
        client = Client(env["TASKROUTER_ACCOUNT_SID"], env["TASKROUTER_AUTH_TOKEN"])
        client.taskrouter.base_url = env["TASKROUTER_PUBLIC_URL"]
        yield client, stack
    finally:
        stack.stop()


def _workspace(client: Client, index: int):
    created = client.taskrouter.v1.workspaces.create(
        friendly_name=f"Partitioned {index}", template="FIFO"
    )
    ws = client.taskrouter.v1.workspaces(created.sid)
    available = next(
        a.sid for a in ws.activities.list() if a.friendly_name == "Available"
    )
    worker = ws.workers.create(friendly_name="Ada", activity_sid=available)
    ws.workers(worker.sid).worker_channels("default").update(capacity=3)
    return ws, worker


def _reserved(ws, task_sid: str):
    return eventually(lambda: ws.tasks(task_sid).reservations.list(), timeout=45)[0]


def test_tasks_flow_while_replicas_share_and_take_over_workspaces(partitioned):
    client, stack = partitioned
    spaces = [_workspace(client, i) for i in range(WORKSPACES)]

    for ws, worker in spaces:
        task = ws.tasks.create(attributes=json.dumps({"n": 1}))
        reservation = _reserved(ws, task.sid)
        assert reservation.worker_sid == worker.sid
        ws.tasks(task.sid).reservations(reservation.sid).update(
            reservation_status="accepted"
        )
        ws.tasks(task.sid).update(assignment_status="completed", reason="done")
        assert ws.tasks(task.sid).fetch().assignment_status == "completed"

    # One dispatcher and one router die without handing anything over.
    for name in ("queue_dispatcher", "workflow_router"):
        next(p for p in stack.processes if p.name == name).kill()

    tasks = [
        (ws, worker, ws.tasks.create(attributes=json.dumps({"n": 2})))
        for ws, worker in spaces
    ]
    for ws, worker, task in tasks:
        _reserved(ws, task.sid)
        reservations = ws.tasks(task.sid).reservations.list()
        assert len(reservations) == 1
        assert reservations[0].worker_sid == worker.sid
