"""The router's own state: one routing position per task still being routed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from pymongo import DeleteOne, InsertOne, ReplaceOne

from shared.workflow_routing import RoutingPosition
from shared.storage import collections as c
from shared.storage.committer import Write


class PositionRecord(BaseModel):
    """Where one task stands in its workflow, and when its step times out."""

    task_sid: str
    account_sid: str
    workspace_sid: str
    workflow_sid: str | None
    task_attributes: str = "{}"
    task_channel_sid: str | None = None
    task_channel_unique_name: str | None = None
    task_created_at: datetime
    seq: int = Field(0, description="Routing steps entered so far; the dispatcher's guard.")
    filter_index: int | None = None
    step_index: int = 0
    step_entered_at: datetime
    default_filter_allowed: bool = True
    direct_queue_sid: str | None = Field(None, description="Set for RoutingTarget=WQ/TaskQueueSid.")
    direct_worker_sid: str | None = Field(None, description="Set for RoutingTarget=WK.")
    ignore_capacity: bool | None = None
    queue_sid: str | None = Field(None, description="Queue of the current step.")
    deadline: datetime | None = None
    overdue: bool = Field(False, description="Deadline passed while a reservation was pending.")
    reenter: bool = Field(
        False,
        description="The overdue move is a re-evaluation: when the pending reservation "
        "ends, the task enters its workflow again (instead of leaving its step on timeout).",
    )

    @property
    def position(self) -> RoutingPosition:
        return RoutingPosition(
            self.filter_index, self.step_index, self.step_entered_at, self.default_filter_allowed
        )

    @property
    def is_direct(self) -> bool:
        return self.direct_queue_sid is not None or self.direct_worker_sid is not None

    def to_document(self) -> dict[str, Any]:
        return {"_id": self.task_sid, **self.model_dump()}


def save(record: PositionRecord) -> Write:
    return Write(
        c.ROUTING_POSITIONS,
        ReplaceOne({"_id": record.task_sid}, record.to_document(), upsert=True),
    )


def insert(record: PositionRecord) -> Write:
    """A task's first position; a duplicate key (it exists) is a ConflictError."""
    return Write(c.ROUTING_POSITIONS, InsertOne(record.to_document()))


def forget(task_sid: str) -> Write:
    return Write(c.ROUTING_POSITIONS, DeleteOne({"_id": task_sid}))
