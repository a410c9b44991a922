"""Workers and their channels. The queue-dispatcher owns them: writes go to it
as commands, reads come from its `workers` collection (read-only)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from services.gateway.context import Caller, CallerDep, Gateway, GatewayDep
from services.gateway.paging import page_in_memory, page_request
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
    ok,
    path_sid,
    query_params,
)
from services.gateway.wire import ChannelOwner, worker_channel_wire, worker_wire
from shared.commands import (
    CreateWorker,
    DeleteWorker,
    FetchWorker,
    UpdateWorker,
    UpdateWorkerChannel,
)
from shared.config_view import WorkspaceConfig
from shared.errors import DomainValidationError, NotFoundError, UnavailableError
from shared.expressions import ExpressionError, ExpressionKind, compile_expression
from shared.models import ReservationStatus, Worker, WorkerChannel
from shared.sids import SidPrefix
from shared.storage.mongo import translate_errors
from shared.storage import collections as c

router = APIRouter(prefix="/v1/Workspaces/{workspace_sid}/Workers")
ORDERING_FIELDS = {
    "DateCreated": "date_created",
    "DateStatusChanged": "date_status_changed",
    "FriendlyName": "friendly_name",
}
MAX_CHANNEL_CAPACITY = 50






def _check_activity(config: WorkspaceConfig, params: Params) -> str | None:
    sid = params.sid("ActivitySid", SidPrefix.ACTIVITY)
    if sid is not None and sid not in config.activities:
        raise DomainValidationError(
            f"ActivitySid {sid!r} is not an Activity of this Workspace", param="ActivitySid"
        )
    return sid


def _worker_response(worker: Worker, gateway: Gateway, status: int = 200) -> JSONResponse:
    return JSONResponse(worker_wire(worker, gateway.links), status, headers=etag(worker.version))


async def load_worker(gateway: Gateway, workspace_sid: str, sid: str) -> Worker:
    """A worker of the workspace from the dispatcher's collection; 404 when missing."""
    path_sid(sid, SidPrefix.WORKER, "Worker")
    doc = await find_one(gateway.runtime.db, c.WORKERS,
                         {"_id": sid, "workspace_sid": workspace_sid}, "Worker", sid)
    return Worker.from_document(doc)


@router.post("")
async def create_worker(
    workspace_sid: str, request: Request, gateway: GatewayDep, caller: CallerDep
) -> JSONResponse:
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    params = await form_params(request)
    command = CreateWorker(
        **command_base(config, caller),
        friendly_name=params.friendly_name(required=True) or "",
        attributes=params.json_object("Attributes", max_chars=ATTRIBUTES_MAX_CHARS) or "{}",
        activity_sid=_check_activity(config, params),
    )
    worker = Worker.model_validate(await send(gateway, config, command))
    return _worker_response(worker, gateway, 201)


@router.get("")
async def list_workers(
    workspace_sid: str, request: Request, gateway: GatewayDep, caller: CallerDep
) -> JSONResponse:
    """Filters of the contract; expression filters are evaluated here, page by page."""
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    params = query_params(request)
    paging = page_request(params, request.url.path)
    query, predicates = _worker_filters(config, params)
    sort = [*parse_ordering("Ordering", params.text("Ordering") or "DateCreated:asc",
                            ORDERING_FIELDS)]
    sort.append(("_id", sort[-1][1]))
    page = await find_page(gateway.runtime.db, c.WORKERS, query, sort, paging,
                           _all(predicates) if predicates else None)
    return list_page(gateway, request, params, paging, "workers", page,
                     lambda d: worker_wire(Worker.from_document(d), gateway.links))


