"""Events: the workspace's event log, read from the events service's collection."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.gateway.context import CallerDep, GatewayDep
from services.gateway.paging import page_request
from services.gateway.params import Params
from services.gateway.reads import Document, find_one, find_page
from services.gateway.routes._common import list_page, ok, path_sid, query_params
from services.gateway.wire import event_wire
from shared.config_view import WorkspaceConfig
from shared.errors import DomainValidationError
from shared.models import utcnow
from shared.sids import SidPrefix
from shared.storage import collections as c

router = APIRouter(prefix="/v1/Workspaces/{workspace_sid}/Events")
SORT = [("event_date_ms", -1), ("_id", -1)]
DEFAULT_MINUTES = 15
RETENTION = timedelta(days=30)
# Legacy spellings accepted as EventType filters (events.md §1).
LEGACY_EVENT_TYPES = {"worker.activity": "worker.activity.update"}
REFERENCE_FILTERS = (
    ("TaskSid", SidPrefix.TASK, "task_sid"),
    ("ReservationSid", SidPrefix.RESERVATION, "reservation_sid"),
    ("WorkerSid", SidPrefix.WORKER, "worker_sid"),
    ("TaskQueueSid", SidPrefix.TASK_QUEUE, "task_queue_sid"),
    ("WorkflowSid", SidPrefix.WORKFLOW, "workflow_sid"),
)


def event_query(config: WorkspaceConfig, params: Params) -> Document:
    """The store filter for the list's parameters (newest first is the sort)."""
    now = utcnow()
    conditions: list[Document] = [{"workspace_sid": config.workspace.sid}]
    conditions.append({"event_date": _window(params, now)})
    if (event_type := params.text("EventType")) is not None:
        types = {event_type, LEGACY_EVENT_TYPES.get(event_type, event_type)}
        conditions.append({"event_type": {"$in": sorted(types)}})
    for param, prefix, key in REFERENCE_FILTERS:
        if (sid := params.sid(param, prefix)) is not None:
            conditions.append({"$or": [{"resource_sid": sid}, {f"event_data.{key}": sid}]})
    if (channel := params.text("TaskChannel")) is not None:
        found = config.channel(channel)
        sid = found.sid if found else channel
        name = found.unique_name if found else channel
        conditions.append({"$or": [{"event_data.task_channel_sid": sid},
                                   {"event_data.task_channel_unique_name": name}]})
    if (sid := params.sid("Sid", SidPrefix.EVENT)) is not None:
        conditions.append({"_id": sid})
    return {"$and": conditions}


def _window(params: Params, now: Any) -> Document:
    """`StartDate`/`EndDate` when given, else the last `Minutes` (default 15)."""
    start = params.date("StartDate")
    end = params.date("EndDate")
    minutes = params.integer("Minutes", minimum=1, maximum=int(RETENTION.total_seconds() // 60))
    if start is None and end is None:
        start = now - timedelta(minutes=minutes or DEFAULT_MINUTES)
    if start is not None and end is not None and start > end:
        raise DomainValidationError("StartDate must not be after EndDate", param="StartDate")
    # An EndDate older than the retention leaves an empty window (start > end),
    # which matches nothing: an empty list, as for any other quiet period.
    start = max(start or now - RETENTION, now - RETENTION)
    end = end or now
    return {"$gte": start, "$lte": end}


@router.get("")
async def list_events(
    workspace_sid: str, request: Request, gateway: GatewayDep, caller: CallerDep
) -> JSONResponse:
    """The workspace's events, newest first, with every filter of the contract."""
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    params = query_params(request)
    paging = page_request(params)
    page = await find_page(gateway.runtime.db, c.EVENTS, event_query(config, params), SORT,
                           paging)
    return list_page(gateway, request, params, paging, "events", page,
                     lambda d: event_wire(d, gateway.links))


@router.get("/{sid}")
async def fetch_event(
    workspace_sid: str, sid: str, gateway: GatewayDep, caller: CallerDep
) -> JSONResponse:
    await gateway.configuration.config(caller.account_sid, workspace_sid)
    path_sid(sid, SidPrefix.EVENT, "Event")
    doc = await find_one(gateway.runtime.db, c.EVENTS,
                         {"_id": sid, "workspace_sid": workspace_sid}, "Event", sid)
    return ok(event_wire(doc, gateway.links))
