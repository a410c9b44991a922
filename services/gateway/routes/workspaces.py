"""Workspaces: create (with its default objects), fetch, update, delete, list."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pymongo import DeleteMany, DeleteOne, InsertOne, ReplaceOne

from services.gateway.configuration import config_event
from services.gateway.context import Caller, CallerDep, GatewayDep
from services.gateway.paging import page_request
from services.gateway.params import Params
from services.gateway.routes._common import (
    cached_list,
    created,
    form_params,
    no_content,
    ok,
    query_params,
)
from services.gateway.templates import TEMPLATES, NewWorkspace, new_workspace
from services.gateway.wire import workspace_wire
from shared.config_view import WorkspaceConfig
from shared.errors import DomainValidationError
from shared.events import (
    Event,
    activity_data,
    task_channel_data,
    task_queue_data,
    workflow_data,
    workspace_data,
)
from shared.models import QueueOrder, Workspace, utcnow
from shared.storage import collections as c
from shared.storage.committer import Write

router = APIRouter()
QUEUE_ORDERS = [str(order) for order in QueueOrder]


@router.post("/v1/Workspaces")
async def create_workspace(request: Request, gateway: GatewayDep, caller: CallerDep) -> JSONResponse:
    """Create a workspace with its activities, task channels and template objects."""
    params = await form_params(request)
    multi_task = params.boolean("MultiTaskEnabled")
    created_ws = new_workspace(
        caller.account_sid,
        params.friendly_name(required=True) or "",
        utcnow(),
        template=params.choice("Template", TEMPLATES) or "NONE",
        event_callback_url=params.url("EventCallbackUrl"),
        events_filter=params.text("EventsFilter"),
        multi_task_enabled=True if multi_task is None else multi_task,
        prioritize_queue_order=QueueOrder(params.choice("PrioritizeQueueOrder", QUEUE_ORDERS) or "FIFO"),
    )
    writes, events = _creation_writes(created_ws, caller)
    await gateway.configuration.commit(created_ws.workspace.sid, writes, events)
    return created(workspace_wire(created_ws.workspace, gateway.links))


def _creation_writes(new: NewWorkspace, caller: Caller) -> tuple[list[Write], list[Event]]:
    """One insert and one `<kind>.created` event per object of the new workspace."""
    ws = new.workspace
    writes = [Write(c.WORKSPACES, InsertOne(ws.to_document()))]
    events = [_event(caller, ws, "workspace.created", "workspace", ws.sid,
                     workspace_data(ws), f"Workspace {ws.friendly_name} created")]
    groups = (
        (c.ACTIVITIES, new.activities, "activity", activity_data),
        (c.TASK_CHANNELS, new.channels, "task-channel", task_channel_data),
        (c.TASK_QUEUES, new.queues, "task-queue", task_queue_data),
        (c.WORKFLOWS, new.workflows, "workflow", workflow_data),
    )
    for collection, objects, kind, data in groups:
        for obj in objects:
            writes.append(Write(collection, InsertOne(obj.to_document())))
            events.append(_event(
                caller, ws, f"{kind}.created", kind.replace("-", "_"), obj.sid,
                {**workspace_data(ws), **data(obj)},  # type: ignore[operator]
                f"{kind} {obj.friendly_name} created",  # type: ignore[attr-defined]
            ))
    return writes, events


def _event(
    caller: Caller, ws: Workspace, event_type: str, resource_type: str, resource_sid: str,
    data: dict, description: str,
) -> Event:
    return config_event(
        event_type, account_sid=caller.account_sid, workspace_sid=ws.sid,
        resource_type=resource_type, resource_sid=resource_sid, at=utcnow(), data=data,
        description=description, source_ip_address=caller.ip_address,
    )


@router.get("/v1/Workspaces")
async def list_workspaces(request: Request, gateway: GatewayDep, caller: CallerDep) -> JSONResponse:
    """The account's workspaces in creation order; filter `FriendlyName` (exact)."""
    params = query_params(request)
    paging = page_request(params, request.url.path)
    name = params.text("FriendlyName")
    workspaces = [
        ws for ws in gateway.configuration.workspaces_of(caller.account_sid)
        if name is None or ws.friendly_name == name
    ]
    return cached_list(
        gateway, request, params, paging, "workspaces", workspaces,
        lambda ws: workspace_wire(ws, gateway.links),
    )


