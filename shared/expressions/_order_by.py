"""`order_by` of a workflow target: `worker.<path> ASC|DESC [, ...]`.

Specification: expressions.md §7.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._compiler import resolver_for
from ._errors import ExpressionError, error_at
from ._operators import NUMBER, category
from ._parser import parse_order_by_clauses

_PREFIX = "worker."


@dataclass(frozen=True)
class OrderBy:
    """A parsed `order_by`; `clauses` hold (path without 'worker.', descending)."""

    text: str
    clauses: tuple[tuple[str, bool], ...]
    _resolvers: tuple[tuple[Callable[[Any], Any], bool], ...] = field(
        repr=False, compare=False
    )

    def sort_key(self, worker_attributes: Mapping[str, Any]) -> tuple:
        """Key for `sorted()`: best worker first; never raises.

        Workers lacking a number at a clause's path sort after those that have
        one, in either direction. Append your own tie-breaker (longest idle
        first) when sorting:
        `key=lambda w: (order.sort_key(w.attributes), w.idle_since)`.
        """
        key: list[Any] = []
        for resolve, descending in self._resolvers:
            value = _number_or_none(resolve, worker_attributes)
            if value is None:
                key += (1, 0)
            else:
                key += (0, -value if descending else value)
        return tuple(key)


def parse_order_by(text: str) -> OrderBy:
    """Parse an `order_by` value; raises `ExpressionError` naming the position."""
    if not isinstance(text, str):
        raise ExpressionError(f"Invalid order_by {text!r}: it must be a string")
    return _parse_order_by_cached(text)


@functools.lru_cache(maxsize=1024)
def _parse_order_by_cached(text: str) -> OrderBy:
    clauses = []
    resolvers = []
    for path, descending in parse_order_by_clauses(text):
        if not path.text.startswith(_PREFIX):
            detail = (
                f"{path.text!r} at position {path.position} must start with 'worker.'"
            )
            raise error_at("order_by", text, detail, path.position)
        # The document handed to sort_key is the worker's attributes: drop 'worker'.
        clauses.append((path.text[len(_PREFIX) :], descending))
        resolvers.append((resolver_for(path.segments[1:]), descending))
    return OrderBy(text, tuple(clauses), tuple(resolvers))


def _number_or_none(resolve: Callable[[Any], Any], document: Mapping[str, Any]) -> Any:
    """The clause's value when it is a usable number (not bool, not NaN)."""
    try:
        value = resolve(document)
    except Exception:
        return None
    if category(value) != NUMBER or value != value:
        return None
    return value
