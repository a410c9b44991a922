"""Stored TaskRouter resources: one pydantic model per resource."""

from shared.models._base import Resource, WorkspaceResource, utcnow
from shared.models.activity import Activity
from shared.models.reservation import Reservation, ReservationStatus
from shared.models.task import Task, TaskStatus
from shared.models.task_channel import DEFAULT_TASK_CHANNELS, TaskChannel
from shared.models.task_queue import TaskQueue
from shared.models.worker import Worker, WorkerChannel
from shared.models.workflow import Workflow
from shared.models.workspace import QueueOrder, Workspace

__all__ = [
    "DEFAULT_TASK_CHANNELS",
    "Activity",
    "QueueOrder",
    "Reservation",
    "ReservationStatus",
    "Resource",
    "Task",
    "TaskChannel",
    "TaskQueue",
    "TaskStatus",
    "Worker",
    "WorkerChannel",
    "Workflow",
    "Workspace",
    "WorkspaceResource",
    "utcnow",
]
