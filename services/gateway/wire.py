"""Stored models to the contract's JSON: every declared field, absolute URLs.

Rules (api-conventions.md §5): snake_case fields, all present (null when
unknown); dates `%Y-%m-%dT%H:%M:%SZ`; `attributes`/`configuration`/`addons` are
JSON strings returned verbatim; `url` and `links` are absolute, built from the
configured public URL. A task's `age` is computed when it is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.models import (
    Activity,
    Reservation,
    Task,
    TaskChannel,
    TaskQueue,
    Worker,
    WorkerChannel,
    Workflow,
    Workspace,
)

Json = dict[str, Any]


def wire_date(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with second precision: `2014-05-14T10:50:02Z`."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Links:
    """Absolute URLs under the public base URL (`<public_url>/v1/...`)."""

    def __init__(self, public_url: str) -> None:
        self.root = public_url.rstrip("/")
        self.base = self.root + "/v1"

    def workspaces(self) -> str:
        return f"{self.base}/Workspaces"

    def workspace(self, workspace_sid: str, *rest: str) -> str:
        return "/".join([f"{self.base}/Workspaces/{workspace_sid}", *rest])

    def resource(self, workspace_sid: str, sid: str, task_sid: str | None = None) -> str | None:
        """The URL of any object by its SID prefix; None for unknown kinds."""
        collection = _COLLECTION_BY_PREFIX.get(sid[:2])
        if sid.startswith("WS"):
            return self.workspace(sid)
        if sid.startswith("WR") and task_sid:
            return self.workspace(workspace_sid, "Tasks", task_sid, "Reservations", sid)
        if collection is None:
            return None
        return self.workspace(workspace_sid, collection, sid)


_COLLECTION_BY_PREFIX = {
    "WA": "Activities",
    "TC": "TaskChannels",
    "WQ": "TaskQueues",
    "WW": "Workflows",
    "WK": "Workers",
    "WT": "Tasks",
}


def _statistics_links(url: str) -> dict[str, str]:
    return {
        "statistics": f"{url}/Statistics",
        "real_time_statistics": f"{url}/RealTimeStatistics",
        "cumulative_statistics": f"{url}/CumulativeStatistics",
    }


def workspace_wire(ws: Workspace, links: Links) -> Json:
    url = links.workspace(ws.sid)
    return {
        "account_sid": ws.account_sid,
        "date_created": wire_date(ws.date_created),
        "date_updated": wire_date(ws.date_updated),
        "default_activity_name": ws.default_activity_name,
        "default_activity_sid": ws.default_activity_sid,
        "event_callback_url": ws.event_callback_url,
        "events_filter": ws.events_filter,
        "friendly_name": ws.friendly_name,
        "multi_task_enabled": ws.multi_task_enabled,
        "sid": ws.sid,
        "timeout_activity_name": ws.timeout_activity_name,
        "timeout_activity_sid": ws.timeout_activity_sid,
        "prioritize_queue_order": str(ws.prioritize_queue_order),
        "url": url,
        "links": {
            "activities": f"{url}/Activities",
            "task_queues": f"{url}/TaskQueues",
            "tasks": f"{url}/Tasks",
            "workers": f"{url}/Workers",
            "workflows": f"{url}/Workflows",
            "task_channels": f"{url}/TaskChannels",
            "events": f"{url}/Events",
            **_statistics_links(url),
        },
    }


def activity_wire(activity: Activity, links: Links) -> Json:
    return {
        "account_sid": activity.account_sid,
        "available": activity.available,
        "date_created": wire_date(activity.date_created),
        "date_updated": wire_date(activity.date_updated),
        "friendly_name": activity.friendly_name,
        "sid": activity.sid,
        "workspace_sid": activity.workspace_sid,
        "url": links.workspace(activity.workspace_sid, "Activities", activity.sid),
        "links": {"workspace": links.workspace(activity.workspace_sid)},
    }


def task_channel_wire(channel: TaskChannel, links: Links) -> Json:
    return {
        "account_sid": channel.account_sid,
        "date_created": wire_date(channel.date_created),
        "date_updated": wire_date(channel.date_updated),
        "friendly_name": channel.friendly_name,
        "sid": channel.sid,
        "unique_name": channel.unique_name,
        "workspace_sid": channel.workspace_sid,
        "channel_optimized_routing": channel.channel_optimized_routing,
        "url": links.workspace(channel.workspace_sid, "TaskChannels", channel.sid),
        "links": {"workspace": links.workspace(channel.workspace_sid)},
    }


def task_queue_wire(queue: TaskQueue, links: Links) -> Json:
    ws = queue.workspace_sid
    url = links.workspace(ws, "TaskQueues", queue.sid)
    queue_links = {"workspace": links.workspace(ws)}
    if queue.assignment_activity_sid:
        queue_links["assignment_activity"] = links.workspace(
            ws, "Activities", queue.assignment_activity_sid
        )
    if queue.reservation_activity_sid:
        queue_links["reservation_activity"] = links.workspace(
            ws, "Activities", queue.reservation_activity_sid
        )
    queue_links.update(_statistics_links(url))
    queue_links["list_statistics"] = links.workspace(ws, "TaskQueues", "Statistics")
    queue_links["bulk_real_time_statistics"] = links.workspace(
        ws, "TaskQueues", "RealTimeStatistics"
    )
    return {
        "account_sid": queue.account_sid,
        "assignment_activity_sid": queue.assignment_activity_sid,
        "assignment_activity_name": queue.assignment_activity_name,
        "date_created": wire_date(queue.date_created),
        "date_updated": wire_date(queue.date_updated),
        "friendly_name": queue.friendly_name,
        "max_reserved_workers": queue.max_reserved_workers,
        "reservation_activity_sid": queue.reservation_activity_sid,
        "reservation_activity_name": queue.reservation_activity_name,
        "sid": queue.sid,
        "target_workers": queue.target_workers,
        "task_order": str(queue.task_order),
        "url": url,
        "workspace_sid": ws,
        "links": queue_links,
    }


def workflow_wire(workflow: Workflow, links: Links) -> Json:
    url = links.workspace(workflow.workspace_sid, "Workflows", workflow.sid)
    return {
        "account_sid": workflow.account_sid,
        "assignment_callback_url": workflow.assignment_callback_url,
        "configuration": workflow.configuration,
        "date_created": wire_date(workflow.date_created),
        "date_updated": wire_date(workflow.date_updated),
        "document_content_type": workflow.document_content_type,
        "fallback_assignment_callback_url": workflow.fallback_assignment_callback_url,
        "friendly_name": workflow.friendly_name,
        "sid": workflow.sid,
        "task_reservation_timeout": workflow.task_reservation_timeout,
        "workspace_sid": workflow.workspace_sid,
        "url": url,
        "links": _statistics_links(url),
    }


def worker_wire(worker: Worker, links: Links) -> Json:
    ws = worker.workspace_sid
    url = links.workspace(ws, "Workers", worker.sid)
    return {
        "account_sid": worker.account_sid,
        "activity_name": worker.activity_name,
        "activity_sid": worker.activity_sid,
        "attributes": worker.attributes,
        "available": worker.available,
        "date_created": wire_date(worker.date_created),
        "date_status_changed": wire_date(worker.date_status_changed),
        "date_updated": wire_date(worker.date_updated),
        "friendly_name": worker.friendly_name,
        "sid": worker.sid,
        "workspace_sid": ws,
        "url": url,
        "links": {
            "workspace": links.workspace(ws),
            "activity": links.workspace(ws, "Activities", worker.activity_sid),
            "channels": f"{url}/Channels",
            "worker_channels": f"{url}/Channels",
            "reservations": f"{url}/Reservations",
            "worker_statistics": f"{url}/Statistics",
            **_statistics_links(links.workspace(ws, "Workers")),
        },
    }


def worker_channel_wire(worker: Worker | ChannelOwner, channel: WorkerChannel, links: Links) -> Json:
    """A worker channel; `worker` only needs its SIDs (a Worker or a ChannelOwner)."""
    return {
        "account_sid": worker.account_sid,
        "assigned_tasks": channel.assigned_tasks,
        "available": channel.available,
        "available_capacity_percentage": channel.available_capacity_percentage,
        "configured_capacity": channel.configured_capacity,
        "date_created": wire_date(channel.date_created),
        "date_updated": wire_date(channel.date_updated),
        "sid": channel.sid,
        "task_channel_sid": channel.task_channel_sid,
        "task_channel_unique_name": channel.task_channel_unique_name,
        "worker_sid": worker.sid,
        "workspace_sid": worker.workspace_sid,
        "url": links.workspace(
            worker.workspace_sid, "Workers", worker.sid, "Channels", channel.sid
        ),
    }


@dataclass(frozen=True)
class ChannelOwner:
    """The SIDs a worker channel's shape needs, when the whole worker is not at hand."""

    sid: str
    account_sid: str
    workspace_sid: str


