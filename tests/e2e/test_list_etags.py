"""Task, Worker and Reservation lists carry an ETag that changes with their objects."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.e2e.conftest import RunningSystem

pytestmark = pytest.mark.e2e


def test_worker_list_etag_changes_when_a_listed_worker_changes(system: RunningSystem):
    tr = system.client().taskrouter.v1
    workspace = tr.workspaces.create(friendly_name="List ETags")
    worker = tr.workspaces(workspace.sid).workers.create(friendly_name="Eve")
    url = f"{system.base_url}/v1/Workspaces/{workspace.sid}/Workers"
    auth = (system.account_sid, system.auth_token)

    first = httpx.get(url, auth=auth)
    assert first.status_code == 200 and first.headers["ETag"]
    assert httpx.get(url, auth=auth).headers["ETag"] == first.headers["ETag"]

    tr.workspaces(workspace.sid).workers(worker.sid).update(attributes=json.dumps({"x": 1}))
    assert httpx.get(url, auth=auth).headers["ETag"] != first.headers["ETag"]
