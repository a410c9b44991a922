"""Reservation: the offer of one task to one worker."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from shared.models._base import WorkspaceResource


class ReservationStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    TIMEOUT = "timeout"
    CANCELED = "canceled"
    RESCINDED = "rescinded"
    WRAPPING = "wrapping"
    COMPLETED = "completed"

    @property
    def is_live(self) -> bool:
        """Still holding the worker's capacity."""
        return self in (
            ReservationStatus.PENDING,
            ReservationStatus.ACCEPTED,
            ReservationStatus.WRAPPING,
        )


class Reservation(WorkspaceResource):
    task_sid: str
    worker_sid: str
    worker_name: str
    reservation_status: ReservationStatus = ReservationStatus.PENDING
    task_channel_sid: str | None = None
    task_queue_sid: str | None = None
    workflow_sid: str | None = None
    timeout_at: datetime | None = Field(None, description="When a pending one times out.")
    worker_previous_activity_sid: str | None = None
    version: int = 0