@router.get("/v1/Workspaces/{sid}")
async def fetch_workspace(sid: str, gateway: GatewayDep, caller: CallerDep) -> JSONResponse:
    config = await gateway.configuration.config(caller.account_sid, sid)
    return ok(workspace_wire(config.workspace, gateway.links))


@router.post("/v1/Workspaces/{sid}")
async def update_workspace(
    sid: str, request: Request, gateway: GatewayDep, caller: CallerDep
) -> JSONResponse:
    """Change the given fields; the version guards against a concurrent update."""
    config = await gateway.configuration.config(caller.account_sid, sid)
    params = await form_params(request)
    updated = _updated_workspace(config, params)
    operation = ReplaceOne({"_id": sid, "version": config.workspace.version}, updated.to_document())
    event = _event(caller, updated, "workspace.updated", "workspace", sid,
                   workspace_data(updated), f"Workspace {updated.friendly_name} updated")
    await gateway.configuration.commit(sid, [Write(c.WORKSPACES, operation, must_match=True)], [event])
    return ok(workspace_wire(updated, gateway.links))


def _updated_workspace(config: WorkspaceConfig, params: Params) -> Workspace:
    ws = config.workspace
    changes: dict = {"date_updated": utcnow(), "version": ws.version + 1}
    if (name := params.friendly_name()) is not None:
        if not name:
            raise DomainValidationError("FriendlyName must not be empty", param="FriendlyName")
        changes["friendly_name"] = name
    if (url := params.url("EventCallbackUrl")) is not None:
        changes["event_callback_url"] = url or None
    if (events_filter := params.text("EventsFilter")) is not None:
        changes["events_filter"] = events_filter or None
    for param, field in (("DefaultActivitySid", "default_activity"),
                         ("TimeoutActivitySid", "timeout_activity")):
        if (activity_sid := params.sid(param, "WA")) is not None:
            activity = config.activities.get(activity_sid)
            if activity is None:
                raise DomainValidationError(
                    f"{param} {activity_sid!r} is not an Activity of this Workspace", param=param
                )
            changes[f"{field}_sid"] = activity.sid
            changes[f"{field}_name"] = activity.friendly_name
    if (multi := params.boolean("MultiTaskEnabled")) is not None:
        if ws.multi_task_enabled and not multi:
            raise DomainValidationError(
                "A multi-tasking Workspace cannot be switched back to single-tasking",
                param="MultiTaskEnabled",
            )
        changes["multi_task_enabled"] = multi
    if (order := params.choice("PrioritizeQueueOrder", QUEUE_ORDERS)) is not None:
        changes["prioritize_queue_order"] = QueueOrder(order)
    return ws.model_copy(update=changes)


@router.delete("/v1/Workspaces/{sid}")
async def delete_workspace(sid: str, gateway: GatewayDep, caller: CallerDep) -> Response:
    """Delete the workspace and its configuration; its workers and tasks follow.

    The queue-dispatcher drops the workspace's workers, tasks and reservations
    when it sees `workspace.deleted`.
    """
    config = await gateway.configuration.config(caller.account_sid, sid)
    ws = config.workspace
    inside = {"workspace_sid": sid}
    writes = [
        Write(name, DeleteMany(inside))
        for name in (c.ACTIVITIES, c.TASK_CHANNELS, c.TASK_QUEUES, c.WORKFLOWS)
    ]
    writes.append(Write(c.WORKSPACES, DeleteOne({"_id": sid})))
    event = _event(caller, ws, "workspace.deleted", "workspace", sid, workspace_data(ws),
                   f"Workspace {ws.friendly_name} deleted")
    await gateway.configuration.commit(sid, writes, [event])
    return no_content()
