"""Workflow Configuration documents (workflows.md §2): parse and validate, no I/O.

    config = parse_workflow_configuration(workflow.configuration)
    config.filters[0].targets[0].queue_sid      # 'WQ...'
    config.queue_sids()                         # for the "queues exist" check

Errors:

    ValueError
    └── WorkflowConfigurationError   .message names the JSON path of the problem,
                                     e.g. "task_routing.filters[1].targets[0].timeout
                                     must be a positive integer, got -5"; .path holds it

An invalid expression inside the document is reported as a
`WorkflowConfigurationError` whose message is the path followed by the
`ExpressionError` message (the original is chained as `__cause__`).

Decisions on points the specification leaves open (unconfirmed there):

- The size limit is 1,048,576 bytes of UTF-8 (workflows.md writes 1,038,576,
  read here as a typo for 1 MiB).
- Unknown keys are ignored. A JSON null counts as an absent key; an empty
  string counts as absent for the optional target `expression`, `order_by` and
  `skip_if` (the filter `expression` stays required and must parse).
- `priority` and `timeout` accept JSON integers, integral floats (`10.0`) and
  strings of digits (`"10"`); both are capped at 2,147,483,647.
- `default_filter` takes the same keys as a target except `timeout`, which is
  rejected. Its `queue` is required.
- `queue` is required on the first target of each filter; later targets of the
  same filter inherit the previous target's queue, never across filters.
- `known_worker_sid` / `known_worker_friendly_name` must be a task attribute
  path starting with `task.` (e.g. `task.agent_sid`); at most one per target.
- Whether the queues exist in the workspace is the caller's check
  (`queue_sids()` lists them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.expressions import (
    CompiledExpression,
    ExpressionError,
    ExpressionKind,
    OrderBy,
    compile_expression,
    compile_path,
    parse_order_by,
)

MAX_CONFIGURATION_BYTES = 1_048_576
MAX_INTEGER = 2_147_483_647

_QUEUE_SID = re.compile(r"WQ[0-9a-fA-F]{32}")
_DIGITS = re.compile(r"[0-9]+")


class WorkflowConfigurationError(ValueError):
    """A workflow Configuration that cannot be accepted; `.path` locates it."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


@dataclass(frozen=True)
class RoutingTarget:
    """One routing step; `queue_sid` is already resolved (inherited if omitted)."""

    queue_sid: str
    priority: int | None = None
    timeout: int | None = None
    expression: CompiledExpression | None = None
    order_by: OrderBy | None = None
    skip_if: CompiledExpression | None = None
    known_worker_sid_path: str | None = None
    known_worker_friendly_name_path: str | None = None

    def known_worker_value(self, task_attributes: Mapping[str, Any]) -> Any:
        """The SID or friendly name named by the known-worker path, else None.

        Which of the two it is follows from which path is set.
        """
        path = self.known_worker_sid_path or self.known_worker_friendly_name_path
        if path is None:
            return None
        return compile_path(path).resolve({"task": task_attributes})


@dataclass(frozen=True)
class WorkflowFilter:
    """A filter: an expression over task attributes and its ordered steps."""

    friendly_name: str | None
    expression: CompiledExpression
    targets: tuple[RoutingTarget, ...]


@dataclass(frozen=True)
class WorkflowConfiguration:
    """A parsed workflow Configuration."""

    filters: tuple[WorkflowFilter, ...]
    default_filter: RoutingTarget | None

    def queue_sids(self) -> set[str]:
        """Every TaskQueue SID the configuration can route to."""
        sids = {target.queue_sid for flt in self.filters for target in flt.targets}
        if self.default_filter is not None:
            sids.add(self.default_filter.queue_sid)
        return sids


def parse_workflow_configuration(text: str) -> WorkflowConfiguration:
    """Parse and validate a Configuration JSON string.

    Raises `WorkflowConfigurationError` for the first problem found.
    """
    document = _load_document(text)
    routing = document.get("task_routing")
    if not isinstance(routing, Mapping):
        problem = "is required" if routing is None else "must be an object"
        raise WorkflowConfigurationError(f"task_routing {problem}", path="task_routing")

    filters = _parse_filters(routing.get("filters"), "task_routing.filters")
    default_filter = None
    if routing.get("default_filter") is not None:
        default_filter = _parse_target(
            routing["default_filter"],
            "task_routing.default_filter",
            inherited_queue=None,
            is_default=True,
        )
    return WorkflowConfiguration(filters, default_filter)


def _load_document(text: str) -> Mapping[str, Any]:
    if not isinstance(text, str):
        kind = type(text).__name__
        raise WorkflowConfigurationError(
            f"Configuration must be a JSON string, got {kind}"
        )
    if len(text.encode("utf-8", "surrogatepass")) > MAX_CONFIGURATION_BYTES:
        raise WorkflowConfigurationError(
            f"Configuration is larger than {MAX_CONFIGURATION_BYTES} bytes"
        )
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise WorkflowConfigurationError(
            f"Configuration is not valid JSON: {exc.msg} at {where}"
        ) from None
    if not isinstance(document, dict):
        raise WorkflowConfigurationError("Configuration must be a JSON object")
    return document


