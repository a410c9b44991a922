"""Workflow: routing configuration that moves tasks into queues."""

from __future__ import annotations

from shared.models._base import WorkspaceResource


class Workflow(WorkspaceResource):
    friendly_name: str
    configuration: str
    assignment_callback_url: str | None = None
    fallback_assignment_callback_url: str | None = None
    task_reservation_timeout: int = 120
    document_content_type: str = "application/json"
