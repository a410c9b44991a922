"""Validate response bodies against the OpenAPI contract (Twilio's TaskRouter v1).

    from tests.contract import validate_response
    validate_response("FetchWorkspace", 200, body)
    validate_response(("/v1/Workspaces/{Sid}", "get"), 200, body)

OpenAPI 3.0's `nullable: true` is turned into JSON Schema (`type: [t, "null"]`),
and every property declared on a resource schema is made required, because our
rule is that every declared field is present (null when unknown). Dates are
checked to look like `2014-05-14T10:50:02Z`.
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

CONTRACT = Path("/work/shared/reference/twilio_taskrouter_v1.json")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


@cache
def contract() -> dict[str, Any]:
    return json.loads(CONTRACT.read_text())


def _convert(node: Any, *, resource: bool = False) -> Any:
    """OpenAPI 3.0 schema → JSON Schema (draft 7)."""
    if isinstance(node, list):
        return [_convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _convert(value) for key, value in node.items() if key not in ("nullable", "examples", "example")}
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        elif "$ref" in out:
            out = {"anyOf": [{"$ref": out.pop("$ref")}, {"type": "null"}], **out}
        # An untyped nullable schema already accepts null.
    if resource and node.get("type") == "object" and "properties" in node:
        out["required"] = sorted(node["properties"])
    return out


@cache
def _root() -> dict[str, Any]:
    doc = copy.deepcopy(contract())
    schemas = doc["components"]["schemas"]
    converted = {
        name: _convert(schema, resource=name.startswith("taskrouter."))
        for name, schema in schemas.items()
    }
    return {"components": {"schemas": converted}}


def operation(key: str | tuple[str, str]) -> dict[str, Any]:
    """An operation by its operationId, or by (path, method)."""
    paths = contract()["paths"]
    if isinstance(key, tuple):
        path, method = key
        return paths[path][method.lower()]
    for item in paths.values():
        for method, op in item.items():
            if isinstance(op, dict) and op.get("operationId") == key:
                return op
    raise KeyError(f"no operation {key!r} in the contract")


def response_schema(key: str | tuple[str, str], status: int) -> dict[str, Any]:
    responses = operation(key)["responses"]
    content = responses[str(status)].get("content", {})
    return content["application/json"]["schema"]


def validate_response(key: str | tuple[str, str], status: int, body: Any) -> None:
    """Raise `jsonschema.ValidationError` when `body` breaks the contract."""
    schema = {**_convert(response_schema(key, status)), **_root()}
    jsonschema.Draft7Validator(schema).validate(body)
    _check_dates(body)


def _check_dates(node: Any, key: str = "") -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            # An event's payload is free-form in the contract and carries Twilio's
            # epoch-millisecond strings (`task_date_created`), not wire dates.
            if k != "event_data":
                _check_dates(v, k)
    elif isinstance(node, list):
        for item in node:
            _check_dates(item, key)
    elif isinstance(node, str) and (key.startswith("date_") or key.endswith(("_date", "_time"))):
        if key != "virtual_start_time" or node:
            assert _DATE.match(node), f"{key}={node!r} is not formatted %Y-%m-%dT%H:%M:%SZ"
