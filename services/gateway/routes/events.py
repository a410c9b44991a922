"""Events: the workspace's event log, read from the events service's collection."""

from __future__ import annotations

from datetime import datetime, timedelta

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
from shared.storage.event_log import (
    NEWEST_FIRST,
    channel_keys,
    list_filter,
    reference_key,
    type_key,
)

router = APIRouter(prefix="/v1/Workspaces/{workspace_sid}/Events")
SORT = NEWEST_FIRST
DEFAULT_MINUTES = 15
RETENTION = timedelta(days=30)
# Legacy spellings accepted as EventType filters (events.md §1).
LEGACY_EVENT_TYPES = {"worker.activity": "worker.activity.update"}
# Reference filters: (parameter, SID prefix, key namespace), most selective first.
REFERENCE_FILTERS = (
    ("ReservationSid", SidPrefix.RESERVATION, "reservation"),
    ("TaskSid", SidPrefix.TASK, "task"),
    ("WorkerSid", SidPrefix.WORKER, "worker"),
    ("TaskQueueSid", SidPrefix.TASK_QUEUE, "queue"),
    ("WorkflowSid", SidPrefix.WORKFLOW, "workflow"),
)


def event_query(config: WorkspaceConfig, params: Params) -> Document:
    """The store filter for the list's parameters (newest first is the sort)."""
    start, end = _window(params, utcnow())
    query = list_filter(config.workspace.sid, filter_groups(config, params), start, end)
    if (sid := params.sid("Sid", SidPrefix.EVENT)) is not None:
        query["_id"] = sid
    return query


def filter_groups(config: WorkspaceConfig, params: Params) -> list[list[str]]:
    """One group of alternative keys per filter given, most selective first.

    A referenced object's SID narrows most, then the event type, then the
    channel (alternatives: its SID or its unique name).
    """
    groups: list[list[str]] = []
    for param, prefix, namespace in REFERENCE_FILTERS:
        if (sid := params.sid(param, prefix)) is not None:
            groups.append([reference_key(namespace, sid)])
    if (event_type := params.text("EventType")) is not None:
        types = {event_type, LEGACY_EVENT_TYPES.get(event_type, event_type)}
        groups.append(sorted(type_key(t) for t in types))
    if (channel := params.text("TaskChannel")) is not None:
        found = config.channel(channel)
        groups.append(channel_keys(found.sid if found else channel,
                                   found.unique_name if found else channel))
    return groups


def _window(params: Params, now: datetime) -> tuple[datetime, datetime]:
    """`StartDate`/`EndDate` when given, else the last `Minutes` (default 15)."""
    start = params.date("StartDate")
    end = params.date("EndDate")
    if end is not None and "." not in (params.text("EndDate") or ""):
        # Event dates are shown to the second: an EndDate given to the second
        # takes in that whole second, so an event's own `event_date` finds it.
        end += timedelta(milliseconds=999)
    minutes = params.integer("Minutes", minimum=1, maximum=int(RETENTION.total_seconds() // 60))
    if start is None and end is None:
        start = now - timedelta(minutes=minutes or DEFAULT_MINUTES)
    if start is not None and end is not None and start > end:
        raise DomainValidationError("StartDate must not be after EndDate", param="StartDate")
    # An EndDate older than the retention leaves an empty window (start > end),
    # which matches nothing: an empty list, as for any other quiet period.
    return max(start or now - RETENTION, now - RETENTION), end or now


@router.get("")
async def list_events(
    workspace_sid: str, request: Request, gateway: GatewayDep, caller: CallerDep
) -> JSONResponse:
    """The workspace's events, newest first, with every filter of the contract."""
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    params = query_params(request)
    paging = page_request(params, request.url.path)
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
