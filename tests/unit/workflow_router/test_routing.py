"""The routing-step algorithm of workflows.md §3, with an explicit clock."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from shared.workflow_routing import (
    EVENT_SKIPPED,
    EVENT_TIMEOUT,
    REASON_SKIPPED,
    REASON_TIMEOUT,
    RoutingAction,
    RoutingDecision,
    RoutingPosition,
    ParsedWorkflows,
    enter_workflow,
    first_step_at_creation,
    next_after_skip,
    next_after_timeout,
    should_skip,
    step_deadline,
    step_fields,
    target_at,
)
from shared.workflow_config import WorkflowConfiguration, parse_workflow_configuration

T0 = datetime(2024, 6, 3, 9, 0, tzinfo=timezone.utc)  # a Monday


def _queue(name: str) -> str:
    return "WQ" + name.encode().hex().ljust(32, "0")[:32]


SUPPORT, EVERYONE, SALES, VIP, FALLBACK = map(
    _queue, ["support", "everyone", "sales", "vip", "fallback"]
)


def _config(
    filters: list[dict], default_queue: str | None = None
) -> WorkflowConfiguration:
    routing: dict[str, Any] = {"filters": filters}
    if default_queue is not None:
        routing["default_filter"] = {"queue": default_queue}
    return parse_workflow_configuration(json.dumps({"task_routing": routing}))


def _filter(name: str, expression: str, *targets: dict) -> dict:
    return {
        "filter_friendly_name": name,
        "expression": expression,
        "targets": list(targets),
    }


def _at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _assert_routed(
    decision: RoutingDecision, filter_index: int | None, step_index: int, queue_sid: str
) -> RoutingPosition:
    assert decision.action is RoutingAction.ROUTE
    assert decision.position is not None and decision.target is not None
    assert (decision.position.filter_index, decision.position.step_index) == (
        filter_index,
        step_index,
    )
    assert decision.target.queue_sid == queue_sid
    assert decision.reason is None and decision.event_type is None
    return decision.position


def _assert_removed(decision: RoutingDecision, reason: str, event_type: str) -> None:
    assert decision.action is RoutingAction.REMOVE
    assert (decision.reason, decision.event_type) == (reason, event_type)
    assert decision.position is None and decision.target is None


# The configuration of workflows.md §2 and the task of the §3 trace.
SPEC_CONFIG = _config(
    [
        _filter(
            "Gold tickets",
            "type == 'ticket' AND customer_value == 'Gold'",
            {
                "queue": SUPPORT,
                "priority": 10,
                "timeout": 300,
                "expression": "task.language IN worker.languages",
                "order_by": "worker.level DESC",
                "skip_if": "workers.available == 0",
            },
            {"queue": EVERYONE},
        )
    ],
    default_queue=EVERYONE,
)
GOLD_TICKET = {"type": "ticket", "customer_value": "Gold", "language": "en"}


def test_spec_trace() -> None:
    # t=0: filter 1 matches, step 1 -> Support queue with priority 10.
    entered = enter_workflow(SPEC_CONFIG, GOLD_TICKET, _at(0))
    position = _assert_routed(entered, 0, 0, SUPPORT)
    assert entered.target is not None and entered.target.priority == 10
    assert entered.filter_friendly_name == "Gold tickets"
    assert position.step_entered_at == _at(0)
    assert step_deadline(SPEC_CONFIG, position) == _at(300)

    # t=120: a reservation timeout retries in the same step: nothing to decide here.
    # t=300: step timeout -> step 2, the Everyone queue, waiting until acceptance.
    moved = next_after_timeout(SPEC_CONFIG, position, GOLD_TICKET, _at(300))
    position = _assert_routed(moved, 0, 1, EVERYONE)
    assert moved.target is not None and moved.target.priority is None
    assert position.step_entered_at == _at(300)
    assert step_deadline(SPEC_CONFIG, position) is None


def test_entry_without_matching_filter_uses_default() -> None:
    decision = enter_workflow(SPEC_CONFIG, {"type": "chat"}, _at(0))

    position = _assert_routed(decision, None, 0, EVERYONE)
    assert position.in_default_filter
    assert decision.filter_friendly_name is None
    assert step_deadline(SPEC_CONFIG, position) is None


def test_entry_without_match_or_default_removes_task() -> None:
    config = _config([_filter("Gold", "tier == 'gold'", {"queue": VIP})])

    _assert_removed(
        enter_workflow(config, {"tier": "silver"}, _at(0)),
        REASON_TIMEOUT,
        EVENT_TIMEOUT,
    )


def test_entry_with_no_filters_at_all() -> None:
    _assert_routed(enter_workflow(_config([], FALLBACK), {}, _at(0)), None, 0, FALLBACK)
    _assert_removed(
        enter_workflow(_config([]), {}, _at(0)), REASON_TIMEOUT, EVENT_TIMEOUT
    )


# Three filters: sales-only, anything with a language, and everything.
LADDER = _config(
    [
        _filter(
            "Sales", "type == 'sales'", {"queue": SALES, "timeout": 60}, {"timeout": 30}
        ),
        _filter("English", "language == 'en'", {"queue": SUPPORT, "timeout": 120}),
        _filter("VIP", "vip == true", {"queue": VIP, "timeout": 10, "skip_if": "1==1"}),
    ],
    default_queue=FALLBACK,
)


def test_first_matching_filter_wins() -> None:
    task = {"type": "sales", "language": "en", "vip": True}

    decision = enter_workflow(LADDER, task, _at(0))

    _assert_routed(decision, 0, 0, SALES)
    assert decision.filter_friendly_name == "Sales"


def test_first_match_skips_non_matching_filters() -> None:
    _assert_routed(enter_workflow(LADDER, {"vip": True}, _at(0)), 2, 0, VIP)


def test_timeout_moves_to_next_step_inheriting_queue() -> None:
    position = _assert_routed(
        enter_workflow(LADDER, {"type": "sales"}, _at(0)), 0, 0, SALES
    )

    moved = next_after_timeout(LADDER, position, {"type": "sales"}, _at(60))

    position = _assert_routed(moved, 0, 1, SALES)
    assert step_deadline(LADDER, position) == _at(90)


def test_timeout_of_last_step_falls_to_later_matching_filter() -> None:
    task = {"type": "sales", "vip": True}
    position = RoutingPosition(0, 1, _at(60))

    moved = next_after_timeout(LADDER, position, task, _at(90))

    # Filter "English" does not match; "VIP" does.
    position = _assert_routed(moved, 2, 0, VIP)
    assert not position.default_filter_allowed


def test_timeout_of_last_step_never_reaches_default() -> None:
    position = RoutingPosition(0, 1, _at(60))

    moved = next_after_timeout(LADDER, position, {"type": "sales"}, _at(90))

    _assert_removed(moved, REASON_TIMEOUT, EVENT_TIMEOUT)


def test_skip_of_middle_step_moves_to_next_step() -> None:
    position = RoutingPosition(0, 0, _at(0))

    moved = next_after_skip(LADDER, position, {"type": "sales"}, _at(5))

    position = _assert_routed(moved, 0, 1, SALES)
    assert position.step_entered_at == _at(5)


def test_skip_of_last_step_falls_to_later_matching_filter() -> None:
    position = RoutingPosition(0, 1, _at(0))

    moved = next_after_skip(
        LADDER, position, {"type": "sales", "language": "en"}, _at(1)
    )

    position = _assert_routed(moved, 1, 0, SUPPORT)
    assert position.default_filter_allowed


def test_skip_of_last_step_reaches_default() -> None:
    position = RoutingPosition(2, 0, _at(0))

    moved = next_after_skip(LADDER, position, {"vip": True}, _at(1))

    _assert_routed(moved, None, 0, FALLBACK)


def test_skip_of_last_step_without_default_removes_as_skipped() -> None:
    config = _config([_filter("VIP", "vip == true", {"queue": VIP, "skip_if": "1==1"})])

    moved = next_after_skip(
        config, RoutingPosition(0, 0, _at(0)), {"vip": True}, _at(1)
    )

    _assert_removed(moved, REASON_SKIPPED, EVENT_SKIPPED)


def test_timeout_then_skip_keeps_default_closed() -> None:
    task = {"type": "sales", "vip": True}
    after_timeout = next_after_timeout(
        LADDER, RoutingPosition(0, 1, _at(60)), task, _at(90)
    )
    position = _assert_routed(after_timeout, 2, 0, VIP)

    after_skip = next_after_skip(LADDER, position, task, _at(90))

    _assert_removed(after_skip, REASON_SKIPPED, EVENT_SKIPPED)


def test_timeout_of_middle_step_does_not_close_default() -> None:
    config = _config(
        [
            _filter(
                "Two steps",
                "1==1",
                {"queue": SALES, "timeout": 10},
                {"skip_if": "1==1"},
            )
        ],
        default_queue=FALLBACK,
    )
    first = _assert_routed(enter_workflow(config, {}, _at(0)), 0, 0, SALES)
    second = _assert_routed(next_after_timeout(config, first, {}, _at(10)), 0, 1, SALES)
    assert second.default_filter_allowed

    _assert_routed(next_after_skip(config, second, {}, _at(10)), None, 0, FALLBACK)


def test_reentering_the_workflow_reopens_default() -> None:
    _assert_removed(
        next_after_timeout(
            LADDER, RoutingPosition(0, 1, _at(60)), {"type": "sales"}, _at(90)
        ),
        REASON_TIMEOUT,
        EVENT_TIMEOUT,
    )

    decision = enter_workflow(LADDER, {"type": "chat"}, _at(100))

    assert _assert_routed(decision, None, 0, FALLBACK).default_filter_allowed


def test_later_filters_only_are_considered_after_a_filter_ends() -> None:
    # "Sales" matches again, but the walk only goes forward.
    position = RoutingPosition(1, 0, _at(0))

    moved = next_after_timeout(
        LADDER, position, {"type": "sales", "language": "en"}, _at(120)
    )

    _assert_removed(moved, REASON_TIMEOUT, EVENT_TIMEOUT)


def test_filters_see_current_attributes() -> None:
    position = RoutingPosition(0, 1, _at(60))

    moved = next_after_timeout(
        LADDER, position, {"type": "sales", "language": "en"}, _at(90)
    )

    _assert_routed(moved, 1, 0, SUPPORT)


def test_filters_see_the_clock() -> None:
    config = _config(
        [
            _filter(
                "Office hours",
                "taskrouter.currentHour >= 9 AND taskrouter.currentHour < 17",
                {"queue": SUPPORT},
            ),
            _filter(
                "Weekend", "taskrouter.dayOfWeek IN ['Sat', 'Sun']", {"queue": VIP}
            ),
        ],
        default_queue=FALLBACK,
    )

    _assert_routed(enter_workflow(config, {}, T0), 0, 0, SUPPORT)
    _assert_routed(
        enter_workflow(config, {}, T0 + timedelta(hours=10)), None, 0, FALLBACK
    )
    sunday_evening = T0 - timedelta(days=1) + timedelta(hours=11)
    _assert_routed(enter_workflow(config, {}, sunday_evening), 1, 0, VIP)


@pytest.mark.parametrize(
    ("leave", "reason", "event_type"),
    [
        (next_after_skip, REASON_SKIPPED, EVENT_SKIPPED),
        (next_after_timeout, REASON_TIMEOUT, EVENT_TIMEOUT),
    ],
    ids=["skip", "timeout"],
)
def test_leaving_the_default_filter_removes_task(
    leave, reason: str, event_type: str
) -> None:
    position = RoutingPosition(None, 0, _at(0))

    _assert_removed(leave(LADDER, position, {}, _at(1)), reason, event_type)


@pytest.mark.parametrize(
    "position",
    [
        RoutingPosition(3, 0, T0),
        RoutingPosition(0, 2, T0),
        RoutingPosition(-1, 0, T0),
        RoutingPosition(None, 1, T0),
    ],
    ids=["filter-past-end", "step-past-end", "negative-filter", "default-step-1"],
)
def test_positions_outside_the_configuration_are_refused(
    position: RoutingPosition,
) -> None:
    with pytest.raises(ValueError):
        target_at(LADDER, position)
    with pytest.raises(ValueError):
        next_after_timeout(LADDER, position, {}, _at(1))
    with pytest.raises(ValueError):
        step_deadline(LADDER, position)


def test_default_position_refused_without_default_filter() -> None:
    config = _config([_filter("Any", "1==1", {"queue": SALES})])

    with pytest.raises(ValueError):
        next_after_skip(config, RoutingPosition(None, 0, T0), {}, _at(1))


def test_target_at_returns_the_step() -> None:
    assert target_at(LADDER, RoutingPosition(0, 1, T0)).timeout == 30
    assert target_at(LADDER, RoutingPosition(None, 0, T0)).queue_sid == FALLBACK


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ({"available": 0, "unavailable": 2}, True),
        ({"available": 1, "unavailable": 2}, False),
        ({}, False),
    ],
    ids=["nobody-available", "someone-available", "no-counters"],
)
def test_should_skip_reads_queue_counters(counts: dict, expected: bool) -> None:
    target = target_at(SPEC_CONFIG, RoutingPosition(0, 0, T0))

    assert should_skip(target, counts) is expected


def test_should_skip_without_skip_if_is_false() -> None:
    target = target_at(SPEC_CONFIG, RoutingPosition(0, 1, T0))

    assert should_skip(target, {"available": 0}) is False


def test_full_walk_through_every_consequence() -> None:
    """Entry, step timeout, filter timeout, skip out of the last filter, removal."""
    task = {"type": "sales", "vip": True}

    decision = enter_workflow(LADDER, task, _at(0))
    position = _assert_routed(decision, 0, 0, SALES)
    assert step_deadline(LADDER, position) == _at(60)

    decision = next_after_timeout(
        LADDER, position, task, step_deadline(LADDER, position)
    )
    position = _assert_routed(decision, 0, 1, SALES)
    assert step_deadline(LADDER, position) == _at(90)

    decision = next_after_timeout(
        LADDER, position, task, step_deadline(LADDER, position)
    )
    position = _assert_routed(decision, 2, 0, VIP)
    assert should_skip(decision.target, {"available": 5})  # skip_if 1==1

    decision = next_after_skip(LADDER, position, task, _at(90))
    _assert_removed(decision, REASON_SKIPPED, EVENT_SKIPPED)


# -- the first step as the queue-dispatcher takes it at creation -------------------
def test_first_step_at_creation_is_a_plain_queue_step():
    config = _config(
        [_filter("Sales", "type == 'sales'", {"queue": SALES, "priority": 3, "timeout": 20})],
        default_queue=FALLBACK,
    )
    decision = first_step_at_creation(config, {"type": "sales"}, T0)
    assert decision is not None
    _assert_routed(decision, 0, 0, SALES)
    fields = step_fields(decision.target)
    assert (fields["queue_sid"], fields["priority"], fields["skip_if"]) == (SALES, 3, None)


def test_first_step_at_creation_leaves_skip_if_and_removal_to_the_router():
    skipping = _config(
        [_filter("S", "1 == 1", {"queue": SALES, "skip_if": "workers.available == 0"})]
    )
    assert first_step_at_creation(skipping, {}, T0) is None
    nothing_matches = _config([_filter("S", "type == 'sales'", {"queue": SALES})])
    assert enter_workflow(nothing_matches, {}, T0).action is RoutingAction.REMOVE
    assert first_step_at_creation(nothing_matches, {}, T0) is None


def test_step_fields_write_order_by_as_text():
    config = _config(
        [_filter("S", "1 == 1", {"queue": SALES, "order_by": "worker.level DESC"})]
    )
    decision = enter_workflow(config, {}, T0)
    assert decision.target is not None
    target = decision.target
    assert step_fields(target)["order_by"] == "worker.level DESC"


def test_parsed_workflows_are_kept_per_version_and_bounded():
    text = json.dumps({"task_routing": {"default_filter": {"queue": SALES}}})
    cache = ParsedWorkflows(limit=2)
    first = cache.get("WW1", T0, text)
    assert cache.get("WW1", T0, text) is first
    assert cache.get("WW1", _at(1), text) is not first  # a newer version is parsed again
    cache.get("WW2", T0, text)  # the third entry pushes out the oldest
    assert cache.get("WW1", T0, text) is not first
