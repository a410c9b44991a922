"""Tasks. The queue-dispatcher owns them: writes go to it as commands, reads
come from its `tasks` collection (read-only)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from services.gateway.context import CallerDep, Gateway, GatewayDep
from services.gateway.paging import page_request
from services.gateway.params import ATTRIBUTES_MAX_CHARS, Params, parse_ordering
from services.gateway.reads import Document, Predicate, find_one, find_page
from services.gateway.routes._common import (
    command_base,
    send,
    etag,
    form_params,
    if_match,
    list_page,
    no_content,
    path_sid,
    query_params,
)
from services.gateway.wire import task_wire
from shared.commands import CreateTask, DeleteTask, UpdateTask
from shared.config_view import WorkspaceConfig
from shared.errors import DomainValidationError
from shared.expressions import ExpressionError, ExpressionKind, compile_expression
from shared.models import Task, TaskStatus, utcnow
from shared.sids import SidPrefix, is_sid
from shared.storage import collections as c

router = APIRouter(prefix="/v1/Workspaces/{workspace_sid}/Tasks")
MAX_TIMEOUT = 1_209_600
MAX_PRIORITY = 2_147_483_647
EARLIEST_VIRTUAL_START = datetime(1900, 1, 1, tzinfo=UTC)
STATUSES = [str(s) for s in TaskStatus]
UPDATE_STATUSES = ["canceled", "wrapping", "completed", "pending", "reserved", "assigned"]
ORDERING_FIELDS = {
    "DateCreated": "date_created",
    "Priority": "priority",
    "VirtualStartTime": "virtual_start_time",
}




def _task_response(task: Task, gateway: Gateway, status: int = 200) -> JSONResponse:
    body = task_wire(task, gateway.links, utcnow())
    return JSONResponse(body, status, headers=etag(task.version))


def _channel(config: WorkspaceConfig, params: Params) -> str | None:
    key = params.text("TaskChannel")
    if key is None:
        return None
    channel = config.channel(key)
    if channel is None:
        raise DomainValidationError(
            f"TaskChannel {key!r} is not a TaskChannel of this Workspace", param="TaskChannel"
        )
    return channel.sid


def _virtual_start_time(params: Params) -> datetime | None:
    moment = params.date("VirtualStartTime")
    if moment is not None and not EARLIEST_VIRTUAL_START <= moment <= utcnow():
        raise DomainValidationError(
            "VirtualStartTime must not be in the future nor before 1900", param="VirtualStartTime"
        )
    return moment


def _workflow_sid(config: WorkspaceConfig, params: Params, direct: bool) -> str | None:
    """The task's workflow: given, or the only one; optional with direct routing."""
    sid = params.sid("WorkflowSid", SidPrefix.WORKFLOW)
    if sid is not None:
        if sid not in config.workflows:
            raise DomainValidationError(
                f"WorkflowSid {sid!r} is not a Workflow of this Workspace", param="WorkflowSid"
            )
        return sid
    if len(config.workflows) == 1:
        return next(iter(config.workflows))
    if direct:
        return None
    raise DomainValidationError("WorkflowSid field is required", param="WorkflowSid")


def _routing_target(config: WorkspaceConfig, params: Params) -> str | None:
    """A WK, WQ or WW SID; queues and workflows must exist here."""
    target = params.text("RoutingTarget")
    if target is None:
        return None
    if not any(is_sid(target, prefix) for prefix in ("WK", "WQ", "WW")):
        raise DomainValidationError(
            f"RoutingTarget must be a Worker, TaskQueue or Workflow SID, got {target!r}",
            param="RoutingTarget",
        )
    known = {"WQ": config.queues, "WW": config.workflows}.get(target[:2])
    if known is not None and target not in known:
        raise DomainValidationError(
            f"RoutingTarget {target!r} is not in this Workspace", param="RoutingTarget"
        )
    return target


@router.post("")
async def create_task(
    workspace_sid: str, request: Request, gateway: GatewayDep, caller: CallerDep
) -> JSONResponse:
    """Create a task; see `_workflow_sid` for when WorkflowSid may be omitted."""
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    params = await form_params(request)
    queue_sid = params.sid("TaskQueueSid", SidPrefix.TASK_QUEUE)
    if queue_sid is not None and queue_sid not in config.queues:
        raise DomainValidationError(
            f"TaskQueueSid {queue_sid!r} is not a TaskQueue of this Workspace",
            param="TaskQueueSid",
        )
    routing_target = _routing_target(config, params)
    command = CreateTask(
        **command_base(config, caller),
        attributes=params.json_object("Attributes", max_chars=ATTRIBUTES_MAX_CHARS) or "{}",
        priority=params.integer("Priority", minimum=0, maximum=MAX_PRIORITY),
        timeout=params.integer("Timeout", minimum=1, maximum=MAX_TIMEOUT),
        task_channel=_channel(config, params),
        workflow_sid=_workflow_sid(config, params, bool(routing_target or queue_sid)),
        virtual_start_time=_virtual_start_time(params),
        routing_target=routing_target,
        ignore_capacity=params.boolean("IgnoreCapacity", lenient=True),
        task_queue_sid=queue_sid,
    )
    workflow = config.workflows.get(command.workflow_sid or command.routing_target or "")
    if workflow is not None:
        command.workflow_date_updated = workflow.date_updated
    task = Task.model_validate(await send(gateway, config, command))
    return _task_response(task, gateway, 201)


