"""TaskChannel: a kind of work (voice, chat, ...) with its own worker capacity."""

from __future__ import annotations

from shared.models._base import WorkspaceResource

DEFAULT_TASK_CHANNELS = (
    ("default", "Default"),
    ("voice", "Voice"),
    ("chat", "Chat"),
    ("sms", "SMS"),
    ("video", "Video"),
)


class TaskChannel(WorkspaceResource):
    friendly_name: str
    unique_name: str
    channel_optimized_routing: bool | None = None
