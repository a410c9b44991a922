"""How the gateway reads a POST body: form-encoded only, UTF-8, bounded."""

from __future__ import annotations

import asyncio

import pytest
from starlette.requests import Request

from services.gateway.routes._common import MAX_FORM_BYTES, form_params
from shared.errors import DomainValidationError


def _request(body: bytes, content_type: str | None, *, chunk: int = 65536) -> Request:
    headers = [] if content_type is None else [(b"content-type", content_type.encode())]
    chunks = [body[i : i + chunk] for i in range(0, len(body), chunk)] or [b""]

    async def receive() -> dict:
        piece = chunks.pop(0)
        return {"type": "http.request", "body": piece, "more_body": bool(chunks)}

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers, "query_string": b""}
    return Request(scope, receive)


def _read(body: bytes, content_type: str | None):
    return asyncio.run(form_params(_request(body, content_type)))


def _refusal(body: bytes, content_type: str | None) -> DomainValidationError:
    with pytest.raises(DomainValidationError) as caught:
        _read(body, content_type)
    return caught.value


def test_form_encoded_parameters_are_read_with_repeats_and_plus_as_space():
    params = _read(b"FriendlyName=Sales+desk&Attributes=%7B%22a%22%3A1%7D&X=1&X=2",
                   "application/x-www-form-urlencoded; charset=utf-8")
    assert params.text("FriendlyName") == "Sales desk"
    assert params.text("Attributes") == '{"a":1}'
    assert [v for k, v in params.items if k == "X"] == ["1", "2"]


def test_an_empty_body_is_no_parameters_whatever_its_type():
    assert _read(b"", None).items == []
    assert _read(b"", "application/json").items == []


@pytest.mark.parametrize("content_type", ["application/json", "text/xml", None])
def test_a_body_of_another_type_is_refused_not_ignored(content_type):
    error = _refusal(b'{"Attributes": "{}"}', content_type)
    assert error.param == "Content-Type"
    assert "application/x-www-form-urlencoded" in error.message


@pytest.mark.parametrize("body", [b"Attributes=%7B%22a%22%3A%22%ED%A0%80%22%7D", b"\xff\xfe=1"])
def test_a_body_that_is_not_utf8_is_refused(body):
    assert "UTF-8" in _refusal(body, "application/x-www-form-urlencoded").message


def test_a_body_over_the_limit_is_refused_while_it_streams():
    body = b"Attributes=" + b"a" * MAX_FORM_BYTES
    error = _refusal(body, "application/x-www-form-urlencoded")
    assert error.param == "Content-Length"


def test_multipart_bodies_are_still_read():
    body = (b"--b\r\nContent-Disposition: form-data; name=\"FriendlyName\"\r\n\r\nAlice\r\n--b--\r\n")
    assert _read(body, "multipart/form-data; boundary=b").text("FriendlyName") == "Alice"
