"""Reservations, reached through a task or a worker. The queue-dispatcher owns
them: updates go to it as commands, reads come from `reservations` (read-only)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.gateway.context import CallerDep, Gateway, GatewayDep
from services.gateway.instruction_params import read_instruction_params
from services.gateway.paging import page_request
from services.gateway.params import Params
from services.gateway.reads import Document, find_one, find_page
from services.gateway.routes._common import (
    command_base,
    etag,
    form_params,
    if_match,
    list_page,
    path_sid,
    query_params,
    send,
)
from services.gateway.routes.tasks import load_task
from services.gateway.routes.workers import load_worker
from services.gateway.wire import reservation_wire
from shared.commands import UpdateReservation
from shared.config_view import WorkspaceConfig
from shared.errors import DomainValidationError
from shared.models import Reservation, ReservationStatus
from shared.sids import SidPrefix
from shared.storage import collections as c

router = APIRouter(prefix="/v1/Workspaces/{workspace_sid}")
STATUSES = [str(s) for s in ReservationStatus]
SORT = [("date_created", 1), ("_id", 1)]


def _response(reservation: Reservation, gateway: Gateway, via_worker: bool) -> JSONResponse:
    body = reservation_wire(reservation, gateway.links, via_worker=via_worker)
    return JSONResponse(body, 200, headers=etag(reservation.version))


async def _list(
    gateway: Gateway, request: Request, query: Document, via_worker: bool
) -> JSONResponse:
    params = query_params(request)
    paging = page_request(params, request.url.path)
    if (status := params.choice("ReservationStatus", STATUSES)) is not None:
        query["reservation_status"] = status
    if not via_worker and (worker_sid := params.sid("WorkerSid", SidPrefix.WORKER)) is not None:
        query["worker_sid"] = worker_sid
    page = await find_page(gateway.runtime.db, c.RESERVATIONS, query, SORT, paging)
    return list_page(
        gateway, request, params, paging, "reservations", page,
        lambda d: reservation_wire(Reservation.from_document(d), gateway.links,
                                   via_worker=via_worker),
    )


async def _fetch(gateway: Gateway, query: Document, sid: str) -> Reservation:
    path_sid(sid, SidPrefix.RESERVATION, "Reservation")
    doc = await find_one(gateway.runtime.db, c.RESERVATIONS, {**query, "_id": sid},
                         "Reservation", sid)
    return Reservation.from_document(doc)


def _update_command(
    config: WorkspaceConfig, caller: CallerDep, params: Params, request: Request, sid: str,
    **owner: str,
) -> UpdateReservation:
    activity_sid = params.sid("WorkerActivitySid", SidPrefix.ACTIVITY)
    if activity_sid is not None and activity_sid not in config.activities:
        raise DomainValidationError(
            f"WorkerActivitySid {activity_sid!r} is not an Activity of this Workspace",
            param="WorkerActivitySid",
        )
    return UpdateReservation(
        **command_base(config, caller),
        reservation_sid=path_sid(sid, SidPrefix.RESERVATION, "Reservation"),
        reservation_status=params.choice("ReservationStatus", STATUSES),
        worker_activity_sid=activity_sid,
        instruction=params.text("Instruction"),
        instruction_params=read_instruction_params(params),
        if_match=if_match(request),
        **owner,
    )


# -- through the task ----------------------------------------------------------
@router.get("/Tasks/{task_sid}/Reservations")
async def list_task_reservations(
    workspace_sid: str, task_sid: str, request: Request, gateway: GatewayDep, caller: CallerDep
) -> JSONResponse:
    """Filters: `ReservationStatus`, `WorkerSid`."""
    await gateway.configuration.config(caller.account_sid, workspace_sid)
    await load_task(gateway, workspace_sid, task_sid)
    query = {"workspace_sid": workspace_sid, "task_sid": task_sid}
    return await _list(gateway, request, query, via_worker=False)


@router.get("/Tasks/{task_sid}/Reservations/{sid}")
async def fetch_task_reservation(
    workspace_sid: str, task_sid: str, sid: str, gateway: GatewayDep, caller: CallerDep
) -> JSONResponse:
    await gateway.configuration.config(caller.account_sid, workspace_sid)
    reservation = await _fetch(gateway, {"workspace_sid": workspace_sid, "task_sid": task_sid},
                               sid)
    return _response(reservation, gateway, via_worker=False)


@router.post("/Tasks/{task_sid}/Reservations/{sid}")
async def update_task_reservation(
    workspace_sid: str, task_sid: str, sid: str, request: Request, gateway: GatewayDep,
    caller: CallerDep,
) -> JSONResponse:
    """Accept, reject, complete ... a reservation; telephony parameters go along."""
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    path_sid(task_sid, SidPrefix.TASK, "Task")
    params = await form_params(request)
    command = _update_command(config, caller, params, request, sid, task_sid=task_sid)
    reservation = Reservation.model_validate(await send(gateway, config, command))
    return _response(reservation, gateway, via_worker=False)


# -- through the worker --------------------------------------------------------
@router.get("/Workers/{worker_sid}/Reservations")
async def list_worker_reservations(
    workspace_sid: str, worker_sid: str, request: Request, gateway: GatewayDep,
    caller: CallerDep,
) -> JSONResponse:
    """Filter: `ReservationStatus`."""
    await gateway.configuration.config(caller.account_sid, workspace_sid)
    await load_worker(gateway, workspace_sid, worker_sid)
    query = {"workspace_sid": workspace_sid, "worker_sid": worker_sid}
    return await _list(gateway, request, query, via_worker=True)


@router.get("/Workers/{worker_sid}/Reservations/{sid}")
async def fetch_worker_reservation(
    workspace_sid: str, worker_sid: str, sid: str, gateway: GatewayDep, caller: CallerDep
) -> JSONResponse:
    await gateway.configuration.config(caller.account_sid, workspace_sid)
    reservation = await _fetch(
        gateway, {"workspace_sid": workspace_sid, "worker_sid": worker_sid}, sid
    )
    return _response(reservation, gateway, via_worker=True)


@router.post("/Workers/{worker_sid}/Reservations/{sid}")
async def update_worker_reservation(
    workspace_sid: str, worker_sid: str, sid: str, request: Request, gateway: GatewayDep,
    caller: CallerDep,
) -> JSONResponse:
    config = await gateway.configuration.config(caller.account_sid, workspace_sid)
    path_sid(worker_sid, SidPrefix.WORKER, "Worker")
    params = await form_params(request)
    command = _update_command(config, caller, params, request, sid, worker_sid=worker_sid)
    reservation = Reservation.model_validate(await send(gateway, config, command))
    return _response(reservation, gateway, via_worker=True)