def task_age(task: Task, now: datetime) -> int:
    """Whole seconds since the task was created (never negative)."""
    return max(0, int((now - task.date_created).total_seconds()))


def task_wire(task: Task, links: Links, now: datetime) -> Json:
    ws = task.workspace_sid
    task_links = {"workspace": links.workspace(ws)}
    if task.workflow_sid:
        task_links["workflow"] = links.workspace(ws, "Workflows", task.workflow_sid)
    if task.task_queue_sid:
        task_links["task_queue"] = links.workspace(ws, "TaskQueues", task.task_queue_sid)
    url = links.workspace(ws, "Tasks", task.sid)
    task_links["reservations"] = f"{url}/Reservations"
    return {
        "account_sid": task.account_sid,
        "age": task_age(task, now),
        "assignment_status": str(task.assignment_status),
        "attributes": task.attributes,
        "addons": task.addons,
        "date_created": wire_date(task.date_created),
        "date_updated": wire_date(task.date_updated),
        "task_queue_entered_date": wire_date(task.task_queue_entered_date),
        "priority": task.priority,
        "reason": task.reason,
        "sid": task.sid,
        "task_queue_sid": task.task_queue_sid,
        "task_queue_friendly_name": task.task_queue_friendly_name,
        "task_channel_sid": task.task_channel_sid,
        "task_channel_unique_name": task.task_channel_unique_name,
        "timeout": task.timeout,
        "workflow_sid": task.workflow_sid,
        "workflow_friendly_name": task.workflow_friendly_name,
        "workspace_sid": ws,
        "url": url,
        "links": task_links,
        "virtual_start_time": wire_date(task.virtual_start_time or task.date_created),
        "ignore_capacity": task.ignore_capacity,
        "routing_target": task.routing_target,
    }


