"""Command payloads sent by request/reply to the service that owns the state.

The gateway checks shapes (types, SID formats, JSON, sizes) and configuration
references (it owns configuration); the owner checks everything that depends on
its own state (status transitions, uniqueness of worker names, versions).
Each command names its action; `CommandClient.request(service, action, payload)`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class Command(BaseModel):
    account_sid: str
    workspace_sid: str
    actor_sid: str | None = Field(None, description="Account or API key that asked.")
    source_ip_address: str | None = None


# -- queue-dispatcher: workers -------------------------------------------------
class CreateWorker(Command):
    action: Literal["worker.create"] = "worker.create"
    friendly_name: str
    attributes: str = "{}"
    activity_sid: str | None = None


class UpdateWorker(Command):
    action: Literal["worker.update"] = "worker.update"
    worker_sid: str
    friendly_name: str | None = None
    attributes: str | None = None
    activity_sid: str | None = None
    reject_pending_reservations: bool = False
    if_match: str | None = None


class DeleteWorker(Command):
    action: Literal["worker.delete"] = "worker.delete"
    worker_sid: str
    if_match: str | None = None


class FetchWorker(Command):
    """Read a worker as the dispatcher holds it: its channels with their current load.

    A channel's `reserved_tasks` and `assigned_tasks` are not stored with the
    worker (the dispatcher counts them from live reservations), so reads of
    worker channels ask the dispatcher.
    """

    action: Literal["worker.fetch"] = "worker.fetch"
    worker_sid: str


class UpdateWorkerChannel(Command):
    action: Literal["worker-channel.update"] = "worker-channel.update"
    worker_sid: str
    channel: str = Field(description="WorkerChannel SID, TaskChannel SID or unique name.")
    capacity: int | None = None
    available: bool | None = None


# -- queue-dispatcher: tasks ---------------------------------------------------
class CreateTask(Command):
    action: Literal["task.create"] = "task.create"
    attributes: str = "{}"
    priority: int | None = None
    timeout: int | None = None
    task_channel: str | None = Field(None, description="TaskChannel SID or unique name.")
    workflow_sid: str | None = None
    virtual_start_time: datetime | None = None
    routing_target: str | None = None
    ignore_capacity: bool | None = None
    task_queue_sid: str | None = None
    workflow_date_updated: datetime | None = Field(
        None, description="The workflow's DateUpdated the gateway saw; an older copy is read again."
    )


class UpdateTask(Command):
    action: Literal["task.update"] = "task.update"
    task_sid: str
    attributes: str | None = None
    assignment_status: str | None = None
    reason: str | None = None
    priority: int | None = None
    task_channel: str | None = None
    virtual_start_time: datetime | None = None
    if_match: str | None = None


class DeleteTask(Command):
    action: Literal["task.delete"] = "task.delete"
    task_sid: str
    if_match: str | None = None


class UpdateReservation(Command):
    action: Literal["reservation.update"] = "reservation.update"
    reservation_sid: str
    task_sid: str | None = Field(None, description="Set when reached through /Tasks/{WT}.")
    worker_sid: str | None = Field(None, description="Set when reached through /Workers/{WK}.")
    reservation_status: str | None = None
    worker_activity_sid: str | None = None
    instruction: str | None = None
    instruction_params: dict[str, Any] = Field(default_factory=dict)
    if_match: str | None = None


# -- queue-dispatcher: from the workflow-router --------------------------------
class RouteTask(Command):
    """Place a task in a routing step's queue and try to reserve a worker."""

    action: Literal["task.route"] = "task.route"
    task_sid: str
    workflow_sid: str
    step_key: str = Field(description="Identifies the step, so a repeat is harmless.")
    queue_sid: str | None = Field(None, description="None only with target_worker_sid.")
    priority: int | None = None
    expression: str | None = None
    order_by: str | None = None
    skip_if: str | None = None
    known_worker_sid: str | None = Field(None, description="Path such as task.agent_sid.")
    known_worker_friendly_name: str | None = None
    defer_if_reserved: bool = Field(
        False, description="On a step timeout: do nothing while a reservation is pending."
    )
    seq: int = Field(
        0,
        description=(
            "Routing step sequence number of this task, increasing by one per step the "
            "router enters. The dispatcher keeps the highest seq applied to the task; "
            "a command with a lower seq changes nothing and answers 'stale'; the same "
            "seq again re-runs matching only (no new events)."
        ),
    )
    target_worker_sid: str | None = Field(
        None, description="Direct routing to one worker (RoutingTarget=WK…)."
    )
    ignore_capacity: bool | None = None


RouteOutcome = Literal["reserved", "waiting", "skipped", "deferred", "gone", "stale"]


class RemoveTask(Command):
    """Cancel a task that ran out of workflow steps."""

    action: Literal["task.remove"] = "task.remove"
    task_sid: str
    reason: str
    defer_if_reserved: bool = Field(
        True, description="While a reservation is pending, answer 'deferred' and wait."
    )
    seq: int = 0


# -- statistics ----------------------------------------------------------------
class StatisticsQuery(Command):
    action: Literal["statistics.query"] = "statistics.query"
    route: str = Field(description="Which statistics route, e.g. 'workspace', 'task_queue'.")
    resource_sid: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
