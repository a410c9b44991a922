"""TaskQueues: which workers are eligible (TargetWorkers) and how tasks wait."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pymongo import DeleteOne, InsertOne, ReplaceOne

from services.gateway.configuration import config_event
from services.gateway.context import Caller, CallerDep, GatewayDep
from services.gateway.paging import page_request
from services.gateway.params import ATTRIBUTES_MAX_CHARS, Params, parse_ordering
from services.gateway.routes._common import (
    cached_list,
    created,
    form_params,
    no_content,
    ok,
    path_sid,
    query_params,
)
from services.gateway.wire import task_queue_wire
from shared.config_view import WorkspaceConfig
from shared.errors import ConflictError, DomainValidationError, NotFoundError
from shared.events import Event, task_queue_data
from shared.expressions import ExpressionError, ExpressionKind, compile_expression
from shared.models import QueueOrder, TaskQueue, utcnow
from shared.sids import SidPrefix, new_sid
from shared.storage import collections as c
from shared.storage.committer import Write

router = APIRouter(prefix="/v1/Workspaces/{workspace_sid}/TaskQueues")
TASK_ORDERS = [str(order) for order in QueueOrder]
MAX_RESERVED_WORKERS = 50
ORDERING_FIELDS = {"DateCreated": "date_created", "FriendlyName": "friendly_name"}


def check_target_workers(expression: str) -> str:
    """`expression` when it parses as a worker expression; 400 naming the problem."""
    try:
        compile_expression(expression, ExpressionKind.WORKER)
    except ExpressionError as exc:
        raise DomainValidationError(
            f"TargetWorkers is not a valid expression: {exc.message} (position {exc.position})",
            param="TargetWorkers",
        ) from exc
    return expression


def _queue(config: WorkspaceConfig, sid: str) -> TaskQueue:
    found = config.queues.get(path_sid(sid, SidPrefix.TASK_QUEUE, "TaskQueue"))
    if found is None:
        raise NotFoundError("TaskQueue", sid)
    return found


def _event(caller: Caller, queue: TaskQueue, event_type: str, verb: str) -> Event:
    return config_event(
        event_type, account_sid=caller.account_sid, workspace_sid=queue.workspace_sid,
        resource_type="task_queue", resource_sid=queue.sid, at=utcnow(),
        data=task_queue_data(queue), description=f"TaskQueue {queue.friendly_name} {verb}",
        source_ip_address=caller.ip_address,
    )


def _changes(config: WorkspaceConfig, params: Params, *, creating: bool) -> dict:
    """The fields set by the request's parameters, checked against the workspace."""
    changes: dict = {}
    name = params.friendly_name(required=creating)
    if name is not None:
        if not name:
            raise DomainValidationError("FriendlyName must not be empty", param="FriendlyName")
        changes["friendly_name"] = name
    if (target := params.text("TargetWorkers")) is not None:
        changes["target_workers"] = check_target_workers(target)
    maximum = params.integer("MaxReservedWorkers", minimum=1, maximum=MAX_RESERVED_WORKERS)
    if maximum is not None:
        changes["max_reserved_workers"] = maximum
    if (order := params.choice("TaskOrder", TASK_ORDERS)) is not None:
        changes["task_order"] = QueueOrder(order)
    for param, field in (("ReservationActivitySid", "reservation_activity"),
                         ("AssignmentActivitySid", "assignment_activity")):
        if (sid := params.sid(param, SidPrefix.ACTIVITY)) is not None:
            activity = config.activities.get(sid)
            if activity is None:
                raise DomainValidationError(
                    f"{param} {sid!r} is not an Activity of this Workspace", param=param
                )
            changes[f"{field}_sid"] = activity.sid
            changes[f"{field}_name"] = activity.friendly_name
    return changes


@router.post("")
async def create_task_queue(
    workspace_sid: str, request: Request, gateway: GatewayDep, caller: CallerDep
) -> JSONResponse:
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    params = await form_params(request)
    now = utcnow()
    queue = TaskQueue(
        sid=new_sid(SidPrefix.TASK_QUEUE), account_sid=caller.account_sid,
        workspace_sid=workspace_sid, date_created=now, date_updated=now,
        **_changes(config, params, creating=True),
    )
    await gateway.configuration.commit(
        workspace_sid, [Write(c.TASK_QUEUES, InsertOne(queue.to_document()))],
        [_event(caller, queue, "task-queue.created", "created")],
    )
    return created(task_queue_wire(queue, gateway.links))