def reservation_wire(reservation: Reservation, links: Links, *, via_worker: bool = False) -> Json:
    """A reservation; `via_worker` builds `url` under /Workers/{WK}/Reservations."""
    ws = reservation.workspace_sid
    if via_worker:
        url = links.workspace(ws, "Workers", reservation.worker_sid, "Reservations", reservation.sid)
    else:
        url = links.workspace(ws, "Tasks", reservation.task_sid, "Reservations", reservation.sid)
    return {
        "account_sid": reservation.account_sid,
        "date_created": wire_date(reservation.date_created),
        "date_updated": wire_date(reservation.date_updated),
        "reservation_status": str(reservation.reservation_status),
        "sid": reservation.sid,
        "task_sid": reservation.task_sid,
        "worker_name": reservation.worker_name,
        "worker_sid": reservation.worker_sid,
        "workspace_sid": ws,
        "url": url,
        "links": {
            "workspace": links.workspace(ws),
            "task": links.workspace(ws, "Tasks", reservation.task_sid),
            "worker": links.workspace(ws, "Workers", reservation.worker_sid),
        },
    }


def event_wire(doc: dict[str, Any], links: Links) -> Json:
    """An event document (`Event.to_document()`) as the Event resource."""
    ws = doc["workspace_sid"]
    data = doc.get("event_data") or {}
    task_sid = data.get("task_sid")
    actor_sid = doc.get("actor_sid")
    return {
        "account_sid": doc.get("account_sid"),
        "actor_sid": actor_sid,
        "actor_type": doc.get("actor_type"),
        "actor_url": links.resource(ws, actor_sid, task_sid) if actor_sid else None,
        "description": doc.get("description"),
        "event_data": data,
        "event_date": wire_date(datetime.fromtimestamp(doc["event_date_ms"] / 1000, UTC)),
        "event_date_ms": doc["event_date_ms"],
        "event_type": doc.get("event_type"),
        "resource_sid": doc.get("resource_sid"),
        "resource_type": doc.get("resource_type"),
        "resource_url": links.resource(ws, doc["resource_sid"], task_sid)
        if doc.get("resource_sid")
        else None,
        "sid": doc["_id"] if "_id" in doc else doc.get("sid"),
        "source": doc.get("source"),
        "source_ip_address": doc.get("source_ip_address"),
        "workspace_sid": ws,
        "url": links.workspace(ws, "Events", doc.get("_id") or doc["sid"]),
    }