def _worker_filters(config: WorkspaceConfig, params: Params) -> tuple[Document, list[Predicate]]:
    query: Document = {"workspace_sid": config.workspace.sid}
    predicates: list[Predicate] = []
    if (name := params.text("ActivityName")) is not None:
        query["activity_name"] = name
    if (activity_sid := params.sid("ActivitySid", SidPrefix.ACTIVITY)) is not None:
        query["activity_sid"] = activity_sid
    if (available := params.boolean("Available", lenient=True)) is not None:
        query["available"] = available
    if (friendly_name := params.text("FriendlyName")) is not None:
        query["friendly_name"] = friendly_name
    if (expression := params.text("TargetWorkersExpression")) is not None:
        predicates.append(_expression_filter(expression))
    queue_sid = params.sid("TaskQueueSid", SidPrefix.TASK_QUEUE)
    queue_name = params.text("TaskQueueName")
    if queue_sid is not None or queue_name is not None:
        queues = [q for q in config.queues.values()
                  if (queue_sid is None or q.sid == queue_sid)
                  and (queue_name is None or q.friendly_name == queue_name)]
        predicates.append(_eligible_for_any([q.target_workers for q in queues]))
    return query, predicates


def _attributes(doc: Document) -> dict[str, Any]:
    try:
        parsed = orjson.loads(doc.get("attributes") or "{}")
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _expression_filter(text: str) -> Predicate:
    try:
        expression = compile_expression(text, ExpressionKind.WORKER_LIST)
    except ExpressionError as exc:
        raise DomainValidationError(
            f"TargetWorkersExpression is not a valid expression: {exc.message}",
            param="TargetWorkersExpression",
        ) from exc

    def matches(doc: Document) -> bool:
        document = {
            **_attributes(doc),
            "sid": doc["_id"],
            "friendly_name": doc.get("friendly_name"),
            "activity_sid": doc.get("activity_sid"),
            "activity_name": doc.get("activity_name"),
        }
        return expression.evaluate(document)

    return matches


def _eligible_for_any(targets: list[str]) -> Predicate:
    expressions = [compile_expression(t, ExpressionKind.WORKER) for t in targets]
    return lambda doc: any(e.evaluate(_attributes(doc)) for e in expressions)


def _all(predicates: list[Predicate]) -> Predicate:
    return lambda doc: all(p(doc) for p in predicates)


@router.get("/{sid}")
async def fetch_worker(
    workspace_sid: str, sid: str, gateway: GatewayDep, caller: CallerDep
) -> JSONResponse:
    await gateway.configuration.config(caller.account_sid, workspace_sid)
    return _worker_response(await load_worker(gateway, workspace_sid, sid), gateway)


@router.post("/{sid}")
async def update_worker(
    workspace_sid: str, sid: str, request: Request, gateway: GatewayDep, caller: CallerDep
) -> JSONResponse:
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    path_sid(sid, SidPrefix.WORKER, "Worker")
    params = await form_params(request)
    name = params.friendly_name()
    if name == "":
        raise DomainValidationError("FriendlyName must not be empty", param="FriendlyName")
    command = UpdateWorker(
        **command_base(config, caller),
        worker_sid=sid,
        friendly_name=name,
        attributes=params.json_object("Attributes", max_chars=ATTRIBUTES_MAX_CHARS),
        activity_sid=_check_activity(config, params),
        reject_pending_reservations=bool(params.boolean("RejectPendingReservations")),
        if_match=if_match(request),
    )
    worker = Worker.model_validate(await send(gateway, config, command))
    return _worker_response(worker, gateway)


@router.delete("/{sid}")
async def delete_worker(
    workspace_sid: str, sid: str, request: Request, gateway: GatewayDep, caller: CallerDep
) -> Response:
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    path_sid(sid, SidPrefix.WORKER, "Worker")
    command = DeleteWorker(**command_base(config, caller), worker_sid=sid,
                           if_match=if_match(request))
    await send(gateway, config, command)
    return no_content()


# -- worker channels -----------------------------------------------------------
# Seconds a worker channel read waits for a busy dispatcher before reading the store.
READ_TIMEOUT = 5.0


