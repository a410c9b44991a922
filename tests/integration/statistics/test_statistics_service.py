"""The statistics service end to end: synthetic events in, exact figures out.

One scenario (times in seconds after `base`, a whole minute):

    workers   Alice (skill support) Available at 0; Bob (skill sales) Offline at 0,
              Available at 120, Offline at 300; Alice's chat channel off at 150
    T1 voice p5  created 0 into Support; reserved Alice 10, rejected 20; reserved
                 Alice 30, timed out 60; reserved Alice 70, accepted 90; completed 200
    T2 chat p0   created 5 into Support; canceled 45
    T3 voice p10 created 10 into Support; still pending
    T4 voice p0  created 20, entered Sales 22; reserved Bob 25, accepted 28; assigned
    T5 voice p0  created 30 into Support; moved to Sales 40; still pending

Queries run at base + 600 s unless a test moves the clock.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import nats
import orjson
import pytest
from statistics_support import (
    ACCOUNT,
    AVAILABLE,
    BUSY,
    CHAT,
    OFFLINE,
    SALES_QUEUE,
    SUPPORT_QUEUE,
    VOICE,
    WORKFLOW,
    WORKSPACE,
    FakeClock,
    Scenario,
    seed_configuration,
    wait_until,
)

from services.statistics.windows import floor_minute
from shared.commands import StatisticsQuery
from shared.errors import DomainValidationError, NotFoundError
from shared.events import make_event, worker_data
from shared.models import utcnow
from shared.runtime import ServiceRuntime
from shared.storage import collections as c
from shared.subjects import STATISTICS

pytestmark = pytest.mark.integration

ALICE = "WK" + "a1" * 16
BOB = "WK" + "b2" * 16
T1, T2, T3, T4, T5 = ("WT" + str(i) * 32 for i in range(1, 6))
IDS = {"account_sid": ACCOUNT, "workspace_sid": WORKSPACE}
ZERO = {"avg": 0, "min": 0, "max": 0, "total": 0}


def build_scenario(base) -> Scenario:
    s = Scenario(base)
    s.create_worker(ALICE, "Alice", "support", (AVAILABLE, "Available"), 0)
    s.create_worker(BOB, "Bob", "sales", (OFFLINE, "Offline"), 0)
    s.create_task(T1, VOICE, 5, SUPPORT_QUEUE, 0)
    s.create_task(T2, CHAT, 0, SUPPORT_QUEUE, 5)
    s.create_task(T3, VOICE, 10, SUPPORT_QUEUE, 10)
    r1 = s.reserve(T1, ALICE, 10)
    s.end_reservation(r1, "reservation.rejected", "pending", 20)
    s.create_task(T4, VOICE, 0, SALES_QUEUE, 20, entered=22)
    r2 = s.reserve(T4, BOB, 25)
    s.end_reservation(r2, "reservation.accepted", "assigned", 28)
    s.create_task(T5, VOICE, 0, SUPPORT_QUEUE, 30)
    r3 = s.reserve(T1, ALICE, 30)
    s.move_task(T5, SALES_QUEUE, 40)
    s.set_status(T2, "canceled", "task.canceled", 45)
    s.end_reservation(r3, "reservation.timeout", "pending", 60)
    r4 = s.reserve(T1, ALICE, 70)
    s.end_reservation(r4, "reservation.accepted", "assigned", 90)
    s.change_activity(BOB, (AVAILABLE, "Available"), 120)
    s.set_channel(ALICE, CHAT, False, 150)
    s.set_status(T1, "completed", "task.completed", 200)
    s.change_activity(BOB, (OFFLINE, "Offline"), 300)
    return s


@pytest.fixture
def base():
    return floor_minute(utcnow()) - timedelta(minutes=20)


@pytest.fixture
async def running(probe: ServiceRuntime, start_statistics, base):
    """The service after it counted the whole scenario; the clock at base + 600 s."""
    await seed_configuration(probe.db, base)
    clock = FakeClock(base + timedelta(seconds=600))
    service = await start_statistics(clock)
    scenario = build_scenario(base)
    await publish(probe, scenario.events)
    await wait_counted(service, scenario.events)
    return service, scenario, clock


async def publish(probe: ServiceRuntime, events) -> None:
    for event in events:
        await probe.committer.commit([], [event])


async def wait_counted(service, events) -> None:
    sids = [e.sid for e in events]

    async def counted() -> bool:
        return service.handlers.tally.counted_all(sids)

    await wait_until(counted, what="events counted")


async def ask(
    probe: ServiceRuntime, route: str, resource_sid: str | None = None, **params: Any
):
    query = StatisticsQuery(
        account_sid=ACCOUNT,
        workspace_sid=WORKSPACE,
        route=route,
        resource_sid=resource_sid,
        params=params,
    )
    return await probe.commands.request(
        STATISTICS, "statistics.query", query.model_dump(), workspace_sid=WORKSPACE
    )


def activities(offline: int, available: int, busy: int) -> list[dict[str, Any]]:
    return [
        {"sid": OFFLINE, "friendly_name": "Offline", "workers": offline},
        {"sid": AVAILABLE, "friendly_name": "Available", "workers": available},
        {"sid": BUSY, "friendly_name": "Busy", "workers": busy},
    ]


def durations(
    offline: dict, available: dict, busy: dict = ZERO
) -> list[dict[str, Any]]:
    return [
        {"sid": OFFLINE, "friendly_name": "Offline", **offline},
        {"sid": AVAILABLE, "friendly_name": "Available", **available},
        {"sid": BUSY, "friendly_name": "Busy", **busy},
    ]


def window(base, start: int = -300, end: int = 600) -> dict[str, str]:
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return {
        "start_time": (base + timedelta(seconds=start)).strftime(fmt),
        "end_time": (base + timedelta(seconds=end)).strftime(fmt),
    }


def reservations(
    created=0, accepted=0, rejected=0, timed_out=0, canceled=0, rescinded=0
):
    return {
        "reservations_created": created,
        "reservations_accepted": accepted,
        "reservations_rejected": rejected,
        "reservations_timed_out": timed_out,
        "reservations_canceled": canceled,
        "reservations_rescinded": rescinded,
    }


def workspace_cumulative(base) -> dict[str, Any]:
    return {
        **window(base),
        **reservations(created=4, accepted=2, rejected=1, timed_out=1),
        "tasks_created": 5,
        "tasks_canceled": 1,
        "tasks_completed": 1,
        "tasks_deleted": 0,
        "tasks_moved": 1,
        "tasks_timed_out_in_workflow": 0,
        "avg_task_acceptance_time": 49,
        "wait_duration_until_accepted": {"avg": 49, "min": 8, "max": 90, "total": 98},
        "wait_duration_until_canceled": {"avg": 40, "min": 40, "max": 40, "total": 40},
        "split_by_wait_time": {
            "10": {
                "above": {"tasks_canceled": 1, "reservations_accepted": 1},
                "below": {"tasks_canceled": 0, "reservations_accepted": 1},
            },
            "60": {
                "above": {"tasks_canceled": 0, "reservations_accepted": 1},
                "below": {"tasks_canceled": 1, "reservations_accepted": 1},
            },
        },
    }


WORKSPACE_REALTIME = {
    "total_tasks": 3,
    "tasks_by_status": {"pending": 2, "reserved": 0, "assigned": 1, "wrapping": 0},
    "tasks_by_priority": {"0": 2, "10": 1},
    "longest_task_waiting_age": 590,
    "longest_task_waiting_sid": T3,
    "total_workers": 2,
    "activity_statistics": activities(offline=1, available=1, busy=0),
}


def support_cumulative(base) -> dict[str, Any]:
    return {
        **window(base),
        **reservations(created=3, accepted=1, rejected=1, timed_out=1),
        "tasks_entered": 4,
        "tasks_canceled": 1,
        "tasks_completed": 1,
        "tasks_deleted": 0,
        "tasks_moved": 1,
        "avg_task_acceptance_time": 90,
        "wait_duration_until_accepted": {"avg": 90, "min": 90, "max": 90, "total": 90},
        "wait_duration_until_canceled": {"avg": 40, "min": 40, "max": 40, "total": 40},
        "wait_duration_in_queue_until_accepted": {
            "avg": 90,
            "min": 90,
            "max": 90,
            "total": 90,
        },
        "split_by_wait_time": None,
    }


SUPPORT_REALTIME = {
    "total_tasks": 1,
    "tasks_by_status": {"pending": 1, "reserved": 0, "assigned": 0, "wrapping": 0},
    "tasks_by_priority": {"10": 1},
    "longest_task_waiting_age": 590,
    "longest_task_waiting_sid": T3,
    "longest_relative_task_age_in_queue": 590,
    "longest_relative_task_sid_in_queue": T3,
    "total_eligible_workers": 1,
    "total_available_workers": 1,
    "activity_statistics": activities(offline=0, available=1, busy=0),
}
SALES_REALTIME = {
    "total_tasks": 2,
    "tasks_by_status": {"pending": 1, "reserved": 0, "assigned": 1, "wrapping": 0},
    "tasks_by_priority": {"0": 2},
    "longest_task_waiting_age": 570,
    "longest_task_waiting_sid": T5,
    "longest_relative_task_age_in_queue": 560,
    "longest_relative_task_sid_in_queue": T5,
    "total_eligible_workers": 2,
    "total_available_workers": 1,
    "activity_statistics": activities(offline=1, available=1, busy=0),
}
WORKERS_DURATIONS = durations(
    offline={"avg": 420, "min": 420, "max": 420, "total": 420},
    available={"avg": 390, "min": 180, "max": 600, "total": 780},
)


# -- workspace -------------------------------------------------------------------------
async def test_workspace_statistics_give_exact_figures(running, probe, base):
    answer = await ask(probe, "workspace", split_by_wait_time=[10, 60])

    assert answer == {
        **IDS,
        "cumulative": workspace_cumulative(base),
        "realtime": WORKSPACE_REALTIME,
    }


async def test_workspace_realtime_and_cumulative_routes_match_combined(
    running, probe, base
):
    realtime = await ask(probe, "workspace.realtime")
    cumulative = await ask(probe, "workspace.cumulative", split_by_wait_time="10,60")

    assert realtime == {**IDS, **WORKSPACE_REALTIME}
    assert cumulative == {**IDS, **workspace_cumulative(base)}


async def test_workspace_statistics_restricted_to_task_channel(running, probe, base):
    voice = await ask(probe, "workspace.cumulative", task_channel="voice")
    chat = await ask(probe, "workspace", task_channel=CHAT)

    assert voice["tasks_created"] == 4
    assert voice["tasks_canceled"] == 0
    assert voice["wait_duration_until_canceled"] == ZERO
    assert voice["reservations_created"] == 4
    assert chat["cumulative"]["tasks_created"] == 1
    assert chat["cumulative"]["tasks_canceled"] == 1
    assert chat["cumulative"]["reservations_created"] == 0
    assert chat["cumulative"]["wait_duration_until_accepted"] == ZERO
    assert chat["realtime"]["total_tasks"] == 0
    assert chat["realtime"]["longest_task_waiting_sid"] is None
    assert chat["realtime"]["longest_task_waiting_age"] == 0
    assert chat["realtime"]["tasks_by_priority"] == {}


async def test_cumulative_window_counts_whole_minutes_and_clips_activity_time(
    running, probe, base
):
    start = (base + timedelta(seconds=-60)).isoformat()
    end = (base + timedelta(seconds=50)).isoformat()

    answer = await ask(probe, "workspace.cumulative", start_date=start, end_date=end)
    workers = await ask(probe, "workers.cumulative", start_date=start, end_date=end)

    # Minute 0 counts whole (events up to 59 s); the timeout at 60 s is outside.
    assert {k: answer[k] for k in ("start_time", "end_time")} == window(base, -60, 50)
    assert {k: answer[k] for k in reservations()} == reservations(
        created=3, accepted=1, rejected=1
    )
    assert answer["tasks_canceled"] == 1
    assert answer["wait_duration_until_accepted"] == {
        "avg": 8,
        "min": 8,
        "max": 8,
        "total": 8,
    }
    # Activity time is clipped to the exact window [base - 60 s, base + 50 s].
    assert workers["activity_durations"] == durations(
        offline={"avg": 50, "min": 50, "max": 50, "total": 50},
        available={"avg": 50, "min": 50, "max": 50, "total": 50},
    )


async def test_cumulative_window_after_the_tasks_is_all_zero(running, probe, base):
    start = (base + timedelta(seconds=240)).isoformat()

    answer = await ask(probe, "workflow.cumulative", WORKFLOW, start_date=start)
    workers = await ask(probe, "workers", start_date=start)

    assert answer == {
        **IDS,
        "workflow_sid": WORKFLOW,
        **window(base, 240, 600),
        **reservations(),
        "tasks_entered": 0,
        "tasks_canceled": 0,
        "tasks_completed": 0,
        "tasks_deleted": 0,
        "tasks_moved": 0,
        "tasks_timed_out_in_workflow": 0,
        "avg_task_acceptance_time": 0,
        "wait_duration_until_accepted": ZERO,
        "wait_duration_until_canceled": ZERO,
        "split_by_wait_time": None,
    }
    assert workers["cumulative"]["activity_durations"] == durations(
        offline={"avg": 300, "min": 300, "max": 300, "total": 300},
        available={"avg": 210, "min": 60, "max": 360, "total": 420},
    )


async def test_start_date_older_than_30_days_is_refused(running, probe, base):
    clock = running[2]
    old = (clock.now - timedelta(days=30, minutes=1)).isoformat()

    with pytest.raises(DomainValidationError) as caught:
        await ask(probe, "workspace.cumulative", start_date=old)

    assert caught.value.param == "StartDate"


# -- task queues -----------------------------------------------------------------------
async def test_task_queue_statistics_give_exact_figures(running, probe, base):
    answer = await ask(probe, "task_queue", SUPPORT_QUEUE)
    sales = await ask(probe, "task_queue.realtime", SALES_QUEUE)
    sales_cumulative = await ask(
        probe, "task_queue.cumulative", SALES_QUEUE, split_by_wait_time=[7]
    )

    assert answer == {
        **IDS,
        "task_queue_sid": SUPPORT_QUEUE,
        "cumulative": support_cumulative(base),
        "realtime": SUPPORT_REALTIME,
    }
    assert sales == {**IDS, "task_queue_sid": SALES_QUEUE, **SALES_REALTIME}
    assert sales_cumulative == {
        **IDS,
        "task_queue_sid": SALES_QUEUE,
        **window(base),
        **reservations(created=1, accepted=1),
        "tasks_entered": 2,
        "tasks_canceled": 0,
        "tasks_completed": 0,
        "tasks_deleted": 0,
        "tasks_moved": 0,
        "avg_task_acceptance_time": 8,
        "wait_duration_until_accepted": {"avg": 8, "min": 8, "max": 8, "total": 8},
        "wait_duration_until_canceled": ZERO,
        "wait_duration_in_queue_until_accepted": {
            "avg": 6,
            "min": 6,
            "max": 6,
            "total": 6,
        },
        "split_by_wait_time": {
            "7": {
                "above": {"tasks_canceled": 0, "reservations_accepted": 1},
                "below": {"tasks_canceled": 0, "reservations_accepted": 0},
            },
        },
    }


async def test_queue_availability_counts_the_task_channel(running, probe):
    chat = await ask(probe, "task_queue.realtime", SALES_QUEUE, task_channel="chat")
    voice = await ask(probe, "task_queue.realtime", SALES_QUEUE, task_channel=VOICE)

    # Alice is available but turned her chat channel off at 150 s; Bob is offline.
    assert chat["total_available_workers"] == 0
    assert chat["total_eligible_workers"] == 2
    assert chat["total_tasks"] == 0
    assert voice["total_available_workers"] == 1
    assert voice["total_tasks"] == 2


async def test_task_queues_list_filters_by_friendly_name(running, probe, base):
    every = await ask(probe, "task_queues")
    sales = await ask(probe, "task_queues", friendly_name="Sales")

    assert [item["task_queue_sid"] for item in every] == [SUPPORT_QUEUE, SALES_QUEUE]
    assert every[0] == {
        **IDS,
        "task_queue_sid": SUPPORT_QUEUE,
        "cumulative": support_cumulative(base),
        "realtime": SUPPORT_REALTIME,
    }
    assert [item["task_queue_sid"] for item in sales] == [SALES_QUEUE]
    assert sales[0]["realtime"] == SALES_REALTIME


async def test_bulk_realtime_answers_unknown_queues_with_zeros(running, probe):
    unknown = "WQ" + "f" * 32

    answer = await ask(
        probe, "task_queues.realtime_bulk", queue_sids=[SALES_QUEUE, unknown]
    )

    sales = {k: v for k, v in SALES_REALTIME.items() if "relative" not in k}
    assert answer == {
        **IDS,
        "task_queue_response_count": 2,
        "task_queue_data": [
            {"task_queue_sid": SALES_QUEUE, **sales},
            {
                "task_queue_sid": unknown,
                "total_tasks": 0,
                "tasks_by_status": {
                    "pending": 0,
                    "reserved": 0,
                    "assigned": 0,
                    "wrapping": 0,
                },
                "tasks_by_priority": {},
                "longest_task_waiting_age": 0,
                "longest_task_waiting_sid": None,
                "total_eligible_workers": 0,
                "total_available_workers": 0,
                "activity_statistics": activities(0, 0, 0),
            },
        ],
    }


@pytest.mark.parametrize(
    "queue_sids",
    [[], ["WQ" + "1" * 32] * 51, ["not-a-sid"]],
    ids=["none", "more-than-50", "malformed"],
)
async def test_bulk_realtime_refuses_bad_queue_lists(running, probe, queue_sids):
    with pytest.raises(DomainValidationError):
        await ask(probe, "task_queues.realtime_bulk", queue_sids=queue_sids)


async def test_unknown_task_queue_is_not_found(running, probe):
    with pytest.raises(NotFoundError):
        await ask(probe, "task_queue", "WQ" + "e" * 32)


# -- workflows -------------------------------------------------------------------------
async def test_workflow_statistics_give_exact_figures(running, probe, base):
    answer = await ask(probe, "workflow", WORKFLOW, split_by_wait_time=[10, 60])

    expected = workspace_cumulative(base)
    expected.pop("tasks_created")
    realtime = {
        k: v
        for k, v in WORKSPACE_REALTIME.items()
        if k not in ("total_workers", "activity_statistics")
    }
    assert answer == {
        **IDS,
        "workflow_sid": WORKFLOW,
        "cumulative": {**expected, "tasks_entered": 5},
        "realtime": realtime,
    }
    assert await ask(probe, "workflow.realtime", WORKFLOW) == {
        **IDS,
        "workflow_sid": WORKFLOW,
        **realtime,
    }


# -- workers ---------------------------------------------------------------------------
async def test_workers_statistics_give_exact_figures(running, probe, base):
    combined = await ask(probe, "workers")
    realtime = await ask(probe, "workers.realtime")
    cumulative = await ask(probe, "workers.cumulative")

    expected_cumulative = {
        **window(base),
        **reservations(created=4, accepted=2, rejected=1, timed_out=1),
        "activity_durations": WORKERS_DURATIONS,
    }
    expected_realtime = {"total_workers": 2, "activity_statistics": activities(1, 1, 0)}
    assert combined == {
        **IDS,
        "cumulative": expected_cumulative,
        "realtime": expected_realtime,
    }
    assert realtime == {**IDS, **expected_realtime}
    assert cumulative == {**IDS, **expected_cumulative}


async def test_workers_statistics_filtered_by_queue_and_name(running, probe, base):
    support = await ask(probe, "workers", task_queue_sid=SUPPORT_QUEUE)
    by_queue_name = await ask(
        probe, "workers", task_queue_name="Sales", friendly_name="Bob"
    )

    assert support["realtime"] == {
        "total_workers": 1,
        "activity_statistics": activities(0, 1, 0),
    }
    assert support["cumulative"] == {
        **window(base),
        **reservations(created=3, accepted=1, rejected=1, timed_out=1),
        "activity_durations": durations(
            offline=ZERO, available={"avg": 600, "min": 600, "max": 600, "total": 600}
        ),
    }
    assert by_queue_name["realtime"]["total_workers"] == 1
    assert by_queue_name["cumulative"]["reservations_accepted"] == 1


async def test_worker_statistics_give_exact_figures(running, probe, base):
    answer = await ask(probe, "worker", BOB)

    assert answer == {
        **IDS,
        "worker_sid": BOB,
        "cumulative": {
            **window(base),
            **reservations(created=1, accepted=1),
            "activity_durations": durations(
                offline={"avg": 210, "min": 120, "max": 300, "total": 420},
                available={"avg": 180, "min": 180, "max": 180, "total": 180},
            ),
        },
    }


# -- idempotence and restart -----------------------------------------------------------
async def test_replayed_events_do_not_change_figures(running, probe, base):
    service, scenario, _ = running
    before = await ask(probe, "workspace", split_by_wait_time=[10, 60])
    workers_before = await ask(probe, "workers")

    # The same batch handed to the service again, as a redelivery would: with
    # the stream sequences they were published at (the first ones of the stream).
    await service.handlers.on_events(
        list(enumerate((e.model_dump() for e in scenario.events), start=1))
    )
    # The same envelopes published again under new message ids (so the stream
    # does not drop them), then a marker to know they were consumed.
    connection = await nats.connect(probe.settings.nats_url)
    js = connection.jetstream()
    for event in scenario.events[:12]:
        subject = probe.subjects.event(
            ACCOUNT, WORKSPACE, event.resource_sid, event.event_type
        )
        await js.publish(
            subject, event.to_payload(), headers={"Nats-Msg-Id": uuid.uuid4().hex}
        )
    await connection.close()
    marker = Scenario(base)
    marker.workers = scenario.workers
    marker.change_activity(BOB, (BUSY, "Busy"), 590)
    await publish(probe, marker.events)
    await wait_counted(service, marker.events)

    after = await ask(probe, "workspace", split_by_wait_time=[10, 60])
    assert after["cumulative"] == before["cumulative"]
    assert after["realtime"] == {
        **before["realtime"],
        "activity_statistics": activities(0, 1, 1),
    }
    workers_after = await ask(probe, "workers")
    assert workers_after["cumulative"]["reservations_created"] == 4
    assert workers_after["realtime"]["activity_statistics"] == activities(0, 1, 1)
    assert workers_before["realtime"]["activity_statistics"] == activities(1, 1, 0)


async def test_restart_keeps_cumulative_and_rebuilds_realtime(
    running, probe, start_statistics, base
):
    service, scenario, clock = running
    before = await ask(probe, "workspace", split_by_wait_time=[10, 60])
    queues_before = await ask(probe, "task_queues")
    workers_before = await ask(probe, "workers")
    await scenario.write_dispatcher_state(probe.db)

    await start_statistics.stop(service)
    restarted = await start_statistics(clock)

    assert await ask(probe, "workspace", split_by_wait_time=[10, 60]) == before
    assert await ask(probe, "task_queues") == queues_before
    assert await ask(probe, "workers") == workers_before
    assert await restarted.handlers.store.progress() == len(scenario.events)


NO_PERIODIC_FLUSH = {"STATISTICS_FLUSH_SECONDS": "3600"}


async def test_counts_wait_in_memory_until_a_cumulative_query_flushes_them(
    probe, start_statistics, base
):
    await seed_configuration(probe.db, base)
    service = await start_statistics(
        FakeClock(base + timedelta(seconds=600)), NO_PERIODIC_FLUSH
    )
    scenario = build_scenario(base)
    await publish(probe, scenario.events)
    await wait_counted(service, scenario.events)

    assert await service.handlers.store.progress() == 0
    assert await probe.db[c.STATISTICS_BUCKETS].count_documents({}) == 0
    await ask(probe, "workspace.realtime")  # answered from memory: no flush
    assert await service.handlers.store.progress() == 0

    answer = await ask(probe, "workspace.cumulative", split_by_wait_time="10,60")

    assert answer == {**IDS, **workspace_cumulative(base)}
    assert await service.handlers.store.progress() == len(scenario.events)


async def test_restart_counts_what_was_not_flushed_once(
    probe, start_statistics, base, monkeypatch
):
    """A crash after events were acknowledged but before their flush loses none,
    and a restart counts none of the flushed ones again."""
    await seed_configuration(probe.db, base)
    clock = FakeClock(base + timedelta(seconds=600))
    service = await start_statistics(clock, NO_PERIODIC_FLUSH)
    scenario = build_scenario(base)
    flushed, pending = scenario.events[:20], scenario.events[20:]
    await publish(probe, flushed)
    await wait_counted(service, flushed)
    await service.handlers.flush()
    await publish(probe, pending)
    await wait_counted(service, pending)

    # The process dies: what it counted since the flush is lost with it.
    async def crash_before_flushing() -> None:
        pass

    monkeypatch.setattr(service.handlers.tally, "flush", crash_before_flushing)
    await start_statistics.stop(service)
    assert await probe.db[c.STATISTICS_PROGRESS].find_one() == {
        "_id": "events",
        "sequence": len(flushed),
    }
    await scenario.write_dispatcher_state(probe.db)
    restarted = await start_statistics(clock, NO_PERIODIC_FLUSH)
    await wait_counted(restarted, pending)
    # A redelivery of everything, as after an ack that did not reach the stream.
    await restarted.handlers.on_events(
        list(enumerate((e.model_dump() for e in scenario.events), start=1))
    )

    assert await ask(probe, "workspace", split_by_wait_time=[10, 60]) == {
        **IDS,
        "cumulative": workspace_cumulative(base),
        "realtime": WORKSPACE_REALTIME,
    }
    workers = await ask(probe, "workers.cumulative")
    assert workers["activity_durations"] == WORKERS_DURATIONS
    assert await restarted.handlers.store.progress() == len(scenario.events)


# -- the contract's field sets ---------------------------------------------------------
CONTRACT = "/work/shared/reference/twilio_taskrouter_v1.json"
SCHEMAS = "taskrouter.v1.workspace."


@pytest.mark.parametrize(
    ("route", "resource", "schema", "params"),
    [
        ("workspace", None, "workspace_statistics", {}),
        ("workspace.realtime", None, "workspace_real_time_statistics", {}),
        ("workspace.cumulative", None, "workspace_cumulative_statistics", {}),
        ("task_queue", SUPPORT_QUEUE, "task_queue.task_queue_statistics", {}),
        (
            "task_queue.realtime",
            SUPPORT_QUEUE,
            "task_queue.task_queue_real_time_statistics",
            {},
        ),
        (
            "task_queue.cumulative",
            SUPPORT_QUEUE,
            "task_queue.task_queue_cumulative_statistics",
            {},
        ),
        (
            "task_queues.realtime_bulk",
            None,
            "task_queue.task_queue_bulk_real_time_statistics",
            {"queue_sids": [SALES_QUEUE]},
        ),
        ("workers", None, "worker.worker_statistics", {}),
        ("workers.realtime", None, "worker.workers_real_time_statistics", {}),
        ("workers.cumulative", None, "worker.workers_cumulative_statistics", {}),
        ("worker", ALICE, "worker.worker_instance_statistics", {}),
        ("workflow", WORKFLOW, "workflow.workflow_statistics", {}),
        ("workflow.realtime", WORKFLOW, "workflow.workflow_real_time_statistics", {}),
        (
            "workflow.cumulative",
            WORKFLOW,
            "workflow.workflow_cumulative_statistics",
            {},
        ),
    ],
)
async def test_answers_carry_the_contract_fields_except_url(
    running, probe, route, resource, schema, params
):
    with open(CONTRACT, "rb") as contract:
        schemas = orjson.loads(contract.read())["components"]["schemas"]

    answer = await ask(probe, route, resource, **params)

    assert set(answer) | {"url"} == set(schemas[SCHEMAS + schema]["properties"])


async def test_task_queues_list_items_carry_the_contract_fields(running, probe):
    with open(CONTRACT, "rb") as contract:
        schemas = orjson.loads(contract.read())["components"]["schemas"]
    fields = set(schemas[SCHEMAS + "task_queue.task_queues_statistics"]["properties"])

    answer = await ask(probe, "task_queues")

    assert [set(item) for item in answer] == [fields, fields]


async def test_unknown_workspace_or_other_account_is_not_found(running, probe):
    for account, workspace in (
        (ACCOUNT, "WS" + "f" * 32),
        ("AC" + "f" * 32, WORKSPACE),
    ):
        query = StatisticsQuery(
            account_sid=account, workspace_sid=workspace, route="workspace"
        )
        with pytest.raises(NotFoundError):
            await probe.commands.request(
                STATISTICS,
                "statistics.query",
                query.model_dump(),
                workspace_sid=workspace,
            )


async def test_unknown_route_worker_and_workflow_are_refused(running, probe):
    with pytest.raises(DomainValidationError):
        await ask(probe, "queues")
    with pytest.raises(NotFoundError):
        await ask(probe, "worker", "WK" + "f" * 32)
    with pytest.raises(NotFoundError):
        await ask(probe, "workflow.cumulative", "WW" + "f" * 32)
    with pytest.raises(DomainValidationError):
        await ask(probe, "workspace", task_channel="fax")


async def test_deleted_worker_keeps_its_last_activity_interval(running, probe, base):
    service, scenario, _ = running
    bob = scenario.workers[BOB]
    bob.version += 1
    deletion = make_event(
        "worker.deleted",
        account_sid=ACCOUNT,
        workspace_sid=WORKSPACE,
        resource_type="worker",
        resource_sid=BOB,
        at=base + timedelta(seconds=590),
        data=worker_data(bob),
    )

    await publish(probe, [deletion])
    await wait_counted(service, [deletion])

    answer = await ask(probe, "workers")
    assert answer["realtime"] == {
        "total_workers": 1,
        "activity_statistics": activities(0, 1, 0),
    }
    assert answer["cumulative"]["activity_durations"] == durations(
        offline={"avg": 410, "min": 410, "max": 410, "total": 410},
        available={"avg": 390, "min": 180, "max": 600, "total": 780},
    )
