"""TaskQueue: selects eligible workers by expression and orders waiting tasks."""

from __future__ import annotations

from pydantic import Field

from shared.models._base import WorkspaceResource
from shared.models.workspace import QueueOrder


class TaskQueue(WorkspaceResource):
    friendly_name: str
    target_workers: str = Field("1==1", description="TargetWorkers expression.")
    max_reserved_workers: int = 1
    task_order: QueueOrder = QueueOrder.FIFO
    reservation_activity_sid: str | None = None
    reservation_activity_name: str | None = None
    assignment_activity_sid: str | None = None
    assignment_activity_name: str | None = None