async def _worker_with_load(
    gateway: Gateway, config: WorkspaceConfig, caller: Caller, worker_sid: str
) -> Worker:
    """The worker as the dispatcher holds it: channel loads are not stored."""
    path_sid(worker_sid, SidPrefix.WORKER, "Worker")
    command = FetchWorker(**command_base(config, caller), worker_sid=worker_sid)
    try:
        # A read: no waiting for a restarting dispatcher, the store answers then.
        answer = await send(gateway, config, command, timeout=READ_TIMEOUT, restart_wait=0)
        return Worker.model_validate(answer)
    except UnavailableError:
        # The dispatcher is restarting or its partition changes hands: count the
        # load from the stored live reservations, as the dispatcher does at load.
        return await _stored_worker_with_load(gateway, config.workspace.sid, worker_sid)


_LIVE = [str(s) for s in ReservationStatus if s.is_live]


async def _stored_worker_with_load(gateway: Gateway, workspace_sid: str, worker_sid: str) -> Worker:
    worker = await load_worker(gateway, workspace_sid, worker_sid)
    channels = {ch.task_channel_sid: ch for ch in worker.channels}
    query = {"workspace_sid": workspace_sid, "worker_sid": worker_sid,
             "reservation_status": {"$in": _LIVE}}
    fields = {"task_channel_sid": 1, "reservation_status": 1}
    docs = await translate_errors(
        lambda: gateway.runtime.db[c.RESERVATIONS].find(query, fields).to_list(None)
    )
    for doc in docs:
        channel = channels.get(doc.get("task_channel_sid") or "")
        if channel is not None:
            channel.count_live(doc["reservation_status"])
    return worker


def _channel_of(worker: Worker, key: str) -> WorkerChannel:
    channel = worker.channel(key)
    if channel is None:
        raise NotFoundError("WorkerChannel", key)
    return channel


@router.get("/{worker_sid}/Channels")
async def list_worker_channels(
    workspace_sid: str, worker_sid: str, request: Request, gateway: GatewayDep,
    caller: CallerDep,
) -> JSONResponse:
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    worker = await _worker_with_load(gateway, config, caller, worker_sid)
    params = query_params(request)
    paging = page_request(params, request.url.path)
    page = page_in_memory(worker.channels, paging, lambda ch: (ch.date_created, ch.sid))
    return list_page(gateway, request, params, paging, "channels", page,
                     lambda ch: worker_channel_wire(worker, ch, gateway.links))


@router.get("/{worker_sid}/Channels/{sid}")
async def fetch_worker_channel(
    workspace_sid: str, worker_sid: str, sid: str, gateway: GatewayDep, caller: CallerDep
) -> JSONResponse:
    """`sid` is the WorkerChannel SID, or the TaskChannel SID or unique name."""
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    worker = await _worker_with_load(gateway, config, caller, worker_sid)
    return ok(worker_channel_wire(worker, _channel_of(worker, sid), gateway.links))


@router.post("/{worker_sid}/Channels/{sid}")
async def update_worker_channel(
    workspace_sid: str, worker_sid: str, sid: str, request: Request, gateway: GatewayDep,
    caller: CallerDep,
) -> JSONResponse:
    """Change `Capacity` (0–50) or `Available` of one of the worker's channels."""
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    path_sid(worker_sid, SidPrefix.WORKER, "Worker")
    params = await form_params(request)
    command = UpdateWorkerChannel(
        **command_base(config, caller),
        worker_sid=worker_sid,
        channel=sid,
        capacity=params.integer("Capacity", minimum=0, maximum=MAX_CHANNEL_CAPACITY),
        available=params.boolean("Available"),
    )
    answer = await send(gateway, config, command)
    worker, channel = _answered_channel(answer, sid)
    return ok(worker_channel_wire(worker, channel, gateway.links))


def _answered_channel(
    answer: dict[str, Any], key: str
) -> tuple[Worker | ChannelOwner, WorkerChannel]:
    """The changed channel from the dispatcher's answer: the channel with its
    owner's SIDs (`worker_sid`, `account_sid`, `workspace_sid`), or the whole worker."""
    if "channels" in answer:
        worker = Worker.model_validate(answer)
        return worker, _channel_of(worker, key)
    owner = ChannelOwner(answer["worker_sid"], answer["account_sid"], answer["workspace_sid"])
    return owner, WorkerChannel.model_validate(answer)
