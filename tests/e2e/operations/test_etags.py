"""`ETag` on versioned objects and `If-Match` on their updates and deletes: a
mismatch answers 412 and changes nothing; a match goes through."""

from __future__ import annotations

import json
import uuid

import pytest
from twilio.base.exceptions import TwilioRestException

from tests.e2e.conftest import eventually
from tests.e2e.operations.conftest import Api, World

pytestmark = pytest.mark.e2e


def _etag(api: Api) -> str:
    etag = api.recorder.calls.latest.headers.get("etag")
    assert etag
    return etag


def _precondition_failed(call) -> None:
    with pytest.raises(TwilioRestException) as refused:
        call()
    assert refused.value.status == 412, refused.value


def test_task_update_and_delete_need_the_current_etag(api: Api, world: World):
    queue = world.ws.task_queues.create(
        friendly_name=f"Nobody {uuid.uuid4().hex[:6]}", target_workers="1==0"
    )
    task = world.ws.tasks.create(task_queue_sid=queue.sid, priority=1)
    context = world.ws.tasks(task.sid)
    # Routing moves the task into its queue and bumps the version: wait for it.
    eventually(lambda: context.fetch().task_queue_sid)
    current = _etag(api)

    _precondition_failed(lambda: context.update(priority=5, if_match=f"{current}9"))
    assert context.fetch().priority == 1 and _etag(api) == current

    updated = context.update(
        priority=5, if_match=f'"{current}"'
    )  # quoted form accepted
    assert updated.priority == 5 and _etag(api) != current
    _precondition_failed(
        lambda: context.update(priority=7, if_match=current)
    )  # now stale
    assert context.fetch().priority == 5

    response = api.client.request("DELETE", task.url, headers={"If-Match": current})
    assert response.status_code == 412
    assert context.fetch().sid == task.sid
    response = api.client.request("DELETE", task.url, headers={"If-Match": _etag(api)})
    assert response.status_code == 204


def test_worker_update_and_delete_need_the_current_etag(api: Api, world: World):
    worker = world.ws.workers.create(
        friendly_name=f"Versioned {uuid.uuid4().hex[:6]}",
        attributes=json.dumps({"v": 1}),
    )
    context = world.ws.workers(worker.sid)
    current = _etag(api)
    _precondition_failed(
        lambda: context.update(attributes=json.dumps({"v": 2}), if_match='W/"999"')
    )
    assert json.loads(context.fetch().attributes) == {"v": 1}
    context.update(attributes=json.dumps({"v": 2}), if_match=current)
    _precondition_failed(
        lambda: context.update(friendly_name="Stale", if_match=current)
    )
    assert context.fetch().friendly_name == worker.friendly_name
    response = api.client.request("DELETE", worker.url, headers={"If-Match": current})
    assert response.status_code == 412 and context.fetch().sid == worker.sid
    assert (
        context.update(friendly_name=f"Fresh {uuid.uuid4().hex[:6]}").sid == worker.sid
    )


def test_reservation_update_needs_the_current_etag(api: Api, world: World):
    reserved = world.reserve()
    context = world.ws.workers(reserved.worker.sid).reservations(
        reserved.reservation.sid
    )
    context.fetch()
    current = _etag(api)
    _precondition_failed(
        lambda: context.update(reservation_status="accepted", if_match=f"{current}0")
    )
    assert context.fetch().reservation_status == "pending"
    assert (
        context.update(
            reservation_status="accepted", if_match=current
        ).reservation_status
        == "accepted"
    )
