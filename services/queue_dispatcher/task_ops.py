"""Task decisions: create, update, delete, and the router's route and remove.

Every function validates first and changes state after, so a refusal leaves
memory as it was. Matching passes that a change asks for run in `settle()`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pymongo import DeleteMany

from services.queue_dispatcher import offers, worker_load
from services.queue_dispatcher.preconditions import check_if_match
from services.queue_dispatcher.selection import should_skip
from services.queue_dispatcher.settle import match_task
from services.queue_dispatcher.state import RoutingStep, TaskState, WorkspaceState, parse_attributes
from services.queue_dispatcher.state_machine import (
    check_client_task_transition,
    parse_task_status,
)
from services.queue_dispatcher.unit import SYSTEM, Actor, Unit
from shared.commands import CreateTask, DeleteTask, RemoveTask, RouteTask, UpdateTask
from shared.errors import DomainValidationError, NotFoundError
from shared.events import target_matched_data, task_data, workflow_task_data
from shared.models import ReservationStatus, Task, TaskChannel, TaskQueue, TaskStatus, Workflow
from shared.sids import SidPrefix, new_sid
from shared.storage import collections as c
from shared.storage.committer import Write
from shared.workflow_routing import (
    ParsedWorkflows,
    RoutingDecision,
    first_step_at_creation,
    step_fields,
    workflow_version,
)

T = TaskStatus
TTL_REASON = "Task TTL Exceeded"
_FINISHED = (T.ASSIGNED, T.WRAPPING, T.COMPLETED, T.CANCELED)
_WORKFLOWS = ParsedWorkflows()


def create_task(unit: Unit, command: CreateTask) -> TaskState:
    """A new pending task, in its workflow's first step when that is a plain queue step.

    Taking the first step here saves the router's round trip and a second write
    of the task; the router adopts the step when it reads `task.created` (which
    then names the queue). Otherwise the task waits in no queue and the router
    answers `task.created` with `task.route`.
    """
    state, now = unit.state, unit.now
    channel = _channel(unit, command.task_channel or "default")
    routing_target = command.routing_target or command.task_queue_sid
    workflow_sid = _workflow_sid(unit, command.workflow_sid, routing_target)
    _check_routing_target(unit, routing_target)
    ignore_capacity = command.ignore_capacity
    if (
        routing_target
        and routing_target.startswith(SidPrefix.WORKER)
        and ignore_capacity is None
    ):
        ignore_capacity = True
    workflow = state.config.workflows.get(workflow_sid or "")

    model = Task(
        sid=new_sid(SidPrefix.TASK),
        account_sid=state.account_sid,
        workspace_sid=state.sid,
        attributes=command.attributes,
        priority=command.priority or 0,
        timeout=command.timeout or 86400,
        task_channel_sid=channel.sid,
        task_channel_unique_name=channel.unique_name,
        workflow_sid=workflow_sid,
        workflow_friendly_name=workflow.friendly_name if workflow else None,
        virtual_start_time=command.virtual_start_time or now,
        routing_target=routing_target,
        ignore_capacity=ignore_capacity,
        date_created=now,
        date_updated=now,
    )
    task = TaskState(model, parse_attributes(model.attributes))
    state.tasks[task.sid] = task
    unit.created(task)
    first = None
    if workflow is not None and (routing_target is None or routing_target == workflow.sid):
        first = _first_step(unit, task, workflow, command)
    if first is None:
        _emit(unit, task, "task.created")
    else:
        _take_first_step(unit, task, workflow, *first)
    unit.schedule("task", task.sid, ttl_due(task))
    return task


def _first_step(
    unit: Unit, task: TaskState, workflow: Workflow, command: CreateTask
) -> tuple[RoutingDecision, RoutingStep] | None:
    """The workflow's first step if the dispatcher may take it now (see `create_task`)."""
    if command.workflow_date_updated is not None and workflow.date_updated < command.workflow_date_updated:
        return None  # this copy of the workflow is older than the gateway's
    try:
        config = _WORKFLOWS.get(workflow.sid, workflow.date_updated, workflow.configuration)
    except ValueError:
        return None
    decision = first_step_at_creation(config, task.attributes, unit.now)
    if decision is None or decision.target is None:
        return None
    fields = step_fields(decision.target)
    if fields["queue_sid"] not in unit.state.config.queues:
        return None
    fields.pop("priority")
    step = RoutingStep(
        seq=1,
        step_key=f"{task.sid}:1",
        workflow_sid=workflow.sid,
        ignore_capacity=task.model.ignore_capacity,
        **fields,
    )
    return decision, step


