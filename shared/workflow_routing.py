"""Where a task goes next in its workflow (workflows.md §3). Pure: no I/O, no clock.

The service keeps a `RoutingPosition` per task and asks these functions what to
do when the task enters the workflow, when its step times out, and when its step
is skipped (`skip_if` true and no reservation made at once):

    decision = enter_workflow(config, task.attributes, now)
    if decision.action is RoutingAction.ROUTE:
        ... move the task to decision.target.queue_sid, arm step_deadline(...)
    else:
        ... cancel with decision.reason, emit decision.event_type

Decisions on points the specification leaves open (unconfirmed there):

- "After a timeout, never the default filter" is sticky: once a filter has been
  used up by a timeout of its last step, the default filter stays out of reach
  for the rest of the task's walk, even if a later filter is then used up by a
  skip. (The pseudo-code in §3 would let that later skip reopen it; the docs'
  rule says default is for tasks that matched no filter, and this task did.)
  A timeout of an earlier step does not count: only how a filter ends matters.
- A task matching no filter on entry, with no default filter, is removed at
  once with the timeout reason and event, as the §3 pseudo-code does.
- A skip out of the default filter removes the task (reason `REASON_SKIPPED`);
  a timeout there cannot happen (no timeout) but would remove it too.
- The skip removal reason is `REASON_SKIPPED`, 'Task canceled on Workflow skip'.
- Filters are re-evaluated against the attributes and `now` passed in at the
  moment of the move, so attribute updates and time of day count.
- A position that does not fit the configuration (the workflow changed without
  re-evaluation) raises `ValueError`; the service should re-enter the task.

Both the workflow-router and the queue-dispatcher use these: the dispatcher
takes a task's first step itself when it creates the task (see
`first_step_at_creation`), and the router, the owner of routing positions,
confirms that step and walks the task on from there.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.events import epoch_ms
from shared.workflow_config import (
    RoutingTarget,
    WorkflowConfiguration,
    parse_workflow_configuration,
)

REASON_TIMEOUT = "Task canceled on Workflow timeout"
REASON_SKIPPED = "Task canceled on Workflow skip"
EVENT_TIMEOUT = "workflow.timeout"
EVENT_SKIPPED = "workflow.skipped"


class RoutingAction(enum.Enum):
    ROUTE = "route"
    REMOVE = "remove"


class _StepEnd(enum.Enum):
    TIMEOUT = "timeout"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class RoutingPosition:
    """Where a task stands: filter (None = default filter), step, since when.

    `default_filter_allowed` turns false for good once a filter ran out through
    a timeout.
    """

    filter_index: int | None
    step_index: int
    step_entered_at: datetime
    default_filter_allowed: bool = True

    @property
    def in_default_filter(self) -> bool:
        return self.filter_index is None


@dataclass(frozen=True)
class RoutingDecision:
    """Either route to `target` at `position`, or remove the task."""

    action: RoutingAction
    position: RoutingPosition | None = None
    target: RoutingTarget | None = None
    filter_friendly_name: str | None = None
    reason: str | None = None
    event_type: str | None = None


def enter_workflow(
    config: WorkflowConfiguration, task_attributes: Mapping[str, Any], now: datetime
) -> RoutingDecision:
    """First step of the first matching filter, else the default filter, else removal.

    Use on task creation, on `ReEvaluateTasks` and when attributes change.
    """
    return _next_filter(config, 0, True, _StepEnd.TIMEOUT, task_attributes, now)


def next_after_timeout(
    config: WorkflowConfiguration,
    position: RoutingPosition,
    task_attributes: Mapping[str, Any],
    now: datetime,
) -> RoutingDecision:
    """The move after the step at `position` timed out.

    Next step of the filter; after its last step, a later matching filter but
    never the default filter; otherwise removal (`workflow.timeout`).
    """
    return _leave_step(config, position, _StepEnd.TIMEOUT, task_attributes, now)


def next_after_skip(
    config: WorkflowConfiguration,
    position: RoutingPosition,
    task_attributes: Mapping[str, Any],
    now: datetime,
) -> RoutingDecision:
    """The move after the step at `position` was skipped by its `skip_if`.

    Next step of the filter; after its last step, a later matching filter or
    the default filter (unless an earlier timeout ruled it out); otherwise
    removal (`workflow.skipped`).
    """
    return _leave_step(config, position, _StepEnd.SKIPPED, task_attributes, now)


def step_deadline(
    config: WorkflowConfiguration, position: RoutingPosition
) -> datetime | None:
    """When the step at `position` times out, or None if it waits for TTL."""
    timeout = target_at(config, position).timeout
    if timeout is None:
        return None
    return position.step_entered_at + timedelta(seconds=timeout)


def target_at(
    config: WorkflowConfiguration, position: RoutingPosition
) -> RoutingTarget:
    """The routing step a position points at; `ValueError` if it does not exist."""
    if position.filter_index is None:
        if config.default_filter is None or position.step_index != 0:
            raise ValueError(f"no default filter step for {position!r}")
        return config.default_filter
    if not 0 <= position.filter_index < len(config.filters):
        raise ValueError(f"no filter for {position!r}")
    targets = config.filters[position.filter_index].targets
    if not 0 <= position.step_index < len(targets):
        raise ValueError(f"no step for {position!r}")
    return targets[position.step_index]


def should_skip(
    target: RoutingTarget, worker_counts: Mapping[str, int], now: datetime | None = None
) -> bool:
    """Evaluate the step's `skip_if` on queue counters (`available`, `WA...`).

    Call only when no reservation could be created at once (§3 step 3).
    """
    if target.skip_if is None:
        return False
    return target.skip_if.evaluate({"workers": worker_counts}, now=now)


def _leave_step(
    config: WorkflowConfiguration,
    position: RoutingPosition,
    end: _StepEnd,
    task_attributes: Mapping[str, Any],
    now: datetime,
) -> RoutingDecision:
    target_at(config, position)  # refuse positions from another configuration
    if position.filter_index is None:
        # The default filter is the end of the line.
        return _removal(end)

    index = position.filter_index
    allowed = position.default_filter_allowed
    if position.step_index + 1 < len(config.filters[index].targets):
        return _route(config, index, position.step_index + 1, now, allowed)

    # Filter used up. A skip counts as "did not match"; a timeout closes the
    # default filter for good.
    allowed = allowed and end is _StepEnd.SKIPPED
    return _next_filter(config, index + 1, allowed, end, task_attributes, now)


def _next_filter(
    config: WorkflowConfiguration,
    first: int,
    default_allowed: bool,
    why: _StepEnd,
    task_attributes: Mapping[str, Any],
    now: datetime,
) -> RoutingDecision:
    for index in range(first, len(config.filters)):
        if config.filters[index].expression.evaluate(task_attributes, now=now):
            return _route(config, index, 0, now, default_allowed)
    if default_allowed and config.default_filter is not None:
        return _route(config, None, 0, now, default_allowed)
    return _removal(why)


def _route(
    config: WorkflowConfiguration,
    filter_index: int | None,
    step_index: int,
    now: datetime,
    default_allowed: bool,
) -> RoutingDecision:
    position = RoutingPosition(filter_index, step_index, now, default_allowed)
    name = None if filter_index is None else config.filters[filter_index].friendly_name
    return RoutingDecision(
        RoutingAction.ROUTE,
        position=position,
        target=target_at(config, position),
        filter_friendly_name=name,
    )


def _removal(why: _StepEnd) -> RoutingDecision:
    if why is _StepEnd.SKIPPED:
        return RoutingDecision(
            RoutingAction.REMOVE, reason=REASON_SKIPPED, event_type=EVENT_SKIPPED
        )
    return RoutingDecision(
        RoutingAction.REMOVE, reason=REASON_TIMEOUT, event_type=EVENT_TIMEOUT
    )


def first_step_at_creation(
    config: WorkflowConfiguration, task_attributes: Mapping[str, Any], now: datetime
) -> RoutingDecision | None:
    """The first step, if the dispatcher may take it while creating the task.

    Only a plain move into a queue qualifies: a step with `skip_if` needs the
    router to go on when it is skipped, and a removal is the router's to make.
    """
    decision = enter_workflow(config, task_attributes, now)
    if decision.action is not RoutingAction.ROUTE or decision.target is None:
        return None
    if decision.target.skip_if is not None:
        return None
    return decision


def step_fields(target: RoutingTarget) -> dict[str, Any]:
    """A step as the queue-dispatcher stores it: expressions as their text."""
    order_by = None
    if target.order_by is not None:
        order_by = ", ".join(
            f"worker.{path} {'DESC' if descending else 'ASC'}"
            for path, descending in target.order_by.clauses
        )
    return {
        "queue_sid": target.queue_sid or None,
        "priority": target.priority,
        "expression": target.expression.text if target.expression else None,
        "order_by": order_by,
        "skip_if": target.skip_if.text if target.skip_if else None,
        "known_worker_sid": target.known_worker_sid_path,
        "known_worker_friendly_name": target.known_worker_friendly_name_path,
    }


def workflow_version(date_updated: datetime) -> int:
    """A workflow configuration's version as services compare it: `date_updated` in
    whole epoch milliseconds (as the store keeps it)."""
    return epoch_ms(date_updated)


class ParsedWorkflows:
    """Parsed workflow configurations by (workflow SID, date updated), bounded."""

    def __init__(self, limit: int = 1024) -> None:
        self.limit = limit
        self._parsed: dict[tuple[str, datetime], WorkflowConfiguration] = {}

    def get(self, sid: str, date_updated: datetime, text: str) -> WorkflowConfiguration:
        key = (sid, date_updated)
        parsed = self._parsed.get(key)
        if parsed is None:
            if len(self._parsed) >= self.limit:
                self._parsed.pop(next(iter(self._parsed)))
            parsed = self._parsed[key] = parse_workflow_configuration(text)
        return parsed
