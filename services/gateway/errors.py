"""One table from domain errors to Twilio's error body, and the handlers using it.

Every refusal leaves the gateway as Twilio's shape, because clients parse it:

    {"code": 20404, "message": "...", "more_info": "https://www.twilio.com/docs/errors/20404",
     "status": 404}

Routes raise errors from `shared.errors`; FastAPI's own validation errors and
Starlette's 404/405 for unknown paths go through the same table. Anything else
is a 500, logged with its traceback and answered without details.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.errors import (
    AuthenticationError,
    ConflictError,
    DomainValidationError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    RateLimitedError,
    TaskRouterError,
    UnavailableError,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ErrorStatus:
    """HTTP status and Twilio error code of one kind of refusal."""

    status: int
    code: int


# Looked up along the exception's MRO, so the most specific class wins:
# PreconditionFailedError is a ConflictError but answers 412.
# NOTE: a duplicate name or an object still in use is a ConflictError; TaskRouter
# answers those with 400/20001, not 409.
ERROR_TABLE: dict[type[TaskRouterError], ErrorStatus] = {
    DomainValidationError: ErrorStatus(400, 20001),
    ConflictError: ErrorStatus(400, 20001),
    PreconditionFailedError: ErrorStatus(412, 20412),
    AuthenticationError: ErrorStatus(401, 20003),
    PermissionDeniedError: ErrorStatus(403, 20403),
    NotFoundError: ErrorStatus(404, 20404),
    RateLimitedError: ErrorStatus(429, 20429),
    UnavailableError: ErrorStatus(503, 20503),
    TaskRouterError: ErrorStatus(500, 20500),
}
INTERNAL = ErrorStatus(500, 20500)
METHOD_NOT_ALLOWED = ErrorStatus(405, 20004)


def status_of(error: TaskRouterError) -> ErrorStatus:
    """The status and code answering `error`."""
    for cls in type(error).__mro__:
        found = ERROR_TABLE.get(cls)  # type: ignore[arg-type]
        if found is not None:
            return found
    return INTERNAL


def error_body(status: ErrorStatus, message: str) -> dict[str, Any]:
    """Twilio's error body."""
    return {
        "code": status.code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{status.code}",
        "status": status.status,
    }


def error_response(error: TaskRouterError) -> JSONResponse:
    """The response answering a domain error."""
    status = status_of(error)
    message = error.message if status.status != 500 else "Internal Server Error"
    headers = {}
    if isinstance(error, RateLimitedError):
        headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, AuthenticationError):
        headers["WWW-Authenticate"] = 'Basic realm="TaskRouter"'
    return JSONResponse(error_body(status, message), status.status, headers=headers)


def validation_message(errors: list[dict[str, Any]]) -> str:
    """One sentence naming the first parameter FastAPI refused."""
    if not errors:
        return "Invalid request"
    first = errors[0]
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    name = ".".join(location) or "request"
    return f"Invalid parameter {name}: {first.get('msg', 'invalid value')}"


async def _on_domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TaskRouterError)
    status = status_of(exc)
    if status.status >= 500:
        logger.error(
            "request failed", extra={"path": request.url.path, "error": type(exc).__name__}
        )
    return error_response(exc)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    status = ERROR_TABLE[DomainValidationError]
    return JSONResponse(error_body(status, validation_message(list(exc.errors()))), 400)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        status = ERROR_TABLE[NotFoundError]
        message = f"The requested resource {request.url.path} was not found"
    elif exc.status_code == 405:
        status = METHOD_NOT_ALLOWED
        message = f"Method {request.method} not allowed on {request.url.path}"
    elif exc.status_code == 400:  # a body Starlette's form parser refused, say
        status = ERROR_TABLE[DomainValidationError]
        message = str(exc.detail)
    else:
        status = ErrorStatus(exc.status_code, exc.status_code)
        message = str(exc.detail)
    return JSONResponse(error_body(status, message), status.status, headers=exc.headers)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.error("request failed", exc_info=exc, extra={"path": request.url.path})
    return JSONResponse(error_body(INTERNAL, "Internal Server Error"), 500)


def register_error_handlers(app: FastAPI) -> None:
    """Answer every error raised below `app` in Twilio's shape."""
    app.add_exception_handler(TaskRouterError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
