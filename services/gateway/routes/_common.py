"""Helpers every route module uses: parameters, path SIDs, list bodies."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from services.gateway.context import Caller, Gateway
from shared.config_view import WorkspaceConfig
from shared.subjects import QUEUE_DISPATCHER
from services.gateway.paging import Page, PageRequest, list_body, list_meta, page_in_memory
from services.gateway.params import Params
from shared.errors import DomainValidationError, NotFoundError
from shared.models import Resource
from shared.sids import is_sid

T = TypeVar("T")


# Configuration may hold 1 MiB of JSON; percent-encoding can triple its size.
MAX_FORM_BYTES = 4 * 1_048_576
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"


async def form_params(request: Request) -> Params:
    """The form-encoded body of a POST (empty when there is none).

    A body of another type, one that is not UTF-8 or one over MAX_FORM_BYTES is
    refused with 400 naming it, instead of being read as no parameters at all.
    """
    body = await _bounded_body(request)
    if not body:
        return Params(())
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media == MULTIPART:
        return Params.from_multidict(await request.form())
    if media != FORM:
        raise DomainValidationError(
            f"The request body must be form-encoded ({FORM}), not {media or 'of no declared type'}",
            param="Content-Type",
        )
    try:
        items = parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise DomainValidationError(
            "The request body is not valid UTF-8 (after percent-decoding)", param="Content-Type"
        ) from None
    return Params(items)


async def _bounded_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise _too_large()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            raise _too_large()
        chunks.append(chunk)
    body = b"".join(chunks)
    # NOTE: Starlette reads a consumed stream back from this attribute, so
    # `request.form()` still works for multipart bodies after the check.
    request._body = body
    return body


def _too_large() -> DomainValidationError:
    return DomainValidationError(
        f"The request body is larger than {MAX_FORM_BYTES // 1_048_576} MiB", param="Content-Length"
    )


def query_params(request: Request) -> Params:
    return Params.from_multidict(request.query_params)


def path_sid(value: str, prefix: str, resource: str) -> str:
    """A SID from the path; a malformed one is as unknown as a missing one (404)."""
    if not is_sid(value, prefix):
        raise NotFoundError(resource, value)
    return value


def created(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, 201, headers=headers)


def ok(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, 200, headers=headers)


def no_content() -> Response:
    return Response(status_code=204)


def etag(version: int) -> dict[str, str]:
    """The ETag header of a versioned object: its version as a decimal string."""
    return {"ETag": str(version)}


def by_creation(resource: Resource) -> tuple[Any, ...]:
    """Default list order: date_created, then SID."""
    return (resource.date_created, resource.sid)


def list_page(
    gateway: Gateway,
    request: Request,
    params: Params,
    paging: PageRequest,
    key: str,
    page: Page[T],
    render: Callable[[T], dict[str, Any]],
) -> JSONResponse:
    """The list body of `page` with `meta` built from this request.

    Lists of versioned objects (tasks, workers, reservations) carry an ETag too.
    Decision (its meaning is undocumented): a digest of the SIDs and versions on the
    page, so it changes whenever any listed object does.
    """
    meta = list_meta(
        gateway.links.root, request.url.path, params, paging, key, page.next_key
    )
    response = ok(list_body(key, [render(item) for item in page.items], meta))
    if (tag := _page_etag(page.items)) is not None:
        response.headers["ETag"] = tag
    return response


def _page_etag(items: Sequence[Any]) -> str | None:
    if not items:
        return None
    versions = []
    for item in items:
        doc = item if isinstance(item, dict) else getattr(item, "__dict__", None)
        if doc is None or "version" not in doc:
            return None
        versions.append(f"{doc.get('sid') or doc.get('_id')}:{doc['version']}")
    return hashlib.sha1(";".join(versions).encode()).hexdigest()[:20]


def cached_list(
    gateway: Gateway,
    request: Request,
    params: Params,
    paging: PageRequest,
    key: str,
    objects: Iterable[Resource],
    render: Callable[[Any], dict[str, Any]],
    *,
    key_of: Callable[[Any], tuple[Any, ...]] = by_creation,
    descending: bool = False,
) -> JSONResponse:
    """A list of cached configuration objects, by default in creation order."""
    page = page_in_memory(objects, paging, key_of, descending=descending)
    return list_page(gateway, request, params, paging, key, page, render)


def event_source(caller: Caller) -> dict[str, Any]:
    """The account and address recorded on events caused by this request."""
    return {"account_sid": caller.account_sid, "source_ip_address": caller.ip_address}


def if_match(request: Request) -> str | None:
    """The `If-Match` header as a bare version: quotes and a weak `W/` are dropped."""
    value = request.headers.get("if-match")
    if value is None:
        return None
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"') or None


def command_base(config: WorkspaceConfig, caller: Caller) -> dict[str, Any]:
    """The fields every command to another service carries."""
    return {
        "account_sid": caller.account_sid,
        "workspace_sid": config.workspace.sid,
        "actor_sid": caller.account_sid,
        "source_ip_address": caller.ip_address,
    }


async def send(
    gateway: Gateway, config: WorkspaceConfig, command: Any, **options: Any
) -> Any:
    """Send a command to the queue-dispatcher and return its answer.

    `options` go to `CommandClient.request` (`timeout`, `restart_wait`).
    """
    return await gateway.runtime.commands.request(
        QUEUE_DISPATCHER, command.action, command.model_dump(mode="json"),
        workspace_sid=config.workspace.sid, **options,
    )
