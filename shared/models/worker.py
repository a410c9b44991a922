"""Worker: whoever takes tasks; one WorkerChannel per TaskChannel."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from shared.models._base import WorkspaceResource, utcnow


class WorkerChannel(BaseModel):
    """A worker's capacity on one task channel (embedded in the worker document)."""

    sid: str
    task_channel_sid: str
    task_channel_unique_name: str
    configured_capacity: int = 1
    available: bool = True
    assigned_tasks: int = Field(0, description="Tasks assigned or wrapping on it.")
    reserved_tasks: int = Field(0, description="Pending reservations holding capacity.")
    last_reserved_at: datetime | None = Field(
        None, description="When this worker last received a reservation on it."
    )
    date_created: datetime = Field(default_factory=utcnow)
    date_updated: datetime = Field(default_factory=utcnow)

    @property
    def used_capacity(self) -> int:
        return self.assigned_tasks + self.reserved_tasks

    def count_live(self, reservation_status: str) -> None:
        """Add one live reservation on this channel: a pending one holds reserved
        capacity, an accepted or wrapping one assigned capacity."""
        if reservation_status == "pending":
            self.reserved_tasks += 1
        else:
            self.assigned_tasks += 1

    @property
    def available_capacity_percentage(self) -> int:
        if self.configured_capacity <= 0:
            return 0
        free = max(0, self.configured_capacity - self.used_capacity)
        return 100 * free // self.configured_capacity


class Worker(WorkspaceResource):
    friendly_name: str
    attributes: str = "{}"
    activity_sid: str
    activity_name: str
    available: bool = False
    date_status_changed: datetime = Field(default_factory=utcnow)
    channels: list[WorkerChannel] = Field(default_factory=list)
    version: int = 0

    def channel(self, key: str) -> WorkerChannel | None:
        """The channel with this WorkerChannel SID, TaskChannel SID or unique name."""
        for channel in self.channels:
            if key in (channel.sid, channel.task_channel_sid, channel.task_channel_unique_name):
                return channel
        return None
