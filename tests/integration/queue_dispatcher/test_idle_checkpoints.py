"""Idle times (last offers) across restarts and workspace deletion, checkpoints taken by hand."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.storage import collections as c
from tests.integration.queue_dispatcher.test_dispatcher_service import (
    _channel_loads,
    running_harness,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def quiet_harness(isolated_env):
    """The harness with the periodic checkpoint out of the way (called by hand)."""
    async with running_harness({**isolated_env, "DISPATCHER_IDLE_CHECKPOINT_SECONDS": "3600"}) as h:
        yield h


async def test_idle_time_read_from_the_scan_survives_a_second_restart(quiet_harness):
    h = quiet_harness
    for name in ("alice", "bob", "carol"):
        await h.worker(name)

    h.clock.now += timedelta(seconds=5)
    await h.task()  # first offer: the first checkpoint goes with it
    h.clock.now += timedelta(seconds=5)
    second, _ = await h.task()  # after the checkpoint: only in the reservations
    # ...and done with, so no live reservation tells its time at the next load.
    reservation = await h.db[c.RESERVATIONS].find_one({"task_sid": second["sid"]})
    await h.send(
        "reservation.update", reservation_sid=reservation["_id"], reservation_status="accepted"
    )
    await h.send("task.update", task_sid=second["sid"], assignment_status="completed")
    await h.stop()  # before any periodic checkpoint
    await h.start()  # restart 1: the second offer's time comes from the scan
    recovered = _channel_loads(h)

    h.clock.now += timedelta(seconds=5)
    await h.task()  # a third worker is offered something
    assert await h.dispatcher.checkpoint_idle() == 1  # moves the checkpoint's `at`
    after_third = _channel_loads(h)
    offered = {sid for sid, loads in recovered.items() if loads[0][3] is not None}
    assert len(offered) == 2  # the first offer (checkpoint) and the second (scan)

    await h.stop()
    await h.start()  # restart 2
    assert _channel_loads(h) == after_third


async def test_deleted_worker_leaves_the_stored_checkpoint(quiet_harness):
    h = quiet_harness
    alice = await h.worker("alice")
    h.clock.now += timedelta(seconds=5)
    task, _ = await h.task()
    doc = await h.doc(c.WORKER_IDLE, h.config.workspace)
    assert alice["sid"] in doc["workers"]
    reservation = await h.db[c.RESERVATIONS].find_one({"task_sid": task["sid"]})
    await h.send(
        "reservation.update", reservation_sid=reservation["_id"], reservation_status="rejected",
        worker_activity_sid=h.config.offline,
    )
    await h.send("worker.delete", worker_sid=alice["sid"])
    assert await h.dispatcher.checkpoint_idle() == 1
    doc = await h.doc(c.WORKER_IDLE, h.config.workspace)
    assert alice["sid"] not in doc.get("workers", {})


async def test_a_dropped_workspace_gets_no_idle_checkpoint_back(quiet_harness):
    h = quiet_harness
    await h.worker("alice")
    await h.worker("bob")
    h.clock.now += timedelta(seconds=5)
    await h.task()  # the first checkpoint goes with it
    h.clock.now += timedelta(seconds=5)
    await h.task()  # bob: waits for the next checkpoint
    # The workspace goes; the dispatcher first hears a configuration event of
    # another kind (its config is gone, so it drops the workspace's documents).
    await h.db[c.WORKSPACES].delete_one({"_id": h.config.workspace})
    await h.dispatcher.on_configuration_event("activity.updated", h.config.workspace)
    assert await h.db[c.WORKERS].count_documents({"workspace_sid": h.config.workspace}) == 0
    assert await h.doc(c.WORKER_IDLE, h.config.workspace) is None

    await h.dispatcher.checkpoint_idle()
    assert await h.doc(c.WORKER_IDLE, h.config.workspace) is None
