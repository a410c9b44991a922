"""The 15 statistics routes: parameters checked here, figures from the
statistics service (`StatisticsQuery`), `url` added here.

Registered before the resource routes, so `/TaskQueues/Statistics` and
`/Workers/RealTimeStatistics` are never read as SIDs.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.gateway.context import Caller, CallerDep, Gateway, GatewayDep
from services.gateway.paging import page_in_memory, page_request
from services.gateway.params import INT64_MAX, Params, check_sid
from services.gateway.routes._common import command_base, list_page, ok, path_sid, query_params
from shared.commands import StatisticsQuery
from shared.config_view import WorkspaceConfig
from shared.errors import DomainValidationError, NotFoundError
from shared.models import utcnow
from shared.sids import SidPrefix
from shared.subjects import STATISTICS

router = APIRouter(prefix="/v1/Workspaces/{workspace_sid}")
MAX_MINUTES = 43_200
MAX_BULK_QUEUES = 50


def statistics_params(config: WorkspaceConfig, params: Params, *, window: bool = True,
                      split: bool = False) -> dict[str, Any]:
    """The query parameters every statistics route shares, checked and renamed."""
    found: dict[str, Any] = {}
    if window:
        minutes = params.integer("Minutes", minimum=1, maximum=MAX_MINUTES)
        start, end = params.date("StartDate"), params.date("EndDate")
        if start and end and start > end:
            raise DomainValidationError("StartDate must not be after EndDate", param="StartDate")
        if start and (utcnow() - start).total_seconds() > MAX_MINUTES * 60:
            raise DomainValidationError(
                "StartDate must be within the last 30 days", param="StartDate"
            )
        found.update(minutes=minutes, start_date=start and start.isoformat(),
                     end_date=end and end.isoformat())
    if (channel := params.text("TaskChannel")) is not None:
        if config.channel(channel) is None:
            raise DomainValidationError(
                f"TaskChannel {channel!r} is not a TaskChannel of this Workspace",
                param="TaskChannel",
            )
        found["task_channel"] = channel
    if split and (thresholds := params.strings("SplitByWaitTime", comma=True)):
        found["split_by_wait_time"] = _thresholds(thresholds)
    return {k: v for k, v in found.items() if v is not None}


def _thresholds(values: list[str]) -> list[int]:
    try:
        thresholds = [int(v) for v in values]
    except ValueError:
        raise DomainValidationError(
            f"SplitByWaitTime must be whole seconds separated by commas, got {','.join(values)!r}",
            param="SplitByWaitTime",
        ) from None
    if any(t < 0 for t in thresholds):
        raise DomainValidationError("SplitByWaitTime cannot be negative", param="SplitByWaitTime")
    if any(t > INT64_MAX for t in thresholds):
        # Wider integers cannot be sent on to the statistics service (64-bit JSON).
        raise DomainValidationError(
            f"SplitByWaitTime is out of range, got {','.join(values)!r}", param="SplitByWaitTime"
        )
    return thresholds


async def ask(
    gateway: Gateway, config: WorkspaceConfig, caller: Caller, route: str,
    params: dict[str, Any], resource_sid: str | None = None,
) -> Any:
    """Send one StatisticsQuery to the statistics service and return its answer."""
    query = StatisticsQuery(**command_base(config, caller), route=route,
                            resource_sid=resource_sid, params=params)
    return await gateway.runtime.commands.request(
        STATISTICS, query.action, query.model_dump(mode="json"),
        workspace_sid=config.workspace.sid,
    )


def _with_url(answer: dict[str, Any], gateway: Gateway, request: Request) -> JSONResponse:
    return ok({**answer, "url": f"{gateway.links.root}{request.url.path}"})


def _queue(config: WorkspaceConfig, sid: str) -> str:
    if path_sid(sid, SidPrefix.TASK_QUEUE, "TaskQueue") not in config.queues:
        raise NotFoundError("TaskQueue", sid)
    return sid


def _workflow(config: WorkspaceConfig, sid: str) -> str:
    if path_sid(sid, SidPrefix.WORKFLOW, "Workflow") not in config.workflows:
        raise NotFoundError("Workflow", sid)
    return sid


async def _answer(
    request: Request, gateway: Gateway, caller: Caller, workspace_sid: str, route: str, *,
    window: bool = True, split: bool = False, resource: str | None = None,
) -> JSONResponse:
    """Check the parameters, ask the statistics service, add `url`."""
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    if resource is not None:
        kind = resource[:2]
        if kind == "WQ":
            _queue(config, resource)
        elif kind == "WW":
            _workflow(config, resource)
        else:
            path_sid(resource, SidPrefix.WORKER, "Worker")
    params = statistics_params(config, query_params(request), window=window, split=split)
    answer = await ask(gateway, config, caller, route, params, resource)
    return _with_url(answer, gateway, request)


# -- workspace -----------------------------------------------------------------
@router.get("/Statistics")
async def workspace_statistics(workspace_sid: str, request: Request, gateway: GatewayDep,
                               caller: CallerDep) -> JSONResponse:
    return await _answer(request, gateway, caller, workspace_sid, "workspace", split=True)


@router.get("/RealTimeStatistics")
async def workspace_real_time_statistics(workspace_sid: str, request: Request,
                                         gateway: GatewayDep, caller: CallerDep) -> JSONResponse:
    return await _answer(request, gateway, caller, workspace_sid, "workspace.realtime",
                         window=False)


@router.get("/CumulativeStatistics")
async def workspace_cumulative_statistics(workspace_sid: str, request: Request,
                                          gateway: GatewayDep, caller: CallerDep) -> JSONResponse:
    return await _answer(request, gateway, caller, workspace_sid, "workspace.cumulative",
                         split=True)


# -- task queues ---------------------------------------------------------------
@router.get("/TaskQueues/Statistics")
async def task_queues_statistics(workspace_sid: str, request: Request, gateway: GatewayDep,
                                 caller: CallerDep) -> JSONResponse:
    """Combined statistics of every queue (filter `FriendlyName`), paged here."""
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    params = query_params(request)
    paging = page_request(params, request.url.path)
    query = statistics_params(config, params, split=True)
    if (name := params.text("FriendlyName")) is not None:
        query["friendly_name"] = name
    answer = await ask(gateway, config, caller, "task_queues", query)
    items = answer.get("task_queues_statistics", []) if isinstance(answer, dict) else answer
    keyed = [(config.queues[i["task_queue_sid"]], i) for i in items
             if i.get("task_queue_sid") in config.queues]
    page = page_in_memory(keyed, paging, lambda pair: (pair[0].date_created, pair[0].sid))
    return list_page(gateway, request, params, paging, "task_queues_statistics", page,
                     lambda pair: {k: v for k, v in pair[1].items() if k != "url"})


@router.post("/TaskQueues/RealTimeStatistics")
async def task_queues_bulk_real_time_statistics(
    workspace_sid: str, request: Request, gateway: GatewayDep, caller: CallerDep
) -> JSONResponse:
    """JSON body `{"QueueSids": [...]}` (or `queueSids`), 1 to 50 TaskQueue SIDs."""
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    sids = _bulk_queue_sids(await request.body())
    answer = await ask(gateway, config, caller, "task_queues.realtime_bulk", {"queue_sids": sids})
    return _with_url(answer, gateway, request)


def _bulk_queue_sids(raw: bytes) -> list[str]:
    try:
        body = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise DomainValidationError(
            'The request body must be JSON such as {"QueueSids": ["WQ…"]}', param="QueueSids"
        ) from None
    sids = body.get("QueueSids", body.get("queueSids")) if isinstance(body, dict) else None
    if not isinstance(sids, list) or not 1 <= len(sids) <= MAX_BULK_QUEUES:
        raise DomainValidationError(
            f"QueueSids must list 1 to {MAX_BULK_QUEUES} TaskQueue SIDs", param="QueueSids"
        )
    return [check_sid("QueueSids", str(sid), SidPrefix.TASK_QUEUE) for sid in sids]


@router.get("/TaskQueues/{sid}/Statistics")
async def task_queue_statistics(workspace_sid: str, sid: str, request: Request,
                                gateway: GatewayDep, caller: CallerDep) -> JSONResponse:
    return await _answer(request, gateway, caller, workspace_sid, "task_queue", split=True,
                         resource=sid)


@router.get("/TaskQueues/{sid}/RealTimeStatistics")
async def task_queue_real_time_statistics(workspace_sid: str, sid: str, request: Request,
                                          gateway: GatewayDep, caller: CallerDep) -> JSONResponse:
    return await _answer(request, gateway, caller, workspace_sid, "task_queue.realtime",
                         window=False, resource=sid)


@router.get("/TaskQueues/{sid}/CumulativeStatistics")
async def task_queue_cumulative_statistics(workspace_sid: str, sid: str, request: Request,
                                           gateway: GatewayDep, caller: CallerDep) -> JSONResponse:
    return await _answer(request, gateway, caller, workspace_sid, "task_queue.cumulative",
                         split=True, resource=sid)


# -- workers -------------------------------------------------------------------
@router.get("/Workers/Statistics")
async def workers_statistics(workspace_sid: str, request: Request, gateway: GatewayDep,
                             caller: CallerDep) -> JSONResponse:
    """Filters `TaskQueueSid`, `TaskQueueName`, `FriendlyName` besides the window."""
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    params = query_params(request)
    query = statistics_params(config, params)
    if (queue_sid := params.sid("TaskQueueSid", SidPrefix.TASK_QUEUE)) is not None:
        query["task_queue_sid"] = queue_sid
    for param, key in (("TaskQueueName", "task_queue_name"), ("FriendlyName", "friendly_name")):
        if (value := params.text(param)) is not None:
            query[key] = value
    answer = await ask(gateway, config, caller, "workers", query)
    return _with_url(answer, gateway, request)


@router.get("/Workers/RealTimeStatistics")
async def workers_real_time_statistics(workspace_sid: str, request: Request,
                                       gateway: GatewayDep, caller: CallerDep) -> JSONResponse:
    return await _answer(request, gateway, caller, workspace_sid, "workers.realtime",
                         window=False)


@router.get("/Workers/CumulativeStatistics")
async def workers_cumulative_statistics(workspace_sid: str, request: Request,
                                        gateway: GatewayDep, caller: CallerDep) -> JSONResponse:
    return await _answer(request, gateway, caller, workspace_sid, "workers.cumulative")


@router.get("/Workers/{sid}/Statistics")
async def worker_statistics(workspace_sid: str, sid: str, request: Request,
                            gateway: GatewayDep, caller: CallerDep) -> JSONResponse:
    return await _answer(request, gateway, caller, workspace_sid, "worker", resource=sid)


# -- workflows -----------------------------------------------------------------
@router.get("/Workflows/{sid}/Statistics")
async def workflow_statistics(workspace_sid: str, sid: str, request: Request,
                              gateway: GatewayDep, caller: CallerDep) -> JSONResponse:
    return await _answer(request, gateway, caller, workspace_sid, "workflow", split=True,
                         resource=sid)


@router.get("/Workflows/{sid}/RealTimeStatistics")
async def workflow_real_time_statistics(workspace_sid: str, sid: str, request: Request,
                                        gateway: GatewayDep, caller: CallerDep) -> JSONResponse:
    return await _answer(request, gateway, caller, workspace_sid, "workflow.realtime",
                         window=False, resource=sid)


@router.get("/Workflows/{sid}/CumulativeStatistics")
async def workflow_cumulative_statistics(workspace_sid: str, sid: str, request: Request,
                                         gateway: GatewayDep, caller: CallerDep) -> JSONResponse:
    return await _answer(request, gateway, caller, workspace_sid, "workflow.cumulative",
                         split=True, resource=sid)
