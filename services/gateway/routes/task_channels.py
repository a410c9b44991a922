"""TaskChannels: kinds of work; the instance path takes the SID or unique name."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pymongo import DeleteOne, InsertOne, ReplaceOne

from services.gateway.configuration import config_event
from services.gateway.context import Caller, CallerDep, GatewayDep
from services.gateway.paging import page_request
from services.gateway.params import FRIENDLY_NAME_MAX
from services.gateway.routes._common import (
    cached_list,
    created,
    form_params,
    no_content,
    ok,
    query_params,
)
from services.gateway.wire import task_channel_wire
from shared.config_view import WorkspaceConfig
from shared.errors import ConflictError, DomainValidationError, NotFoundError
from shared.events import Event, task_channel_data
from shared.models import TaskChannel, utcnow
from shared.sids import SidPrefix, new_sid
from shared.storage import collections as c
from shared.storage.committer import Write

router = APIRouter(prefix="/v1/Workspaces/{workspace_sid}/TaskChannels")


def _channel(config: WorkspaceConfig, key: str) -> TaskChannel:
    found = config.channel(key)
    if found is None:
        raise NotFoundError("TaskChannel", key)
    return found


def _event(caller: Caller, channel: TaskChannel, event_type: str, verb: str) -> Event:
    return config_event(
        event_type, account_sid=caller.account_sid, workspace_sid=channel.workspace_sid,
        resource_type="task_channel", resource_sid=channel.sid, at=utcnow(),
        data=task_channel_data(channel),
        description=f"TaskChannel {channel.unique_name} {verb}",
        source_ip_address=caller.ip_address,
    )


@router.post("")
async def create_task_channel(
    workspace_sid: str, request: Request, gateway: GatewayDep, caller: CallerDep
) -> JSONResponse:
    """`UniqueName` must be unique in the workspace (400 otherwise)."""
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    params = await form_params(request)
    friendly_name = params.friendly_name(required=True) or ""
    unique_name = params.text("UniqueName", required=True, max_length=FRIENDLY_NAME_MAX,
                              allow_empty=False) or ""
    if (existing := config.channel(unique_name)) is not None:
        raise ConflictError(
            f"UniqueName {unique_name!r} is already used by TaskChannel {existing.sid}",
            param="UniqueName",
        )
    now = utcnow()
    channel = TaskChannel(
        sid=new_sid(SidPrefix.TASK_CHANNEL), account_sid=caller.account_sid,
        workspace_sid=workspace_sid, date_created=now, date_updated=now,
        friendly_name=friendly_name, unique_name=unique_name,
        channel_optimized_routing=bool(params.boolean("ChannelOptimizedRouting")),
    )
    await gateway.configuration.commit(
        workspace_sid, [Write(c.TASK_CHANNELS, InsertOne(channel.to_document()))],
        [_event(caller, channel, "task-channel.created", "created")],
    )
    return created(task_channel_wire(channel, gateway.links))


@router.get("")
async def list_task_channels(
    workspace_sid: str, request: Request, gateway: GatewayDep, caller: CallerDep
) -> JSONResponse:
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    params = query_params(request)
    paging = page_request(params, request.url.path)
    return cached_list(gateway, request, params, paging, "channels", config.channels.values(),
                       lambda ch: task_channel_wire(ch, gateway.links))


@router.get("/{sid}")
async def fetch_task_channel(
    workspace_sid: str, sid: str, gateway: GatewayDep, caller: CallerDep
) -> JSONResponse:
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    return ok(task_channel_wire(_channel(config, sid), gateway.links))


@router.post("/{sid}")
async def update_task_channel(
    workspace_sid: str, sid: str, request: Request, gateway: GatewayDep, caller: CallerDep
) -> JSONResponse:
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    channel = _channel(config, sid)
    params = await form_params(request)
    changes: dict = {"date_updated": utcnow()}
    if (name := params.friendly_name()) is not None:
        if not name:
            raise DomainValidationError("FriendlyName must not be empty", param="FriendlyName")
        changes["friendly_name"] = name
    if (optimized := params.boolean("ChannelOptimizedRouting")) is not None:
        changes["channel_optimized_routing"] = optimized
    updated = channel.model_copy(update=changes)
    await gateway.configuration.commit(
        workspace_sid,
        [Write(c.TASK_CHANNELS, ReplaceOne({"_id": channel.sid}, updated.to_document()))],
        [_event(caller, updated, "task-channel.updated", "updated")],
    )
    return ok(task_channel_wire(updated, gateway.links))


@router.delete("/{sid}")
async def delete_task_channel(
    workspace_sid: str, sid: str, gateway: GatewayDep, caller: CallerDep
) -> Response:
    """Refused (400) while a non-terminal task uses the channel."""
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    channel = _channel(config, sid)
    if await gateway.configuration.open_task_uses(workspace_sid, "task_channel_sid", channel.sid):
        raise ConflictError(f"TaskChannel {channel.sid} is used by at least one open Task")
    await gateway.configuration.commit(
        workspace_sid, [Write(c.TASK_CHANNELS, DeleteOne({"_id": channel.sid}))],
        [_event(caller, channel, "task-channel.deleted", "deleted")],
    )
    return no_content()