def _take_first_step(
    unit: Unit, task: TaskState, workflow: Workflow, decision: RoutingDecision, step: RoutingStep
) -> None:
    """The events the router and `task.route` would have made, in the same order."""
    assert decision.position is not None and decision.target is not None
    queue = unit.state.config.queues[step.queue_sid or ""]
    model = task.model
    _take_step(task, step, decision.target.priority)
    _set_queue(unit, task, queue)
    # The router checks it chose with the same workflow version (else it re-evaluates).
    _emit(unit, task, "task.created", {"workflow_date_updated": str(workflow_version(workflow.date_updated))})
    workflow_data = workflow_task_data(
        task_sid=task.sid,
        task_attributes=model.attributes,
        workflow_sid=workflow.sid,
        workflow_name=workflow.friendly_name,
        task_queue_sid=queue.sid,
        task_channel_sid=model.task_channel_sid,
        task_channel_unique_name=model.task_channel_unique_name,
        task_date_created=model.date_created,
    )
    position = decision.position
    matched = target_matched_data(position.filter_index, decision.filter_friendly_name, position.step_index)
    for event_type, data in (
        ("workflow.entered", workflow_data),
        ("workflow.target-matched", {**workflow_data, **{k: v for k, v in matched.items() if v is not None}}),
    ):
        unit.emit(
            event_type,
            resource_type="task",
            resource_sid=task.sid,
            data=data,
            description=f"Task {task.sid} {event_type}",
            actor=SYSTEM,
        )
    _emit_queue_entered(unit, task, queue, actor=SYSTEM)
    unit.state.index.refresh_task(task)
    unit.match_task(task.sid)


def update_task(unit: Unit, task: TaskState, command: UpdateTask) -> None:
    """Fields first (one `task.updated`), then the status change, as TaskRouter does."""
    check_if_match(command.if_match, task.model.version, f"task {task.sid}")
    target = None
    if command.assignment_status is not None:
        target = parse_task_status(command.assignment_status)
        check_client_task_transition(task.model, target)
    channel = _channel(unit, command.task_channel) if command.task_channel else None

    if _apply_fields(unit, task, command, channel):
        _emit(unit, task, "task.updated")
        if task.status is T.PENDING:
            unit.match_task(task.sid)
    if target is T.CANCELED:
        offers.cancel_task(unit, task, command.reason)
    elif target is T.WRAPPING:
        offers.wrap_up(unit, task)
    elif target is T.COMPLETED:
        offers.complete(unit, task, command.reason)


def delete_task(unit: Unit, task: TaskState, command: DeleteTask) -> None:
    """Remove the task and its reservations; open offers are canceled first."""
    check_if_match(command.if_match, task.model.version, f"task {task.sid}")
    _remove(unit, task, "task.deleted")


def expire_assignment(unit: Unit, task_sid: str) -> None:
    """An assigned task past `assignment_due` is removed: `task.system-deleted`."""
    task = unit.state.tasks.get(task_sid)
    if task is None or task.status is not T.ASSIGNED:
        return
    if assignment_due(unit.state, task) <= unit.now:
        _remove(unit, task, "task.system-deleted")


def assignment_due(state: WorkspaceState, task: TaskState) -> datetime:
    """When an assigned task is removed: `ASSIGNED_LIFETIME` after its acceptance
    (the accepted reservation's last change; the task's without one)."""
    accepted = state.reservations.get(task.accepted or "")
    since = accepted.date_updated if accepted is not None else task.model.date_updated
    return since + offers.ASSIGNED_LIFETIME


def _remove(unit: Unit, task: TaskState, event_type: str) -> None:
    state = unit.state
    for reservation_sid in list(task.pending):
        offers.end_pending(
            unit, state.reservations[reservation_sid], ReservationStatus.CANCELED
        )
    if task.accepted is not None and task.accepted in state.reservations:
        offers.release_assignment(unit, state.reservations[task.accepted])
    state.index.remove_task(task.sid)
    state.forget_tasks({task.sid})
    unit.cancel_timer("task", task.sid)
    unit.cancel_timer("assigned", task.sid)
    unit.deleted(task)
    # The reservations go with the task: their offer times first go into the
    # workers' idle checkpoint, which would otherwise read them at the next load.
    worker_load.write_checkpoint(unit)
    unit.delete_reservations_of(task.sid)
    _emit(unit, task, event_type)


