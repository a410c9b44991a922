"""Activities: a worker's named availability states."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pymongo import DeleteOne, InsertOne, ReplaceOne, UpdateMany, UpdateOne

from services.gateway.configuration import config_event
from services.gateway.context import Caller, CallerDep, GatewayDep
from services.gateway.paging import page_request
from services.gateway.routes._common import (
    cached_list,
    created,
    form_params,
    no_content,
    ok,
    path_sid,
    query_params,
)
from services.gateway.wire import activity_wire
from shared.config_view import WorkspaceConfig
from shared.errors import ConflictError, DomainValidationError, NotFoundError
from shared.events import Event, activity_data
from shared.models import Activity, utcnow
from shared.sids import SidPrefix, new_sid
from shared.storage import collections as c
from shared.storage.committer import Write

router = APIRouter(prefix="/v1/Workspaces/{workspace_sid}/Activities")


def _activity(config: WorkspaceConfig, sid: str) -> Activity:
    found = config.activities.get(path_sid(sid, SidPrefix.ACTIVITY, "Activity"))
    if found is None:
        raise NotFoundError("Activity", sid)
    return found


def _event(caller: Caller, activity: Activity, event_type: str, verb: str) -> Event:
    return config_event(
        event_type, account_sid=caller.account_sid, workspace_sid=activity.workspace_sid,
        resource_type="activity", resource_sid=activity.sid, at=utcnow(),
        data=activity_data(activity), description=f"Activity {activity.friendly_name} {verb}",
        source_ip_address=caller.ip_address,
    )


@router.post("")
async def create_activity(
    workspace_sid: str, request: Request, gateway: GatewayDep, caller: CallerDep
) -> JSONResponse:
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    params = await form_params(request)
    now = utcnow()
    activity = Activity(
        sid=new_sid(SidPrefix.ACTIVITY), account_sid=caller.account_sid,
        workspace_sid=config.workspace.sid, date_created=now, date_updated=now,
        friendly_name=params.friendly_name(required=True) or "",
        available=bool(params.boolean("Available", lenient=True)),
    )
    await gateway.configuration.commit(
        workspace_sid, [Write(c.ACTIVITIES, InsertOne(activity.to_document()))],
        [_event(caller, activity, "activity.created", "created")],
    )
    return created(activity_wire(activity, gateway.links))


@router.get("")
async def list_activities(
    workspace_sid: str, request: Request, gateway: GatewayDep, caller: CallerDep
) -> JSONResponse:
    """Filters: `FriendlyName` (exact), `Available` (`true`/`1`/`yes` or anything else)."""
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    params = query_params(request)
    paging = page_request(params, request.url.path)
    name = params.text("FriendlyName")
    available = params.boolean("Available", lenient=True)
    activities = [
        a for a in config.activities.values()
        if (name is None or a.friendly_name == name)
        and (available is None or a.available == available)
    ]
    return cached_list(gateway, request, params, paging, "activities", activities,
                       lambda a: activity_wire(a, gateway.links))


@router.get("/{sid}")
async def fetch_activity(
    workspace_sid: str, sid: str, gateway: GatewayDep, caller: CallerDep
) -> JSONResponse:
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    return ok(activity_wire(_activity(config, sid), gateway.links))


@router.post("/{sid}")
async def update_activity(
    workspace_sid: str, sid: str, request: Request, gateway: GatewayDep, caller: CallerDep
) -> JSONResponse:
    """Rename an activity; the names copied into the workspace and queues follow."""
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    activity = _activity(config, sid)
    params = await form_params(request)
    name = params.friendly_name()
    if name == "":
        raise DomainValidationError("FriendlyName must not be empty", param="FriendlyName")
    updated = activity.model_copy(
        update={"friendly_name": name or activity.friendly_name, "date_updated": utcnow()}
    )
    writes = [Write(c.ACTIVITIES, ReplaceOne({"_id": sid}, updated.to_document()))]
    if updated.friendly_name != activity.friendly_name:
        writes.extend(_renamed_copies(config, updated))
    await gateway.configuration.commit(
        workspace_sid, writes, [_event(caller, updated, "activity.updated", "updated")]
    )
    return ok(activity_wire(updated, gateway.links))


def _renamed_copies(config: WorkspaceConfig, activity: Activity) -> list[Write]:
    """Writes carrying a renamed activity's new name into the documents naming it."""
    writes = []
    for field in ("default_activity", "timeout_activity"):
        writes.append(Write(c.WORKSPACES, UpdateOne(
            {"_id": config.workspace.sid, f"{field}_sid": activity.sid},
            {"$set": {f"{field}_name": activity.friendly_name}},
        )))
    for field in ("reservation_activity", "assignment_activity"):
        writes.append(Write(c.TASK_QUEUES, UpdateMany(
            {"workspace_sid": config.workspace.sid, f"{field}_sid": activity.sid},
            {"$set": {f"{field}_name": activity.friendly_name}},
        )))
    return writes


@router.delete("/{sid}")
async def delete_activity(
    workspace_sid: str, sid: str, gateway: GatewayDep, caller: CallerDep
) -> Response:
    """Refused (400) while the activity is a default, used by a queue, or held by a worker."""
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    activity = _activity(config, sid)
    await _check_unused(gateway, config, activity)
    await gateway.configuration.commit(
        workspace_sid, [Write(c.ACTIVITIES, DeleteOne({"_id": sid}))],
        [_event(caller, activity, "activity.deleted", "deleted")],
    )
    return no_content()


async def _check_unused(gateway: GatewayDep, config: WorkspaceConfig, activity: Activity) -> None:
    ws = config.workspace
    if activity.sid in (ws.default_activity_sid, ws.timeout_activity_sid):
        raise ConflictError(
            f"Activity {activity.sid} is the Workspace's default or timeout Activity"
        )
    for queue in config.queues.values():
        if activity.sid in (queue.reservation_activity_sid, queue.assignment_activity_sid):
            raise ConflictError(f"Activity {activity.sid} is used by TaskQueue {queue.sid}")
    if await gateway.configuration.worker_holds(ws.sid, "activity_sid", activity.sid):
        raise ConflictError(f"Activity {activity.sid} is held by at least one Worker")
