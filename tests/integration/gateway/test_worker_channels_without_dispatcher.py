"""Worker channel reads while the queue-dispatcher is not reachable: counted from the store."""

from __future__ import annotations

import json

import pymongo
import pytest

from shared.models import Reservation, ReservationStatus, Worker, WorkerChannel
from shared.sids import SidPrefix, new_sid, worker_channel_sid
from tests.contract import validate_response

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def store(gateway):
    with pymongo.MongoClient(gateway.env["MONGODB_URL"], tz_aware=True) as mongo:
        yield mongo[gateway.env["MONGODB_DATABASE"]]


@pytest.fixture(scope="module")
def ws(client):
    return client.taskrouter.v1.workspaces.create(friendly_name="channels", template="FIFO")


def test_worker_channels_are_read_without_the_dispatcher(http, client, ws, store):
    workspace = client.taskrouter.v1.workspaces(ws.sid)
    channels = workspace.task_channels.list()
    voice = next(ch for ch in channels if ch.unique_name == "voice")
    available = workspace.activities.list(friendly_name="Available")[0]
    sid = new_sid(SidPrefix.WORKER)
    worker = Worker(
        sid=sid, account_sid=ws.account_sid, workspace_sid=ws.sid, friendly_name="alice",
        attributes=json.dumps({}), activity_sid=available.sid,
        activity_name=available.friendly_name, available=True, version=3,
        channels=[WorkerChannel(sid=worker_channel_sid(sid, ch.sid), task_channel_sid=ch.sid,
                                task_channel_unique_name=ch.unique_name, configured_capacity=2)
                  for ch in channels],
    )
    doc = worker.to_document()
    for channel in doc["channels"]:  # as the dispatcher stores it now (no load)
        channel.pop("reserved_tasks"), channel.pop("assigned_tasks")
    store["workers"].insert_one(doc)
    # The load lives in the reservations: one accepted on voice, and one finished.
    for status in (ReservationStatus.ACCEPTED, ReservationStatus.COMPLETED):
        store["reservations"].insert_one(Reservation(
            sid=new_sid(SidPrefix.RESERVATION), account_sid=ws.account_sid,
            workspace_sid=ws.sid, task_sid=new_sid(SidPrefix.TASK), worker_sid=sid,
            worker_name="alice", task_channel_sid=voice.sid, reservation_status=status,
        ).to_document())

    listed = http.get(f"/v1/Workspaces/{ws.sid}/Workers/{sid}/Channels")
    assert listed.status_code == 200, listed.json()
    validate_response("ListWorkerChannel", 200, listed.json())
    fetched = workspace.workers(sid).worker_channels("voice").fetch()
    assert (fetched.assigned_tasks, fetched.available_capacity_percentage) == (1, 50)
    assert http.get(f"/v1/Workspaces/{ws.sid}/Workers/WK{'0' * 32}/Channels").status_code == 404
