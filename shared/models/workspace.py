"""Workspace: the container of every other TaskRouter object."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from shared.models._base import Resource


class QueueOrder(StrEnum):
    FIFO = "FIFO"
    LIFO = "LIFO"


class Workspace(Resource):
    friendly_name: str
    event_callback_url: str | None = None
    events_filter: str | None = None
    default_activity_sid: str | None = None
    default_activity_name: str | None = None
    timeout_activity_sid: str | None = None
    timeout_activity_name: str | None = None
    multi_task_enabled: bool = True
    prioritize_queue_order: QueueOrder = QueueOrder.FIFO
    version: int = Field(0, description="Incremented on every change.")