def route_task(unit: Unit, command: RouteTask) -> str:
    """Place the task in the router's step and try to reserve; returns the outcome.

    Outcomes: reserved, waiting, skipped (skip_if held and nobody was reserved),
    deferred (reserved and the router asked to wait), gone (nothing left to
    route), stale (an older step than the one applied).
    """
    state = unit.state
    task = state.find_task(command.task_sid)
    if task is None or task.status in _FINISHED:
        return "gone"
    if command.queue_sid is None and command.target_worker_sid is None:
        raise DomainValidationError("task.route needs queue_sid or target_worker_sid")
    if command.queue_sid is not None and command.queue_sid not in state.config.queues:
        raise NotFoundError("TaskQueue", command.queue_sid)
    current = task.step
    if current is not None and command.seq and command.seq < current.seq:
        return "stale"
    if current is not None and _same_step(current, command):
        return _rematch(unit, task)
    if task.status is T.RESERVED and command.defer_if_reserved:
        if not task.overdue:
            unit.changed(task)
            task.overdue = True
        return "deferred"

    _enter_step(unit, task, RoutingStep.from_command(command), command.priority)
    if task.status is T.RESERVED:
        return "reserved"
    return _rematch(unit, task)


def remove_task(unit: Unit, command: RemoveTask) -> tuple[str, TaskState | None]:
    """Cancel a task that ran out of workflow steps (or answer why not)."""
    task = unit.state.find_task(command.task_sid)
    if task is None or task.status not in (T.PENDING, T.RESERVED):
        return "gone", task
    if task.step is not None and command.seq and command.seq < task.step.seq:
        return "stale", task
    if task.status is T.RESERVED and command.defer_if_reserved:
        if not task.overdue:
            unit.changed(task)
            task.overdue = True
        return "deferred", task
    offers.cancel_task(unit, task, command.reason)
    return "removed", task


def expire_task(unit: Unit, task_sid: str) -> None:
    """Task TTL: a pending or reserved task past `date_created + timeout` is canceled."""
    task = unit.state.tasks.get(task_sid)
    if task is None or task.status not in (T.PENDING, T.RESERVED):
        return
    if ttl_due(task) <= unit.now:
        offers.cancel_task(unit, task, TTL_REASON)


# Statuses of tasks removed `DISPATCHER_FINISHED_TASK_RETENTION_SECONDS` after
# their last change (TaskRouter keeps them 5 minutes, without an event).
REMOVABLE = [str(T.COMPLETED), str(T.CANCELED)]


def remove_finished_tasks(unit: Unit, task_sids: list[str]) -> None:
    """Delete completed or canceled tasks and their reservations (no event).

    The store filter repeats the statuses: a task that is not finished (never
    the case: a finished task stays finished) is left alone.
    """
    unit.state.forget_tasks(set(task_sids))
    worker_load.write_checkpoint(unit)  # before the reservations go, as in `_remove`
    selected = {"_id": {"$in": task_sids}, "assignment_status": {"$in": REMOVABLE}}
    unit.write(Write(c.TASKS, DeleteMany(selected)))
    unit.write(Write(c.RESERVATIONS, DeleteMany({"task_sid": {"$in": task_sids}})))


def ttl_due(task: TaskState) -> datetime:
    return task.model.date_created + timedelta(seconds=task.model.timeout)


# -- helpers ---------------------------------------------------------------------
def _same_step(current: RoutingStep, command: RouteTask) -> bool:
    if command.seq:
        return command.seq == current.seq
    return command.step_key == current.step_key


def _rematch(unit: Unit, task: TaskState) -> str:
    """Matching in the current step only: no queue events (a repeat of the step)."""
    if task.status is T.RESERVED:
        return "reserved"
    if task.status is not T.PENDING or task.step is None:
        return "gone"
    if task.overdue:
        return "waiting"
    if not task.waiting:
        unit.changed(task)
        task.waiting = True
        unit.state.index.refresh_task(task)
    if match_task(unit, task):
        return "reserved" if task.status is T.RESERVED else "gone"
    if should_skip(unit.state, task.step, unit.now):
        unit.changed(task)
        task.waiting = False
        unit.state.index.refresh_task(task)
        return "skipped"
    return "waiting"


