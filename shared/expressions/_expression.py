"""Compiled expressions: the objects the rest of the system evaluates."""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ._ast import Segment
from ._compiler import (
    TIME_IDENTIFIERS,
    Evaluator,
    clock_values,
    compile_node,
    iter_paths,
    resolver_for,
)
from ._errors import ExpressionError
from ._parser import parse_expression, parse_path


class ExpressionKind(enum.Enum):
    """Where an expression is used, which decides what its identifiers mean."""

    WORKER = "worker"  # TaskQueue TargetWorkers: bare keys over worker attributes
    TASK = "task"  # workflow filter, GET /Tasks?EvaluateTaskAttributes=
    TARGET = "target"  # workflow target: `task.` / `worker.` prefixed keys
    SKIP_IF = "skip_if"  # workflow target skip_if: `workers.*` counters
    WORKER_LIST = "worker_list"  # GET /Workers?TargetWorkersExpression=


# Target expressions see {"task": ..., "worker": ...}; any other first segment
# is NULL rather than a lookup, so `language == 'en'` there never matches.
_ROOTS: dict[ExpressionKind, frozenset[str]] = {
    ExpressionKind.TARGET: frozenset({"task", "worker"}),
}


class CompiledExpression:
    """A parsed and compiled expression, safe to share between threads."""

    __slots__ = ("text", "kind", "_evaluator", "_uses_clock", "_references")

    def __init__(
        self,
        text: str,
        kind: ExpressionKind,
        evaluator: Evaluator,
        references: frozenset[str],
    ) -> None:
        self.text = text
        self.kind = kind
        self._evaluator = evaluator
        self._references = references
        self._uses_clock = not references.isdisjoint(TIME_IDENTIFIERS)

    def evaluate(
        self, document: Mapping[str, Any], *, now: datetime | None = None
    ) -> bool:
        """True when the expression holds for `document`; never raises.

        `now` feeds the `taskrouter.*` time identifiers (default: current UTC
        time). Any runtime problem, such as a document that is not a mapping,
        counts as false.
        """
        try:
            clock = clock_values(now) if self._uses_clock else None
            return self._evaluator(document, clock) is True
        except Exception:
            return False

    def references(self) -> frozenset[str]:
        """Identifier paths used, as written: {"skills", "routing.levels.billing"}."""
        return self._references

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompiledExpression):
            return NotImplemented
        return self.text == other.text and self.kind is other.kind

    def __hash__(self) -> int:
        return hash((self.text, self.kind))

    def __repr__(self) -> str:
        return f"CompiledExpression({self.text!r}, {self.kind})"


def compile_expression(text: str, kind: ExpressionKind) -> CompiledExpression:
    """Parse and compile `text` for use as `kind`; raises `ExpressionError`.

    Results are cached on (text, kind), so compiling the same queue expression
    for every message costs a dictionary lookup. An empty WORKER expression is
    valid and matches nobody (an empty TargetWorkers makes no worker eligible).
    """
    if not isinstance(text, str):
        raise ExpressionError(f"Invalid expression {text!r}: it must be a string")
    if not isinstance(kind, ExpressionKind):
        raise TypeError(f"kind must be an ExpressionKind, got {kind!r}")
    return _compile_cached(text, kind)


@functools.lru_cache(maxsize=4096)
def _compile_cached(text: str, kind: ExpressionKind) -> CompiledExpression:
    if kind is ExpressionKind.WORKER and not text.strip():
        return CompiledExpression(text, kind, _matches_nobody, frozenset())
    node = parse_expression(text)
    references = frozenset(path.text for path in iter_paths(node))
    evaluator = compile_node(node, _ROOTS.get(kind))
    return CompiledExpression(text, kind, evaluator, references)


def _matches_nobody(document: Mapping[str, Any], clock: object) -> bool:
    return False


@dataclass(frozen=True)
class AttributePath:
    """A single attribute path, e.g. the `task.agent_sid` of known-agent routing."""

    text: str
    segments: tuple[Segment, ...]
    _resolve: Callable[[Any], Any] = field(repr=False, compare=False)

    def resolve(self, document: Mapping[str, Any]) -> Any:
        """The value at this path in `document`; None when missing. Never raises."""
        try:
            return self._resolve(document)
        except Exception:
            return None


def compile_path(text: str) -> AttributePath:
    """Parse a lone identifier path (`a.b[0].c`); raises `ExpressionError`."""
    if not isinstance(text, str):
        raise ExpressionError(f"Invalid path {text!r}: it must be a string")
    return _compile_path_cached(text)


@functools.lru_cache(maxsize=1024)
def _compile_path_cached(text: str) -> AttributePath:
    path = parse_path(text)
    return AttributePath(path.text, path.segments, resolver_for(path.segments))
