import orjson
import pytest

from services.gateway.errors import error_response, status_of, validation_message
from shared.errors import (
    AuthenticationError,
    ConflictError,
    DomainValidationError,
    InvalidTransitionError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    RateLimitedError,
    TaskRouterError,
    UnavailableError,
)


@pytest.mark.parametrize("error,status,code", [
    (DomainValidationError("bad"), 400, 20001),
    (InvalidTransitionError("no"), 400, 20001),
    (ConflictError("taken"), 400, 20001),
    (PreconditionFailedError("stale"), 412, 20412),
    (AuthenticationError("who"), 401, 20003),
    (PermissionDeniedError("no"), 403, 20403),
    (NotFoundError("Task", "WT1"), 404, 20404),
    (RateLimitedError("slow down"), 429, 20429),
    (UnavailableError("down"), 503, 20503),
    (TaskRouterError("odd"), 500, 20500),
], ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v))
def test_error_table(error, status, code):
    assert (status_of(error).status, status_of(error).code) == (status, code)
    response = error_response(error)
    body = orjson.loads(response.body)
    assert response.status_code == status
    assert body["code"] == code and body["status"] == status
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"


def test_internal_errors_hide_their_message():
    body = orjson.loads(error_response(TaskRouterError("secret detail")).body)
    assert body["message"] == "Internal Server Error"


def test_rate_limited_answers_retry_after():
    assert error_response(RateLimitedError("x", retry_after=3)).headers["Retry-After"] == "3"


def test_validation_message_names_the_parameter():
    errors = [{"loc": ("query", "PageSize"), "msg": "Input should be a valid integer"}]
    assert validation_message(errors) == (
        "Invalid parameter PageSize: Input should be a valid integer")


def test_a_400_from_starlette_answers_with_twilio_code_20001():
    import asyncio

    from starlette.exceptions import HTTPException
    from starlette.requests import Request

    from services.gateway.errors import _on_http_error

    request = Request({"type": "http", "method": "POST", "path": "/v1/Workspaces",
                       "headers": [], "query_string": b""})
    answer = asyncio.run(_on_http_error(request, HTTPException(400, "Part exceeded maximum size")))
    body = orjson.loads(answer.body)
    assert answer.status_code == 400
    assert body["code"] == 20001 and body["more_info"].endswith("/20001")
