"""Stopping and starting things keeps state: the whole system, one service, NATS.

These tests start their own stack (own nats-server and store processes in a
temporary data directory, unless NATS_URL/MONGODB_URL name external servers), so
restarting NATS here does not disturb the other end-to-end tests.
"""

from __future__ import annotations

import json
import secrets
import subprocess

import pytest
from twilio.rest import Client

from services import devstack
from services.__main__ import start_stack, wait_healthy
from shared.sids import SidPrefix, new_sid
from tests.e2e.conftest import eventually

pytestmark = pytest.mark.e2e


@pytest.fixture
def own_stack(tmp_path, monkeypatch):
    """A private system whose processes the test may stop and start."""
    port = devstack.free_port()
    monkeypatch.setenv("TASKROUTER_NATS_PORT", str(devstack.free_port()))
    monkeypatch.setenv("TASKROUTER_STORE_PORT", str(devstack.free_port()))
    env = {
        "TASKROUTER_HTTP_PORT": str(port),
        "TASKROUTER_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "TASKROUTER_ACCOUNT_SID": new_sid(SidPrefix.ACCOUNT),
        "TASKROUTER_AUTH_TOKEN": secrets.token_hex(16),
        "MONGODB_DATABASE": f"restart_{secrets.token_hex(4)}",
        "TASKROUTER_SUBJECT_PREFIX": f"rs{secrets.token_hex(4)}",
    }
    stacks: list[devstack.Stack] = []

    def start() -> Client:
        stack = start_stack(tmp_path, env)
        stacks.append(stack)
        wait_healthy(env["TASKROUTER_PUBLIC_URL"])
        client = Client(env["TASKROUTER_ACCOUNT_SID"], env["TASKROUTER_AUTH_TOKEN"])
        client.taskrouter.base_url = env["TASKROUTER_PUBLIC_URL"]
        return client

    yield start, stacks
    for stack in stacks:
        stack.stop()


def _workspace_with_available_worker(client: Client):
    workspace = client.taskrouter.v1.workspaces.create(friendly_name="Durable", template="FIFO")
    ws = client.taskrouter.v1.workspaces(workspace.sid)
    available = next(a.sid for a in ws.activities.list() if a.friendly_name == "Available")
    worker = ws.workers.create(friendly_name="Ada", attributes=json.dumps({"skills": ["en"]}))
    return ws, worker, available


def test_whole_system_restart_keeps_workspaces_and_tasks(own_stack):
    start, stacks = own_stack
    client = start()
    ws, worker, available = _workspace_with_available_worker(client)
    waiting = ws.tasks.create(attributes=json.dumps({"n": 1}))
    eventually(lambda: ws.tasks(waiting.sid).fetch().task_queue_sid)

    stacks[-1].stop()
    client = start()
    ws = client.taskrouter.v1.workspaces(ws._solution["sid"])

    assert ws.fetch().friendly_name == "Durable"
    assert ws.tasks(waiting.sid).fetch().assignment_status == "pending"
    ws.workers(worker.sid).update(activity_sid=available)
    reservation = eventually(lambda: ws.tasks(waiting.sid).reservations.list())[0]
    assert reservation.worker_sid == worker.sid


@pytest.mark.parametrize("service", ["queue_dispatcher", "workflow_router", "events", "gateway"])
def test_a_killed_service_loses_nothing(own_stack, service, tmp_path):
    start, stacks = own_stack
    client = start()
    ws, worker, available = _workspace_with_available_worker(client)
    ws.workers(worker.sid).worker_channels("default").update(capacity=2)
    ws.workers(worker.sid).update(activity_sid=available)
    first = ws.tasks.create(attributes=json.dumps({"n": 1}))

    stack = stacks[-1]
    index = next(i for i, p in enumerate(stack.processes) if p.name == service)
    stack.processes[index].kill()
    module = next(m for m in devstack.SERVICE_MODULES if m.endswith(service))
    stack.processes[index] = devstack.start_service(module, stack.env, tmp_path / "logs" / f"{service}.log")
    wait_healthy(stack.env["TASKROUTER_PUBLIC_URL"])

    second = ws.tasks.create(attributes=json.dumps({"n": 2}))
    # A service killed inside a store transaction leaves it open; the documents it
    # held conflict until the store reaps it, up to 60 s later (MongoDB does the
    # same), and the events that touch them are retried with back-off past that.
    for task in (first, second):
        eventually(lambda t=task: ws.tasks(t.sid).reservations.list(), timeout=120)
    reservations = [r for t in (first, second) for r in ws.tasks(t.sid).reservations.list()]
    assert len(reservations) == 2
    assert {r.worker_sid for r in reservations} == {worker.sid}

    def all_logged() -> bool:
        types = [e.event_type for e in ws.events.list(event_type="reservation.created")]
        return len(types) == 2

    eventually(all_logged)


def test_nats_restart_mid_flow_loses_nothing(own_stack):
    start, stacks = own_stack
    client = start()
    stack = stacks[-1]
    nats_process = next((p for p in stack.processes if p.name == "nats-server"), None)
    if nats_process is None:
        pytest.skip("NATS is external (NATS_URL set); this test restarts a local nats-server")
    ws, worker, available = _workspace_with_available_worker(client)
    ws.workers(worker.sid).update(activity_sid=available)

    args = nats_process.process.args
    nats_process.kill()
    task = None
    restarted = devstack.ManagedProcess("nats-server", subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), grace=5)
    stack.processes[stack.processes.index(nats_process)] = restarted
    wait_healthy(stack.env["TASKROUTER_PUBLIC_URL"])
    task = ws.tasks.create(attributes=json.dumps({"n": 1}))
    reservation = eventually(lambda: ws.tasks(task.sid).reservations.list(), timeout=30)[0]
    assert reservation.worker_sid == worker.sid
    eventually(lambda: [e for e in ws.events.list(task_sid=task.sid) if e.event_type == "reservation.created"], timeout=30)