@router.get("")
async def list_task_queues(
    workspace_sid: str, request: Request, gateway: GatewayDep, caller: CallerDep
) -> JSONResponse:
    """Filters: `FriendlyName`, `EvaluateWorkerAttributes`, `WorkerSid`; `Ordering`."""
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    params = query_params(request)
    paging = page_request(params, request.url.path)
    queues = list(config.queues.values())
    if (name := params.text("FriendlyName")) is not None:
        queues = [q for q in queues if q.friendly_name == name]
    attributes = params.json_object("EvaluateWorkerAttributes", max_chars=ATTRIBUTES_MAX_CHARS)
    if attributes is not None:
        queues = _eligible_queues(queues, orjson.loads(attributes))
    if (worker_sid := params.sid("WorkerSid", SidPrefix.WORKER)) is not None:
        worker = await gateway.runtime.db[c.WORKERS].find_one(
            {"_id": worker_sid, "workspace_sid": workspace_sid}, {"attributes": 1}
        )
        worker_attributes = orjson.loads(worker["attributes"]) if worker else None
        queues = _eligible_queues(queues, worker_attributes) if worker else []
    ordering = parse_ordering("Ordering", params.text("Ordering") or "DateCreated:asc",
                              ORDERING_FIELDS)
    field, direction = ordering[0]
    return cached_list(
        gateway, request, params, paging, "task_queues", queues,
        lambda q: task_queue_wire(q, gateway.links),
        key_of=lambda q: (getattr(q, field), q.sid), descending=direction < 0,
    )


def _eligible_queues(queues: list[TaskQueue], attributes: dict | None) -> list[TaskQueue]:
    """The queues whose TargetWorkers match a worker with `attributes`."""
    if not isinstance(attributes, dict):
        return []
    return [
        q for q in queues
        if compile_expression(q.target_workers, ExpressionKind.WORKER).evaluate(attributes)
    ]


@router.get("/{sid}")
async def fetch_task_queue(
    workspace_sid: str, sid: str, gateway: GatewayDep, caller: CallerDep
) -> JSONResponse:
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    return ok(task_queue_wire(_queue(config, sid), gateway.links))


@router.post("/{sid}")
async def update_task_queue(
    workspace_sid: str, sid: str, request: Request, gateway: GatewayDep, caller: CallerDep
) -> JSONResponse:
    """Also emits `task-queue.expression.updated` when TargetWorkers changes."""
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    queue = _queue(config, sid)
    params = await form_params(request)
    changes = _changes(config, params, creating=False)
    updated = queue.model_copy(update={**changes, "date_updated": utcnow()})
    events = [_event(caller, updated, "task-queue.updated", "updated")]
    if updated.target_workers != queue.target_workers:
        events.append(_event(caller, updated, "task-queue.expression.updated",
                             "target expression updated"))
    await gateway.configuration.commit(
        workspace_sid, [Write(c.TASK_QUEUES, ReplaceOne({"_id": sid}, updated.to_document()))],
        events,
    )
    return ok(task_queue_wire(updated, gateway.links))


@router.delete("/{sid}")
async def delete_task_queue(
    workspace_sid: str, sid: str, gateway: GatewayDep, caller: CallerDep
) -> Response:
    """Refused (400) while a workflow routes to it or an open task sits in it."""
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    queue = _queue(config, sid)
    for workflow in config.workflows.values():
        # A queue SID is random, so finding it anywhere in the document means a reference.
        if queue.sid in workflow.configuration:
            raise ConflictError(f"TaskQueue {queue.sid} is used by Workflow {workflow.sid}")
    if await gateway.configuration.open_task_uses(workspace_sid, "task_queue_sid", queue.sid):
        raise ConflictError(f"TaskQueue {queue.sid} holds at least one open Task")
    await gateway.configuration.commit(
        workspace_sid, [Write(c.TASK_QUEUES, DeleteOne({"_id": sid}))],
        [_event(caller, queue, "task-queue.deleted", "deleted")],
    )
    return no_content()
