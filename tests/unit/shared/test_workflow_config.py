"""Workflow Configuration parsing and validation (workflows.md §2)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.expressions import ExpressionError, ExpressionKind
from shared.workflow_config import (
    MAX_CONFIGURATION_BYTES,
    RoutingTarget,
    WorkflowConfigurationError,
    parse_workflow_configuration,
)

SUPPORT = "WQ" + "a" * 32
EVERYONE = "WQ" + "B" * 32
SALES = "WQ" + "0123456789abcdef" * 2


def _config(filters: Any = None, default_filter: Any = None, **routing: Any) -> str:
    """A Configuration JSON string; keys left as None are omitted."""
    body = dict(routing)
    if filters is not None:
        body["filters"] = filters
    if default_filter is not None:
        body["default_filter"] = default_filter
    return json.dumps({"task_routing": body})


def _filter(*targets: dict, expression: str = "1==1", **extra: Any) -> dict:
    return {"expression": expression, "targets": list(targets), **extra}


SPEC_EXAMPLE = json.dumps(
    {
        "task_routing": {
            "filters": [
                {
                    "filter_friendly_name": "Gold tickets",
                    "expression": "type == 'ticket' AND customer_value == 'Gold'",
                    "targets": [
                        {
                            "queue": SUPPORT,
                            "priority": 10,
                            "timeout": 300,
                            "expression": "task.language IN worker.languages",
                            "order_by": "worker.level DESC",
                            "skip_if": "workers.available == 0",
                        },
                        {"queue": EVERYONE},
                    ],
                }
            ],
            "default_filter": {"queue": EVERYONE},
        }
    }
)


def test_parse_spec_example() -> None:
    config = parse_workflow_configuration(SPEC_EXAMPLE)

    (gold,) = config.filters
    first, second = gold.targets
    assert gold.friendly_name == "Gold tickets"
    assert gold.expression.kind is ExpressionKind.TASK
    assert gold.expression.evaluate({"type": "ticket", "customer_value": "Gold"})
    assert (first.queue_sid, first.priority, first.timeout) == (SUPPORT, 10, 300)
    assert (
        first.expression is not None and first.expression.kind is ExpressionKind.TARGET
    )
    assert first.order_by is not None and first.order_by.clauses == (("level", True),)
    assert first.skip_if is not None and first.skip_if.evaluate(
        {"workers": {"available": 0}}
    )
    assert second == RoutingTarget(queue_sid=EVERYONE)
    assert config.default_filter == RoutingTarget(queue_sid=EVERYONE)
    assert config.queue_sids() == {SUPPORT, EVERYONE}


def test_later_targets_inherit_the_previous_queue_only() -> None:
    text = _config(
        [
            _filter(
                {"queue": SUPPORT, "timeout": 10}, {"priority": 5}, {"queue": SALES}, {}
            )
        ],
    )

    targets = parse_workflow_configuration(text).filters[0].targets

    assert [t.queue_sid for t in targets] == [SUPPORT, SUPPORT, SALES, SALES]
    # Only the queue carries over: timeout and priority belong to their step.
    assert targets[1].timeout is None
    assert targets[1].priority == 5 and targets[2].priority is None


def test_numbers_may_be_numeric_strings() -> None:
    text = _config([_filter({"queue": SUPPORT, "priority": "10", "timeout": " 30 "})])

    target = parse_workflow_configuration(text).filters[0].targets[0]

    assert (target.priority, target.timeout) == (10, 30)


def test_integral_floats_are_accepted() -> None:
    text = _config([_filter({"queue": SUPPORT, "priority": 3.0, "timeout": 60.0})])

    target = parse_workflow_configuration(text).filters[0].targets[0]

    assert (target.priority, target.timeout) == (3, 60)


def test_priority_zero_is_allowed() -> None:
    text = _config([_filter({"queue": SUPPORT, "priority": 0})])

    assert parse_workflow_configuration(text).filters[0].targets[0].priority == 0


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"filter_friendly_name": "New"}, "New"),
        ({"friendly_name": "Old SDK"}, "Old SDK"),
        ({"filter_friendly_name": "New", "friendly_name": "Old"}, "New"),
        ({}, None),
    ],
    ids=["documented", "older-sdk", "both", "none"],
)
def test_filter_name_accepts_both_keys(extra: dict, expected: str | None) -> None:
    text = _config([_filter({"queue": SUPPORT}, **extra)])

    assert parse_workflow_configuration(text).filters[0].friendly_name == expected


@pytest.mark.parametrize(
    "text",
    [
        json.dumps({"task_routing": {}}),
        json.dumps({"task_routing": {"filters": []}}),
        json.dumps({"task_routing": {"filters": None, "default_filter": None}}),
    ],
    ids=["empty", "empty-filters", "nulls"],
)
def test_filters_and_default_are_optional(text: str) -> None:
    config = parse_workflow_configuration(text)

    assert config.filters == () and config.default_filter is None
    assert config.queue_sids() == set()


def test_unknown_keys_and_nulls_are_ignored() -> None:
    text = json.dumps(
        {
            "version": 2,
            "task_routing": {
                "comment": "x",
                "filters": [
                    {
                        "expression": "1==1",
                        "targets": [
                            {"queue": SUPPORT, "timeout": None, "color": "red"}
                        ],
                        "extra": [],
                    }
                ],
                "default_filter": {"queue": EVERYONE, "priority": None},
            },
        }
    )

    config = parse_workflow_configuration(text)

    assert config.filters[0].targets[0] == RoutingTarget(queue_sid=SUPPORT)
    assert config.default_filter == RoutingTarget(queue_sid=EVERYONE)


def test_empty_optional_strings_count_as_absent() -> None:
    text = _config(
        [_filter({"queue": SUPPORT, "expression": "", "order_by": " ", "skip_if": ""})]
    )

    assert parse_workflow_configuration(text).filters[0].targets[0] == RoutingTarget(
        SUPPORT
    )


def test_default_filter_takes_target_keys() -> None:
    text = _config(
        default_filter={
            "queue": EVERYONE,
            "priority": "7",
            "expression": "worker.level > 1",
            "order_by": "worker.level ASC",
            "skip_if": "1==1",
        }
    )

    default = parse_workflow_configuration(text).default_filter

    assert default is not None and default.priority == 7
    assert default.expression is not None and default.skip_if is not None


def test_known_worker_sid_path() -> None:
    text = _config([_filter({"queue": SUPPORT, "known_worker_sid": "task.agent_sid"})])

    target = parse_workflow_configuration(text).filters[0].targets[0]

    assert target.known_worker_sid_path == "task.agent_sid"
    assert target.known_worker_friendly_name_path is None
    assert target.known_worker_value({"agent_sid": "WK123"}) == "WK123"
    assert target.known_worker_value({}) is None


def test_known_worker_friendly_name_nested_path() -> None:
    text = _config(
        [_filter({"queue": SUPPORT, "known_worker_friendly_name": "task.agent.name"})]
    )

    target = parse_workflow_configuration(text).filters[0].targets[0]

    assert target.known_worker_friendly_name_path == "task.agent.name"
    assert target.known_worker_value({"agent": {"name": "Alice"}}) == "Alice"


def test_target_without_known_worker_has_no_value() -> None:
    assert RoutingTarget(SUPPORT).known_worker_value({"agent_sid": "WK1"}) is None


def test_queue_sid_accepts_upper_and_lower_hex() -> None:
    text = _config([_filter({"queue": EVERYONE}), _filter({"queue": SUPPORT})])

    assert parse_workflow_configuration(text).queue_sids() == {EVERYONE, SUPPORT}


def test_configuration_at_size_limit_is_accepted() -> None:
    base = json.dumps({"task_routing": {}, "padding": ""})
    text = base[:-2] + "x" * (MAX_CONFIGURATION_BYTES - len(base)) + '"}'
    assert len(text.encode()) == MAX_CONFIGURATION_BYTES

    assert parse_workflow_configuration(text).filters == ()


def _target(**keys: Any) -> str:
    return _config([_filter({"queue": SUPPORT, **keys})])


INVALID = [
    pytest.param(
        "not json",
        "Configuration is not valid JSON: Expecting value at line 1 column 1",
        None,
        id="not-json",
    ),
    pytest.param("[]", "Configuration must be a JSON object", None, id="array"),
    pytest.param('"text"', "Configuration must be a JSON object", None, id="string"),
    pytest.param(
        "{}", "task_routing is required", "task_routing", id="no-task-routing"
    ),
    pytest.param(
        '{"task_routing": null}',
        "task_routing is required",
        "task_routing",
        id="null-task-routing",
    ),
    pytest.param(
        '{"task_routing": []}',
        "task_routing must be an object",
        "task_routing",
        id="array-task-routing",
    ),
    pytest.param(
        '{"task_routing": {"filters": {}}}',
        "task_routing.filters must be an array",
        "task_routing.filters",
        id="filters-object",
    ),
    pytest.param(
        _config(["x"]),
        "task_routing.filters[0] must be an object",
        "task_routing.filters[0]",
        id="filter-string",
    ),
    pytest.param(
        _config([{"targets": [{"queue": SUPPORT}]}]),
        "task_routing.filters[0].expression is required",
        "task_routing.filters[0].expression",
        id="filter-no-expression",
    ),
    pytest.param(
        _config([_filter({"queue": SUPPORT}, expression="")]),
        "task_routing.filters[0].expression: Invalid expression '': it is empty",
        "task_routing.filters[0].expression",
        id="filter-empty-expression",
    ),
    pytest.param(
        _config([_filter({"queue": SUPPORT}, expression="skill-level > 3")]),
        "task_routing.filters[0].expression: Invalid expression 'skill-level > 3': unexpected '-' at position 5",
        "task_routing.filters[0].expression",
        id="filter-bad-expression",
    ),
    pytest.param(
        _config([{"expression": 5, "targets": [{"queue": SUPPORT}]}]),
        "task_routing.filters[0].expression must be a string, got 5",
        "task_routing.filters[0].expression",
        id="filter-expression-number",
    ),
    pytest.param(
        _config([_filter({"queue": SUPPORT}, filter_friendly_name=3)]),
        "task_routing.filters[0].filter_friendly_name must be a string",
        "task_routing.filters[0].filter_friendly_name",
        id="filter-name-number",
    ),
    pytest.param(
        _config([{"expression": "1==1"}]),
        "task_routing.filters[0].targets must be a non-empty array",
        "task_routing.filters[0].targets",
        id="no-targets",
    ),
    pytest.param(
        _config([_filter()]),
        "task_routing.filters[0].targets must be a non-empty array",
        "task_routing.filters[0].targets",
        id="empty-targets",
    ),
    pytest.param(
        _config([_filter({"queue": SUPPORT}), _filter({"priority": 1})]),
        "task_routing.filters[1].targets[0].queue is required",
        "task_routing.filters[1].targets[0].queue",
        id="first-target-no-queue",
    ),
    pytest.param(
        _config([_filter({"queue": SUPPORT}, "x")]),
        "task_routing.filters[0].targets[1] must be an object",
        "task_routing.filters[0].targets[1]",
        id="target-string",
    ),
    pytest.param(
        _target(queue="WQ123"),
        "task_routing.filters[0].targets[0].queue must be a TaskQueue SID (WQ and 32 hex digits), got 'WQ123'",
        "task_routing.filters[0].targets[0].queue",
        id="short-queue-sid",
    ),
    pytest.param(
        _target(queue="WW" + "a" * 32),
        "must be a TaskQueue SID",
        "task_routing.filters[0].targets[0].queue",
        id="workflow-sid-as-queue",
    ),
    pytest.param(
        _target(queue="WQ" + "g" * 32),
        "must be a TaskQueue SID",
        "task_routing.filters[0].targets[0].queue",
        id="non-hex-queue-sid",
    ),
    pytest.param(
        _target(queue=["WQ" + "a" * 32]),
        "must be a TaskQueue SID",
        "task_routing.filters[0].targets[0].queue",
        id="queue-array",
    ),
    pytest.param(
        _target(timeout=-5),
        "task_routing.filters[0].targets[0].timeout must be a positive integer, got -5",
        "task_routing.filters[0].targets[0].timeout",
        id="negative-timeout",
    ),
    pytest.param(
        _target(timeout=0),
        "timeout must be a positive integer, got 0",
        None,
        id="zero-timeout",
    ),
    pytest.param(
        _target(timeout="ten"),
        "timeout must be a positive integer, got 'ten'",
        None,
        id="word-timeout",
    ),
    pytest.param(
        _target(timeout=1.5),
        "timeout must be a positive integer, got 1.5",
        None,
        id="fraction-timeout",
    ),
    pytest.param(
        _target(timeout=True),
        "timeout must be a positive integer, got True",
        None,
        id="bool-timeout",
    ),
    pytest.param(
        _target(timeout="-1"),
        "timeout must be a positive integer",
        None,
        id="negative-string-timeout",
    ),
    pytest.param(
        _target(timeout=2**31),
        "timeout must be a positive integer",
        None,
        id="huge-timeout",
    ),
    pytest.param(
        _target(priority=-1),
        "task_routing.filters[0].targets[0].priority must be a non-negative integer, got -1",
        "task_routing.filters[0].targets[0].priority",
        id="negative-priority",
    ),
    pytest.param(
        _target(priority="high"),
        "priority must be a non-negative integer",
        None,
        id="word-priority",
    ),
    pytest.param(
        _target(priority={}),
        "priority must be a non-negative integer",
        None,
        id="object-priority",
    ),
    pytest.param(
        _target(expression="language == 'en' AND"),
        "task_routing.filters[0].targets[0].expression: Invalid expression",
        "task_routing.filters[0].targets[0].expression",
        id="bad-target-expression",
    ),
    pytest.param(
        _target(skip_if="workers.available =="),
        "task_routing.filters[0].targets[0].skip_if: Invalid expression 'workers.available =='",
        "task_routing.filters[0].targets[0].skip_if",
        id="bad-skip-if",
    ),
    pytest.param(
        _target(order_by="level DESC"),
        "task_routing.filters[0].targets[0].order_by: Invalid order_by 'level DESC'",
        "task_routing.filters[0].targets[0].order_by",
        id="bad-order-by",
    ),
    pytest.param(
        _target(order_by=["worker.level DESC"]),
        "order_by must be a string",
        None,
        id="order-by-array",
    ),
    pytest.param(
        _target(known_worker_sid="task.a", known_worker_friendly_name="task.b"),
        "task_routing.filters[0].targets[0] may set only one of known_worker_sid and known_worker_friendly_name",
        "task_routing.filters[0].targets[0]",
        id="both-known-worker-keys",
    ),
    pytest.param(
        _target(known_worker_sid="agent_sid"),
        "known_worker_sid must be a task attribute path like 'task.agent_sid', got 'agent_sid'",
        "task_routing.filters[0].targets[0].known_worker_sid",
        id="known-worker-unprefixed",
    ),
    pytest.param(
        _target(known_worker_sid="task"),
        "must be a task attribute path",
        None,
        id="known-worker-bare-task",
    ),
    pytest.param(
        _target(known_worker_friendly_name="task.agent-name"),
        "known_worker_friendly_name: Invalid path 'task.agent-name': unexpected '-' at position 10",
        "task_routing.filters[0].targets[0].known_worker_friendly_name",
        id="known-worker-hyphen",
    ),
    pytest.param(
        _target(known_worker_sid=1),
        "known_worker_sid must be a string, got 1",
        None,
        id="known-worker-number",
    ),
    pytest.param(
        _config(default_filter={"priority": 1}),
        "task_routing.default_filter.queue is required",
        "task_routing.default_filter.queue",
        id="default-no-queue",
    ),
    pytest.param(
        _config(default_filter={"queue": EVERYONE, "timeout": 30}),
        "task_routing.default_filter.timeout is not allowed: the default filter has no timeout",
        "task_routing.default_filter.timeout",
        id="default-timeout",
    ),
    pytest.param(
        _config(default_filter="WQ" + "a" * 32),
        "task_routing.default_filter must be an object",
        "task_routing.default_filter",
        id="default-string",
    ),
    pytest.param(
        _config(default_filter={"queue": EVERYONE, "expression": "is_vip"}),
        "task_routing.default_filter.expression: Invalid expression 'is_vip'",
        "task_routing.default_filter.expression",
        id="default-bad-expression",
    ),
]


@pytest.mark.parametrize(("text", "fragment", "path"), INVALID)
def test_invalid_configuration_names_the_problem(
    text: str, fragment: str, path: str | None
) -> None:
    with pytest.raises(WorkflowConfigurationError) as caught:
        parse_workflow_configuration(text)

    assert fragment in caught.value.message
    assert str(caught.value) == caught.value.message
    if path is not None:
        assert caught.value.path == path


def test_expression_problem_keeps_the_expression_error_as_cause() -> None:
    with pytest.raises(WorkflowConfigurationError) as caught:
        parse_workflow_configuration(_target(expression="a ="))

    assert isinstance(caught.value.__cause__, ExpressionError)
    assert isinstance(caught.value, ValueError)


def test_oversized_configuration_rejected_before_parsing() -> None:
    text = '{"task_routing": {}, "x": "' + "y" * MAX_CONFIGURATION_BYTES + '"}'

    with pytest.raises(WorkflowConfigurationError, match="larger than 1048576 bytes"):
        parse_workflow_configuration(text)


def test_size_limit_counts_utf8_bytes() -> None:
    padding = "é" * (MAX_CONFIGURATION_BYTES // 2)
    text = json.dumps({"task_routing": {}, "x": padding}, ensure_ascii=False)
    assert len(text) < MAX_CONFIGURATION_BYTES < len(text.encode())

    with pytest.raises(WorkflowConfigurationError, match="larger than"):
        parse_workflow_configuration(text)


def test_non_string_configuration_rejected() -> None:
    with pytest.raises(
        WorkflowConfigurationError, match="must be a JSON string, got dict"
    ):
        parse_workflow_configuration({"task_routing": {}})  # type: ignore[arg-type]


def test_first_problem_is_reported() -> None:
    text = _config([_filter({"queue": "bad"}), _filter({"timeout": -1})])

    with pytest.raises(WorkflowConfigurationError) as caught:
        parse_workflow_configuration(text)

    assert caught.value.path == "task_routing.filters[0].targets[0].queue"
