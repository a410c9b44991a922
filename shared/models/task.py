"""Task: a unit of work routed through a workflow to a worker."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from shared.models._base import WorkspaceResource


class TaskStatus(StrEnum):
    PENDING = "pending"
    RESERVED = "reserved"
    ASSIGNED = "assigned"
    WRAPPING = "wrapping"
    COMPLETED = "completed"
    CANCELED = "canceled"

    @property
    def is_terminal(self) -> bool:
        return self in (TaskStatus.COMPLETED, TaskStatus.CANCELED)


class Task(WorkspaceResource):
    attributes: str = "{}"
    assignment_status: TaskStatus = TaskStatus.PENDING
    priority: int = 0
    reason: str | None = None
    timeout: int = 86400
    task_channel_sid: str | None = None
    task_channel_unique_name: str | None = None
    workflow_sid: str | None = None
    workflow_friendly_name: str | None = None
    task_queue_sid: str | None = None
    task_queue_friendly_name: str | None = None
    task_queue_entered_date: datetime | None = None
    virtual_start_time: datetime | None = None
    routing_target: str | None = None
    ignore_capacity: bool | None = None
    addons: str = "{}"
    version: int = 0
    reservation_rounds: int = Field(0, description="pending→reserved transitions so far.")
