"""Workflows: routing configuration that moves tasks into queues."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pymongo import DeleteOne, InsertOne, ReplaceOne

from services.gateway.configuration import config_event
from services.gateway.context import Caller, CallerDep, GatewayDep
from services.gateway.paging import page_request
from services.gateway.params import CONFIGURATION_MAX_BYTES, Params
from services.gateway.routes._common import (
    cached_list,
    created,
    form_params,
    no_content,
    ok,
    path_sid,
    query_params,
)
from services.gateway.wire import workflow_wire
from shared.config_view import WorkspaceConfig
from shared.errors import ConflictError, DomainValidationError, NotFoundError
from shared.events import Event, workflow_data
from shared.models import Workflow, utcnow
from shared.sids import SidPrefix, new_sid
from shared.storage import collections as c
from shared.storage.committer import Write
from shared.workflow_config import WorkflowConfigurationError, parse_workflow_configuration

router = APIRouter(prefix="/v1/Workspaces/{workspace_sid}/Workflows")
MAX_RESERVATION_TIMEOUT = 86_400


def check_configuration(config: WorkspaceConfig, text: str) -> str:
    """`text` when it is a valid configuration whose queues exist in the workspace."""
    try:
        parsed = parse_workflow_configuration(text)
    except WorkflowConfigurationError as exc:
        raise DomainValidationError(
            f"Configuration is not valid: {exc.message}", param="Configuration"
        ) from exc
    missing = sorted(sid for sid in parsed.queue_sids() if sid not in config.queues)
    if missing:
        raise DomainValidationError(
            f"Configuration names TaskQueue {missing[0]!r}, which is not in this Workspace",
            param="Configuration",
        )
    return text


def _workflow(config: WorkspaceConfig, sid: str) -> Workflow:
    found = config.workflows.get(path_sid(sid, SidPrefix.WORKFLOW, "Workflow"))
    if found is None:
        raise NotFoundError("Workflow", sid)
    return found


def _event(caller: Caller, workflow: Workflow, event_type: str, verb: str,
           extra: dict | None = None) -> Event:
    return config_event(
        event_type, account_sid=caller.account_sid, workspace_sid=workflow.workspace_sid,
        resource_type="workflow", resource_sid=workflow.sid, at=utcnow(),
        data={**workflow_data(workflow), **(extra or {})},
        description=f"Workflow {workflow.friendly_name} {verb}",
        source_ip_address=caller.ip_address,
    )


def _changes(config: WorkspaceConfig, params: Params, *, creating: bool) -> dict:
    changes: dict = {}
    name = params.friendly_name(required=creating)
    if name is not None:
        if not name:
            raise DomainValidationError("FriendlyName must not be empty", param="FriendlyName")
        changes["friendly_name"] = name
    if creating and not params.text("Configuration"):
        raise DomainValidationError("Configuration field is required", param="Configuration")
    text = params.text("Configuration")
    if text is not None:
        params.json_object("Configuration", max_bytes=CONFIGURATION_MAX_BYTES)
        changes["configuration"] = check_configuration(config, text)
    for param, field in (("AssignmentCallbackUrl", "assignment_callback_url"),
                         ("FallbackAssignmentCallbackUrl", "fallback_assignment_callback_url")):
        if (url := params.url(param)) is not None:
            changes[field] = url or None
    timeout = params.integer("TaskReservationTimeout", minimum=1, maximum=MAX_RESERVATION_TIMEOUT)
    if timeout is not None:
        changes["task_reservation_timeout"] = timeout
    return changes


@router.post("")
async def create_workflow(
    workspace_sid: str, request: Request, gateway: GatewayDep, caller: CallerDep
) -> JSONResponse:
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    params = await form_params(request)
    now = utcnow()
    workflow = Workflow(
        sid=new_sid(SidPrefix.WORKFLOW), account_sid=caller.account_sid,
        workspace_sid=workspace_sid, date_created=now, date_updated=now,
        **_changes(config, params, creating=True),
    )
    await gateway.configuration.commit(
        workspace_sid, [Write(c.WORKFLOWS, InsertOne(workflow.to_document()))],
        [_event(caller, workflow, "workflow.created", "created")],
    )
    return created(workflow_wire(workflow, gateway.links))


@router.get("")
async def list_workflows(
    workspace_sid: str, request: Request, gateway: GatewayDep, caller: CallerDep
) -> JSONResponse:
    """Filter: `FriendlyName` (exact)."""
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    params = query_params(request)
    paging = page_request(params, request.url.path)
    name = params.text("FriendlyName")
    workflows = [w for w in config.workflows.values() if name is None or w.friendly_name == name]
    return cached_list(gateway, request, params, paging, "workflows", workflows,
                       lambda w: workflow_wire(w, gateway.links))


@router.get("/{sid}")
async def fetch_workflow(
    workspace_sid: str, sid: str, gateway: GatewayDep, caller: CallerDep
) -> JSONResponse:
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    return ok(workflow_wire(_workflow(config, sid), gateway.links))


@router.post("/{sid}")
async def update_workflow(
    workspace_sid: str, sid: str, request: Request, gateway: GatewayDep, caller: CallerDep
) -> JSONResponse:
    """`ReEvaluateTasks=true` asks the router to re-route this workflow's pending tasks."""
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    workflow = _workflow(config, sid)
    params = await form_params(request)
    changes = _changes(config, params, creating=False)
    re_evaluate = params.boolean("ReEvaluateTasks")
    updated = workflow.model_copy(update={**changes, "date_updated": utcnow()})
    extra = {"re_evaluate_tasks": "true"} if re_evaluate else None
    await gateway.configuration.commit(
        workspace_sid, [Write(c.WORKFLOWS, ReplaceOne({"_id": sid}, updated.to_document()))],
        [_event(caller, updated, "workflow.updated", "updated", extra)],
    )
    return ok(workflow_wire(updated, gateway.links))


@router.delete("/{sid}")
async def delete_workflow(
    workspace_sid: str, sid: str, gateway: GatewayDep, caller: CallerDep
) -> Response:
    """Refused (400) while a non-terminal task uses the workflow."""
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    workflow = _workflow(config, sid)
    if await gateway.configuration.open_task_uses(workspace_sid, "workflow_sid", workflow.sid):
        raise ConflictError(f"Workflow {workflow.sid} is used by at least one open Task")
    await gateway.configuration.commit(
        workspace_sid, [Write(c.WORKFLOWS, DeleteOne({"_id": sid}))],
        [_event(caller, workflow, "workflow.deleted", "deleted")],
    )
    return no_content()
