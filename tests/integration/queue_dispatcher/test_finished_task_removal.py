"""Completed and canceled tasks leave the store after the retention (TaskRouter: 5 minutes)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.errors import NotFoundError
from shared.storage import collections as c
from tests.integration.queue_dispatcher.test_dispatcher_service import running_harness

pytestmark = pytest.mark.integration
RETENTION = timedelta(minutes=5)


@pytest.fixture
async def harness(isolated_env):
    """Removal rounds are run by hand here (0 turns the periodic ones off)."""
    async with running_harness({**isolated_env, "DISPATCHER_FINISHED_TASK_RETENTION_SECONDS": "0"}) as h:
        yield h


async def _offer_of(h, task_sid: str) -> dict:
    return await h.db[c.RESERVATIONS].find_one({"task_sid": task_sid})


async def test_finished_tasks_and_their_reservations_go_after_the_retention(harness):
    h = harness
    await h.worker("alice")
    done, _ = await h.task()
    offer = await _offer_of(h, done["sid"])
    await h.send("reservation.update", reservation_sid=offer["_id"], reservation_status="accepted")
    await h.send("task.update", task_sid=done["sid"], assignment_status="completed", reason="ok")
    canceled, _ = await h.task()
    await h.send("task.update", task_sid=canceled["sid"], assignment_status="canceled", reason="no")
    live, outcome = await h.task()
    assert outcome == "reserved"

    h.clock.now += RETENTION - timedelta(seconds=1)
    assert await h.dispatcher.remove_finished_tasks(RETENTION) == 0
    assert await h.doc(c.TASKS, done["sid"]) is not None

    h.clock.now += timedelta(seconds=2)
    assert await h.dispatcher.remove_finished_tasks(RETENTION) == 2
    for gone in (done, canceled):
        assert await h.doc(c.TASKS, gone["sid"]) is None
        assert await _offer_of(h, gone["sid"]) is None
    # The live task and its offer stay; the removed ones are not found by commands.
    assert (await h.doc(c.TASKS, live["sid"]))["assignment_status"] == "reserved"
    assert await _offer_of(h, live["sid"]) is not None
    with pytest.raises(NotFoundError):
        await h.send("reservation.update", reservation_sid=offer["_id"], reservation_status="completed")
    assert await h.dispatcher.remove_finished_tasks(RETENTION) == 0