def _enter_step(
    unit: Unit, task: TaskState, step: RoutingStep, priority: int | None
) -> None:
    """Take the new step; a new queue gives `task-queue.moved` then `task-queue.entered`."""
    state = unit.state
    unit.changed(task)
    model = task.model
    _take_step(task, step, priority)
    queue = state.config.queues.get(step.queue_sid or "")
    if queue is not None and queue.sid != model.task_queue_sid:
        if model.task_queue_sid:
            _emit(unit, task, "task-queue.moved")
        _set_queue(unit, task, queue)
        _emit_queue_entered(unit, task, queue)
    state.index.refresh_task(task)


def _take_step(task: TaskState, step: RoutingStep, priority: int | None) -> None:
    if priority is not None:
        task.model.priority = priority
    task.step = step
    task.waiting = True
    task.overdue = False


def _set_queue(unit: Unit, task: TaskState, queue: TaskQueue) -> None:
    model = task.model
    model.task_queue_sid = queue.sid
    model.task_queue_friendly_name = queue.friendly_name
    model.task_queue_entered_date = unit.now


def _emit_queue_entered(unit: Unit, task: TaskState, queue: TaskQueue, actor: Actor | None = None) -> None:
    _emit(unit, task, "task-queue.entered", {"task_queue_target_expression": queue.target_workers}, actor=actor)


def _apply_fields(
    unit: Unit, task: TaskState, command: UpdateTask, channel: TaskChannel | None
) -> bool:
    model = task.model
    changes: dict[str, Any] = {}
    if command.attributes is not None and command.attributes != model.attributes:
        changes["attributes"] = command.attributes
    if command.priority is not None and command.priority != model.priority:
        changes["priority"] = command.priority
    if channel is not None and channel.sid != model.task_channel_sid:
        changes["task_channel_sid"] = channel.sid
        changes["task_channel_unique_name"] = channel.unique_name
    if (
        command.virtual_start_time is not None
        and command.virtual_start_time != model.virtual_start_time
    ):
        changes["virtual_start_time"] = command.virtual_start_time
    if not changes:
        return False
    unit.changed(task)
    for name, value in changes.items():
        setattr(model, name, value)
    if "attributes" in changes:
        task.set_attributes(changes["attributes"])
    unit.state.index.refresh_task(task)
    return True


def _channel(unit: Unit, key: str) -> TaskChannel:
    channel = unit.state.config.channel(key)
    if channel is None:
        raise NotFoundError("TaskChannel", key)
    return channel


def _workflow_sid(
    unit: Unit, workflow_sid: str | None, routing_target: str | None
) -> str | None:
    workflows = unit.state.config.workflows
    if workflow_sid is not None:
        if workflow_sid not in workflows:
            raise NotFoundError("Workflow", workflow_sid)
        return workflow_sid
    if routing_target and routing_target.startswith(SidPrefix.WORKFLOW):
        return routing_target
    if routing_target:
        return None
    if len(workflows) == 1:
        return next(iter(workflows))
    raise DomainValidationError("WorkflowSid field is required", param="WorkflowSid")


def _check_routing_target(unit: Unit, target: str | None) -> None:
    state = unit.state
    if target is None:
        return
    known = {
        SidPrefix.WORKER: ("Worker", state.workers),
        SidPrefix.TASK_QUEUE: ("TaskQueue", state.config.queues),
        SidPrefix.WORKFLOW: ("Workflow", state.config.workflows),
    }
    for prefix, (resource, table) in known.items():
        if target.startswith(prefix):
            if target not in table:
                raise NotFoundError(resource, target)
            return
    raise DomainValidationError(
        f"RoutingTarget {target!r} is not a Worker, TaskQueue or Workflow SID",
        param="RoutingTarget",
    )


def _emit(
    unit: Unit,
    task: TaskState,
    event_type: str,
    extra: dict[str, Any] | None = None,
    actor: Actor | None = None,
) -> None:
    unit.emit(
        event_type,
        resource_type="task",
        resource_sid=task.sid,
        data={**task_data(task.model, unit.now), **(extra or {})},
        description=f"Task {task.sid} {event_type.split('.', 1)[1]}",
        actor=actor,
    )
