"""Syntax tree to a tree of closures.

Every compiled node is a function `(document, clock) -> bool`. `clock` is the
tuple made by `clock_values` when the expression reads `taskrouter.*` time
identifiers, else None. Work that does not depend on the document (splitting
paths, choosing the operator, folding constant comparisons such as `1==1`) is
done here once, so an evaluation only looks values up and compares them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

from ._ast import BoolOp, Comparison, Constant, Node, Path, Segment
from ._operators import OPERATORS, flipped_predicate_for, predicate_for

Clock = tuple[int, int, int, str] | None
Evaluator = Callable[[Mapping[str, Any], Clock], bool]
Getter = Callable[[Mapping[str, Any], Clock], Any]

# Index of each time identifier in the clock tuple.
TIME_IDENTIFIERS = {
    "taskrouter.currentTime": 0,
    "taskrouter.currentHour": 1,
    "taskrouter.currentMin": 2,
    "taskrouter.dayOfWeek": 3,
}
_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


# The last (now, values) pair: a routing scan passes the same `now` for every
# worker, so the conversion runs once per scan. One tuple is read and written
# at a time, which keeps it safe across threads.
_last_clock: tuple[datetime | None, tuple[int, int, int, str] | None] = (None, None)


def clock_values(now: datetime | None) -> tuple[int, int, int, str]:
    """(HHMM, HH, MM, 'Mon'..'Sun') in UTC; a naive `now` is taken as UTC."""
    global _last_clock
    if now is None:
        return _clock_values(datetime.now(timezone.utc))
    last_now, last_values = _last_clock
    if last_now is now and last_values is not None:
        return last_values
    values = _clock_values(now)
    _last_clock = (now, values)
    return values


def _clock_values(now: datetime) -> tuple[int, int, int, str]:
    if now.tzinfo is not None:
        now = now.astimezone(timezone.utc)
    return (
        now.hour * 100 + now.minute,
        now.hour,
        now.minute,
        _DAY_NAMES[now.weekday()],
    )


def compile_node(node: Node, roots: frozenset[str] | None) -> Evaluator:
    """Compile `node`; `roots`, when given, are the only first path segments
    that resolve (others are NULL), as in target expressions."""
    if isinstance(node, BoolOp):
        return _compile_bool_op(node, roots)
    return _compile_comparison(node, roots)


def iter_paths(node: Node) -> Iterator[Path]:
    """Every path referenced in `node`, left to right."""
    if isinstance(node, BoolOp):
        for operand in node.operands:
            yield from iter_paths(operand)
        return
    for side in (node.left, node.right):
        if isinstance(side, Path):
            yield side


def resolver_for(segments: tuple[Segment, ...]) -> Callable[[Any], Any]:
    """A function reading `segments` from a document; missing parts give None."""
    first, rest = segments[0], segments[1:]
    if not isinstance(first, str):
        return lambda document: _resolve(document, segments)
    if not rest:
        return lambda document: document.get(first)
    if len(rest) == 1 and isinstance(rest[0], str):
        # `task.language`, `routing.levels`: the most common nested shape.
        second = rest[0]

        def two_keys(document: Any) -> Any:
            value = document.get(first)
            if type(value) is dict:
                return value.get(second)
            return _resolve(value, rest)

        return two_keys

    def nested(document: Any) -> Any:
        return _resolve(document.get(first), rest)

    return nested


def _resolve(value: Any, segments: tuple[Segment, ...]) -> Any:
    for segment in segments:
        if type(segment) is str:
            if type(value) is not dict and not isinstance(value, Mapping):
                return None
            value = value.get(segment)
        elif isinstance(value, (list, tuple)) and segment < len(value):
            value = value[segment]
        else:
            # An index on a non-array, or past the end: NULL, not an error.
            return None
    return value


def _always_true(document: Mapping[str, Any], clock: Clock) -> bool:
    return True


def _always_false(document: Mapping[str, Any], clock: Clock) -> bool:
    return False


def _compile_bool_op(node: BoolOp, roots: frozenset[str] | None) -> Evaluator:
    parts = tuple(compile_node(operand, roots) for operand in node.operands)
    if node.operator == "AND":
        return _all_of(parts)
    return _any_of(parts)


def _all_of(parts: tuple[Evaluator, ...]) -> Evaluator:
    if len(parts) == 2:
        first, second = parts
        return lambda document, clock: (
            first(document, clock) and second(document, clock)
        )

    def all_true(document: Mapping[str, Any], clock: Clock) -> bool:
        # A plain loop: all() over a generator costs a frame per evaluation.
        for part in parts:  # noqa: SIM110
            if not part(document, clock):
                return False
        return True

    return all_true


def _any_of(parts: tuple[Evaluator, ...]) -> Evaluator:
    if len(parts) == 2:
        first, second = parts
        return lambda document, clock: first(document, clock) or second(document, clock)

    def any_true(document: Mapping[str, Any], clock: Clock) -> bool:
        for part in parts:  # noqa: SIM110
            if part(document, clock):
                return True
        return False

    return any_true


def _compile_comparison(node: Comparison, roots: frozenset[str] | None) -> Evaluator:
    left = _bind_operand(node.left, roots)
    right = _bind_operand(node.right, roots)
    operator = node.operator

    if isinstance(left, Constant) and isinstance(right, Constant):
        # `1==1` and friends: decide once.
        return (
            _always_true
            if OPERATORS[operator](left.value, right.value)
            else _always_false
        )
    if isinstance(right, Constant):
        return _test_path(left, predicate_for(operator, right.value))
    if isinstance(left, Constant):
        return _test_path(right, flipped_predicate_for(operator, left.value))

    compare = OPERATORS[operator]
    get_left, get_right = _getter(left), _getter(right)
    return lambda document, clock: compare(
        get_left(document, clock), get_right(document, clock)
    )


def _bind_operand(
    operand: Constant | Path, roots: frozenset[str] | None
) -> Constant | Path:
    """Replace a path that can never resolve by the NULL constant."""
    if isinstance(operand, Constant) or operand.text in TIME_IDENTIFIERS:
        return operand
    if roots is not None and operand.segments[0] not in roots:
        return Constant(None)
    return operand


def _test_path(path: Path, test: Callable[[Any], bool]) -> Evaluator:
    segments = path.segments
    if len(segments) == 1 and path.text not in TIME_IDENTIFIERS:
        # The common case `level > 3`: one dict lookup, no helper call.
        key = segments[0]
        return lambda document, clock: test(document.get(key))
    index = TIME_IDENTIFIERS.get(path.text)
    if index is not None:
        return lambda document, clock: test(clock[index])
    resolve = resolver_for(segments)
    return lambda document, clock: test(resolve(document))


def _getter(path: Path) -> Getter:
    index = TIME_IDENTIFIERS.get(path.text)
    if index is not None:
        return lambda document, clock: clock[index]
    resolve = resolver_for(path.segments)
    return lambda document, clock: resolve(document)