@router.get("")
async def list_tasks(
    workspace_sid: str, request: Request, gateway: GatewayDep, caller: CallerDep
) -> JSONResponse:
    """Filters of the contract; default order DateCreated ascending."""
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    params = query_params(request)
    paging = page_request(params, request.url.path)
    query, predicate = _task_filters(config, params)
    sort = _ordering(params)
    page = await find_page(gateway.runtime.db, c.TASKS, query, sort, paging, predicate)
    now = utcnow()
    return list_page(gateway, request, params, paging, "tasks", page,
                     lambda d: task_wire(Task.from_document(d), gateway.links, now))


def _ordering(params: Params) -> list[tuple[str, int]]:
    sort = parse_ordering("Ordering", params.text("Ordering") or "DateCreated:asc",
                          ORDERING_FIELDS)
    fields = {field for field, _ in sort}
    if {"date_created", "virtual_start_time"} <= fields:
        raise DomainValidationError(
            "Ordering cannot combine DateCreated and VirtualStartTime", param="Ordering"
        )
    # TODO: tasks without virtual_start_time (null) sort first and do not page by key
    # correctly under VirtualStartTime ordering; the dispatcher is expected to set it.
    return [*sort, ("_id", sort[-1][1])]


def _task_filters(config: WorkspaceConfig, params: Params) -> tuple[Document, Predicate | None]:
    query: Document = {"workspace_sid": config.workspace.sid}
    if (priority := params.integer("Priority", minimum=0, maximum=MAX_PRIORITY)) is not None:
        query["priority"] = priority
    statuses = params.strings("AssignmentStatus", comma=True)
    for status in statuses:
        if status not in STATUSES:
            raise DomainValidationError(
                f"AssignmentStatus must be one of {', '.join(STATUSES)}, got {status!r}",
                param="AssignmentStatus",
            )
    if statuses:
        query["assignment_status"] = {"$in": statuses}
    for param, field, prefix in (("WorkflowSid", "workflow_sid", SidPrefix.WORKFLOW),
                                 ("TaskQueueSid", "task_queue_sid", SidPrefix.TASK_QUEUE)):
        if (sid := params.sid(param, prefix)) is not None:
            query[field] = sid
    for param, field in (("WorkflowName", "workflow_friendly_name"),
                         ("TaskQueueName", "task_queue_friendly_name"),
                         ("RoutingTarget", "routing_target")):
        if (value := params.text(param)) is not None:
            query[field] = value
    if (has_addons := params.boolean("HasAddons")) is not None:
        query["addons"] = {"$nin": ["{}", "", None]} if has_addons else {"$in": ["{}", "", None]}
    return query, _attributes_filter(params.text("EvaluateTaskAttributes"))


def _attributes_filter(text: str | None) -> Predicate | None:
    if text is None:
        return None
    try:
        expression = compile_expression(text, ExpressionKind.TASK)
    except ExpressionError as exc:
        raise DomainValidationError(
            f"EvaluateTaskAttributes is not a valid expression: {exc.message}",
            param="EvaluateTaskAttributes",
        ) from exc

    def matches(doc: Document) -> bool:
        try:
            attributes = orjson.loads(doc.get("attributes") or "{}")
        except orjson.JSONDecodeError:
            return False
        return isinstance(attributes, dict) and expression.evaluate(attributes)

    return matches


async def load_task(gateway: Gateway, workspace_sid: str, sid: str) -> Task:
    """A task of the workspace from the dispatcher's collection; 404 when missing."""
    path_sid(sid, SidPrefix.TASK, "Task")
    doc = await find_one(gateway.runtime.db, c.TASKS,
                         {"_id": sid, "workspace_sid": workspace_sid}, "Task", sid)
    return Task.from_document(doc)


@router.get("/{sid}")
async def fetch_task(
    workspace_sid: str, sid: str, gateway: GatewayDep, caller: CallerDep
) -> JSONResponse:
    await gateway.configuration.config(caller.account_sid, workspace_sid)
    return _task_response(await load_task(gateway, workspace_sid, sid), gateway)


@router.post("/{sid}")
async def update_task(
    workspace_sid: str, sid: str, request: Request, gateway: GatewayDep, caller: CallerDep
) -> JSONResponse:
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    path_sid(sid, SidPrefix.TASK, "Task")
    params = await form_params(request)
    command = UpdateTask(
        **command_base(config, caller),
        task_sid=sid,
        attributes=params.json_object("Attributes", max_chars=ATTRIBUTES_MAX_CHARS),
        assignment_status=params.choice("AssignmentStatus", UPDATE_STATUSES),
        reason=params.text("Reason"),
        priority=params.integer("Priority", minimum=0, maximum=MAX_PRIORITY),
        task_channel=_channel(config, params),
        virtual_start_time=_virtual_start_time(params),
        if_match=if_match(request),
    )
    task = Task.model_validate(await send(gateway, config, command))
    return _task_response(task, gateway)


@router.delete("/{sid}")
async def delete_task(
    workspace_sid: str, sid: str, request: Request, gateway: GatewayDep, caller: CallerDep
) -> Response:
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    path_sid(sid, SidPrefix.TASK, "Task")
    command = DeleteTask(**command_base(config, caller), task_sid=sid, if_match=if_match(request))
    await send(gateway, config, command)
    return no_content()