def _parse_filters(raw: Any, path: str) -> tuple[WorkflowFilter, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise WorkflowConfigurationError(f"{path} must be an array", path=path)
    return tuple(_parse_filter(item, f"{path}[{i}]") for i, item in enumerate(raw))


def _parse_filter(raw: Any, path: str) -> WorkflowFilter:
    if not isinstance(raw, Mapping):
        raise WorkflowConfigurationError(f"{path} must be an object", path=path)

    expression = _filter_expression(raw, path)
    # Older SDKs wrote the label as `friendly_name`; the documented key wins.
    name_key = "filter_friendly_name"
    if raw.get(name_key) is None:
        name_key = "friendly_name"
    name = _optional_string(raw, name_key, path)
    return WorkflowFilter(name, expression, _parse_targets(raw.get("targets"), path))


def _parse_targets(raw: Any, filter_path: str) -> tuple[RoutingTarget, ...]:
    path = f"{filter_path}.targets"
    if not isinstance(raw, list) or not raw:
        raise WorkflowConfigurationError(f"{path} must be a non-empty array", path=path)

    targets = []
    queue_sid = None
    for index, raw_target in enumerate(raw):
        # Only the queue carries over from one step to the next.
        target = _parse_target(
            raw_target, f"{path}[{index}]", queue_sid, is_default=False
        )
        targets.append(target)
        queue_sid = target.queue_sid
    return tuple(targets)


def _parse_target(
    raw: Any, path: str, inherited_queue: str | None, *, is_default: bool
) -> RoutingTarget:
    if not isinstance(raw, Mapping):
        raise WorkflowConfigurationError(f"{path} must be an object", path=path)
    if is_default and raw.get("timeout") is not None:
        raise WorkflowConfigurationError(
            f"{path}.timeout is not allowed: the default filter has no timeout",
            path=f"{path}.timeout",
        )

    sid_path, name_path = _known_worker_paths(raw, path)
    return RoutingTarget(
        queue_sid=_queue_sid(raw, path, inherited_queue),
        priority=_integer(raw, "priority", path, minimum=0),
        timeout=_integer(raw, "timeout", path, minimum=1),
        expression=_optional_expression(raw, "expression", path, ExpressionKind.TARGET),
        order_by=_order_by(raw, path),
        skip_if=_optional_expression(raw, "skip_if", path, ExpressionKind.SKIP_IF),
        known_worker_sid_path=sid_path,
        known_worker_friendly_name_path=name_path,
    )


def _queue_sid(raw: Mapping[str, Any], path: str, inherited: str | None) -> str:
    key_path = f"{path}.queue"
    value = raw.get("queue")
    if value is None:
        if inherited is None:
            raise WorkflowConfigurationError(f"{key_path} is required", path=key_path)
        return inherited
    if not isinstance(value, str) or not _QUEUE_SID.fullmatch(value):
        raise WorkflowConfigurationError(
            f"{key_path} must be a TaskQueue SID (WQ and 32 hex digits), got {value!r}",
            path=key_path,
        )
    return value


def _integer(
    raw: Mapping[str, Any], key: str, path: str, *, minimum: int
) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    number = _as_integer(value)
    if number is None or not minimum <= number <= MAX_INTEGER:
        wanted = "a positive integer" if minimum > 0 else "a non-negative integer"
        key_path = f"{path}.{key}"
        raise WorkflowConfigurationError(
            f"{key_path} must be {wanted}, got {value!r}", path=key_path
        )
    return number


def _as_integer(value: Any) -> int | None:
    """An int from a JSON integer, an integral float or a string of digits."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        return int(value.strip())
    return None


def _optional_string(raw: Mapping[str, Any], key: str, path: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        key_path = f"{path}.{key}"
        raise WorkflowConfigurationError(
            f"{key_path} must be a string, got {value!r}", path=key_path
        )
    return value


def _filter_expression(raw: Mapping[str, Any], path: str) -> CompiledExpression:
    key_path = f"{path}.expression"
    text = _optional_string(raw, "expression", path)
    if text is None:
        raise WorkflowConfigurationError(f"{key_path} is required", path=key_path)
    try:
        return compile_expression(text, ExpressionKind.TASK)
    except ExpressionError as exc:
        raise _wrap(exc, key_path) from exc


def _optional_expression(
    raw: Mapping[str, Any], key: str, path: str, kind: ExpressionKind
) -> CompiledExpression | None:
    text = _optional_string(raw, key, path)
    if text is None or not text.strip():
        return None
    try:
        return compile_expression(text, kind)
    except ExpressionError as exc:
        raise _wrap(exc, f"{path}.{key}") from exc


def _order_by(raw: Mapping[str, Any], path: str) -> OrderBy | None:
    text = _optional_string(raw, "order_by", path)
    if text is None or not text.strip():
        return None
    try:
        return parse_order_by(text)
    except ExpressionError as exc:
        raise _wrap(exc, f"{path}.order_by") from exc


def _wrap(exc: ExpressionError, key_path: str) -> WorkflowConfigurationError:
    return WorkflowConfigurationError(f"{key_path}: {exc.message}", path=key_path)


def _known_worker_paths(
    raw: Mapping[str, Any], path: str
) -> tuple[str | None, str | None]:
    sid_path = _task_path(raw, "known_worker_sid", path)
    name_path = _task_path(raw, "known_worker_friendly_name", path)
    if sid_path is not None and name_path is not None:
        raise WorkflowConfigurationError(
            f"{path} may set only one of known_worker_sid and "
            "known_worker_friendly_name",
            path=path,
        )
    return sid_path, name_path


def _task_path(raw: Mapping[str, Any], key: str, path: str) -> str | None:
    text = _optional_string(raw, key, path)
    if text is None:
        return None
    key_path = f"{path}.{key}"
    try:
        parsed = compile_path(text)
    except ExpressionError as exc:
        raise _wrap(exc, key_path) from exc
    if parsed.segments[0] != "task" or len(parsed.segments) < 2:
        raise WorkflowConfigurationError(
            f"{key_path} must be a task attribute path like 'task.agent_sid', "
            f"got {text!r}",
            path=key_path,
        )
    return parsed.text
