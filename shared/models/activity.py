"""Activity: a named worker state that is either available for work or not."""

from __future__ import annotations

from shared.models._base import WorkspaceResource


class Activity(WorkspaceResource):
    friendly_name: str
    available: bool = False
