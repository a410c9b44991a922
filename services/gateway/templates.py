"""What a new workspace contains, decided without I/O.

Every workspace starts with activities Offline (default and timeout activity),
Available and Unavailable, and task channels default, voice, chat, sms and
video. `Template=FIFO` adds the queue `Sample Queue` (every worker, FIFO) and
the workflow `Default Fifo Workflow` sending every task to it (observed on
Twilio, api-conventions.md §11).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson

from shared.models import (
    DEFAULT_TASK_CHANNELS,
    Activity,
    QueueOrder,
    TaskChannel,
    TaskQueue,
    Workflow,
    Workspace,
)
from shared.sids import SidPrefix, new_sid

TEMPLATES = ("FIFO", "NONE")
DEFAULT_ACTIVITIES = (("Offline", False), ("Available", True), ("Unavailable", False))
FIFO_QUEUE_NAME = "Sample Queue"
FIFO_WORKFLOW_NAME = "Default Fifo Workflow"
FIFO_RESERVATION_TIMEOUT = 120


@dataclass
class NewWorkspace:
    """A workspace and every object created with it."""

    workspace: Workspace
    activities: list[Activity] = field(default_factory=list)
    channels: list[TaskChannel] = field(default_factory=list)
    queues: list[TaskQueue] = field(default_factory=list)
    workflows: list[Workflow] = field(default_factory=list)


def new_workspace(
    account_sid: str,
    friendly_name: str,
    now: datetime,
    *,
    template: str = "NONE",
    event_callback_url: str | None = None,
    events_filter: str | None = None,
    multi_task_enabled: bool = True,
    prioritize_queue_order: QueueOrder = QueueOrder.FIFO,
) -> NewWorkspace:
    """The objects of a workspace created with `template` (`FIFO` or `NONE`)."""
    ws_sid = new_sid(SidPrefix.WORKSPACE)
    common = {"account_sid": account_sid, "workspace_sid": ws_sid, "date_updated": now}

    # Lists order by date_created; one millisecond apart keeps the order above.
    def at(index: int) -> datetime:
        return now + timedelta(milliseconds=index)

    activities = [
        Activity(sid=new_sid(SidPrefix.ACTIVITY), friendly_name=name, available=available,
                 date_created=at(i), **common)
        for i, (name, available) in enumerate(DEFAULT_ACTIVITIES)
    ]
    offline = activities[0]
    workspace = Workspace(
        sid=ws_sid,
        account_sid=account_sid,
        date_created=now,
        date_updated=now,
        friendly_name=friendly_name,
        event_callback_url=event_callback_url or None,
        events_filter=events_filter or None,
        default_activity_sid=offline.sid,
        default_activity_name=offline.friendly_name,
        timeout_activity_sid=offline.sid,
        timeout_activity_name=offline.friendly_name,
        multi_task_enabled=multi_task_enabled,
        prioritize_queue_order=prioritize_queue_order,
    )
    channels = [
        TaskChannel(sid=new_sid(SidPrefix.TASK_CHANNEL), unique_name=unique, friendly_name=name,
                    channel_optimized_routing=False, date_created=at(i), **common)
        for i, (unique, name) in enumerate(DEFAULT_TASK_CHANNELS)
    ]
    created = NewWorkspace(workspace, activities, channels)
    if template == "FIFO":
        queue = TaskQueue(sid=new_sid(SidPrefix.TASK_QUEUE), friendly_name=FIFO_QUEUE_NAME,
                          target_workers="1==1", task_order=QueueOrder.FIFO,
                          date_created=now, **common)
        created.queues.append(queue)
        created.workflows.append(
            Workflow(sid=new_sid(SidPrefix.WORKFLOW), friendly_name=FIFO_WORKFLOW_NAME,
                     configuration=fifo_configuration(queue.sid),
                     task_reservation_timeout=FIFO_RESERVATION_TIMEOUT,
                     date_created=now, **common)
        )
    return created


def fifo_configuration(queue_sid: str) -> str:
    """A workflow configuration routing every task to one queue."""
    document = {"task_routing": {"filters": [], "default_filter": {"queue": queue_sid}}}
    return orjson.dumps(document).decode()
