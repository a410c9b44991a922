"""The official `twilio` client, recording and checking every call it makes.

`RecordingHttpClient` is the client's HTTP layer: each request is matched to
its operation in the contract, and each answer is checked before the client
sees it — a 2xx body against the operation's response schema, an error body
against Twilio's error shape. `Calls` keeps what was sent per operation, so a
test can prove it exercised every documented parameter:

    recorder = RecordingHttpClient()
    client = Client(account_sid, token, http_client=recorder)
    ...
    recorder.calls.assert_parameters_covered("ListTask")
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response

from tests.contract import contract, validate_response

ERROR_KEYS = {"code", "message", "more_info", "status"}


@dataclass(frozen=True)
class Route:
    operation_id: str
    method: str
    template: str
    pattern: re.Pattern[str]
    literals: int


@cache
def routes() -> tuple[Route, ...]:
    """Every operation of the contract; paths with more literal segments first,
    so `/TaskQueues/Statistics` is never taken for `/TaskQueues/{Sid}`."""
    found = []
    for template, item in contract()["paths"].items():
        regex = re.sub(r"\{[^/]+\}", "[^/]+", template)
        literals = sum(1 for part in template.split("/") if part and "{" not in part)
        for method, op in item.items():
            if isinstance(op, dict) and "operationId" in op:
                found.append(
                    Route(
                        op["operationId"],
                        method.upper(),
                        template,
                        re.compile(f"^{regex}$"),
                        literals,
                    )
                )
    return tuple(sorted(found, key=lambda r: -r.literals))


def operation_ids() -> set[str]:
    return {route.operation_id for route in routes()}


def route_of(method: str, path: str) -> Route:
    for route in routes():
        if route.method == method.upper() and route.pattern.match(path):
            return route
    raise AssertionError(f"{method} {path} is no operation of the contract")


@cache
def documented_parameters(operation_id: str) -> frozenset[str]:
    """Query, header and form-body parameters of an operation (not path ones)."""
    route = next(r for r in routes() if r.operation_id == operation_id)
    op = contract()["paths"][route.template][route.method.lower()]
    names = {p["name"] for p in op.get("parameters", []) if p["in"] != "path"}
    for content in op.get("requestBody", {}).get("content", {}).values():
        names |= set(content.get("schema", {}).get("properties", {}))
    return frozenset(names)


def check_error_body(body: Any, status: int) -> None:
    """Twilio's error shape, which the client parses."""
    assert isinstance(body, dict) and ERROR_KEYS <= set(body), body
    assert body["status"] == status, body
    assert isinstance(body["code"], int) and isinstance(body["message"], str), body
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{body['code']}", (
        body
    )


@dataclass
class Call:
    operation_id: str
    method: str
    url: str
    parameters: frozenset[str]
    status: int
    body: Any
    headers: dict[str, str]  # lower-case names


@dataclass
class Calls:
    """Every call made so far, per operation."""

    by_operation: dict[str, list[Call]] = field(
        default_factory=lambda: defaultdict(list)
    )
    latest: Call | None = None

    def add(self, call: Call) -> None:
        self.by_operation[call.operation_id].append(call)
        self.latest = call

    def last(self, operation_id: str) -> Call:
        return self.by_operation[operation_id][-1]

    def sent_parameters(self, operation_id: str) -> set[str]:
        return {p for call in self.by_operation[operation_id] for p in call.parameters}

    def assert_parameters_covered(self, operation_id: str) -> None:
        """Every documented parameter was sent, and some call was answered 2xx."""
        calls = self.by_operation[operation_id]
        assert any(200 <= c.status < 300 for c in calls), (
            f"{operation_id} never succeeded"
        )
        missing = documented_parameters(operation_id) - self.sent_parameters(
            operation_id
        )
        assert not missing, f"{operation_id}: parameters never sent: {sorted(missing)}"


class RecordingHttpClient(TwilioHttpClient):
    """The twilio client's HTTP layer, checking every answer against the contract."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = Calls()

    def request(  # type: ignore[override]
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        response = super().request(
            method, url, params, data, headers, auth, timeout, allow_redirects
        )
        split = urlsplit(url)
        route = route_of(method, split.path)
        sent = {k for k, _ in parse_qsl(split.query)} | set(params or {})
        if (
            isinstance(data, dict)
            and headers
            and headers.get("Content-Type") != "application/json"
        ):
            sent |= set(data)
        sent |= {h for h in (headers or {}) if h == "If-Match"}
        body = json.loads(response.text) if response.text else None
        self.calls.add(
            Call(
                route.operation_id,
                method.upper(),
                url,
                frozenset(sent),
                response.status_code,
                body,
                {k.lower(): v for k, v in (response.headers or {}).items()},
            )
        )
        check_answer(route.operation_id, response.status_code, body)
        return response


def check_answer(operation_id: str, status: int, body: Any) -> None:
    """A 2xx body by the operation's schema (204 empty), anything else as an error."""
    if status == 204:
        assert body is None, body
    elif 200 <= status < 300:
        validate_response(operation_id, status, body)
    else:
        check_error_body(body, status)
