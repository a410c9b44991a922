"""Tasks the system removes: finished ones after the retention (TaskRouter: 5 minutes),
assigned ones 24 hours after acceptance (`task.system-deleted`), across a restart."""

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


async def test_an_assigned_task_is_removed_after_24_hours_even_across_a_restart(harness):
    h = harness
    worker = await h.worker("alice")
    task, _ = await h.task()
    offer = await _offer_of(h, task["sid"])
    await h.send("reservation.update", reservation_sid=offer["_id"], reservation_status="accepted")
    await h.stop()
    await h.start()  # the timer is armed again from the stored acceptance

    h.clock.now += timedelta(hours=24) - timedelta(seconds=1)
    await h.dispatcher.timers.fire_due()
    assert (await h.doc(c.TASKS, task["sid"]))["assignment_status"] == "assigned"

    h.clock.now += timedelta(seconds=1)
    await h.dispatcher.timers.fire_due()
    assert await h.doc(c.TASKS, task["sid"]) is None
    assert await _offer_of(h, task["sid"]) is None
    assert (await h.events_of(task["sid"], 3))[-1] == "task.system-deleted"
    # The worker's capacity is free again: the next task is offered to it.
    _, outcome = await h.task()
    assert outcome == "reserved"
    assert worker["sid"] in {r["worker_sid"] async for r in h.db[c.RESERVATIONS].find({})}


def _finished_doc(sid: str, workspace_sid: str, updated) -> dict:
    return {"_id": sid, "workspace_sid": workspace_sid, "assignment_status": "completed",
            "date_updated": updated}


async def test_tasks_that_cannot_be_removed_here_do_not_hold_up_the_others(harness, monkeypatch):
    h = harness
    long_ago = h.clock.now - timedelta(hours=1)
    # Another replica's workspace (never this one's to remove), and a deleted one.
    others = [_finished_doc(f"WT{i:032x}", "WS" + "1" * 32, long_ago) for i in range(3)]
    orphans = [_finished_doc(f"WT{i + 10:032x}", "WS" + "2" * 32, long_ago) for i in range(2)]
    await h.db[c.TASKS].insert_many(others + orphans)
    owns = h.dispatcher.owns
    monkeypatch.setattr(h.dispatcher, "owns", lambda ws: ws != "WS" + "1" * 32 and owns(ws))
    await h.worker("alice")
    mine, _ = await h.task()
    await h.send("task.update", task_sid=mine["sid"], assignment_status="canceled", reason="no")
    h.clock.now += RETENTION + timedelta(seconds=1)

    skip: set[str] = set()
    while await h.dispatcher.remove_finished_tasks(RETENTION, limit=2, skip=skip) >= 2:
        pass  # as `run_removals` goes through a backlog
    assert await h.doc(c.TASKS, mine["sid"]) is None
    assert await h.db[c.TASKS].count_documents({"workspace_sid": "WS" + "1" * 32}) == 3
    assert await h.db[c.TASKS].count_documents({"workspace_sid": "WS" + "2" * 32}) == 0
