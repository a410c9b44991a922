"""Syntax tree of a parsed expression: what the compiler turns into closures."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# One path segment: a key (`levels`) or a 0-based index (`[2]`).
Segment = str | int

_SEGMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[([0-9]+)\]")


@dataclass(frozen=True, slots=True)
class Constant:
    """A literal: None, bool, int, float, str, or a tuple of those (array)."""

    value: Any


@dataclass(frozen=True, slots=True)
class Path:
    """An attribute reference such as `customer.tags[0]`."""

    text: str
    segments: tuple[Segment, ...]
    position: int


@dataclass(frozen=True, slots=True)
class Comparison:
    """`left <operator> right`; operator is canonical (`==`, `NOT IN`, `HAS` ...)."""

    operator: str
    left: Constant | Path
    right: Constant | Path


@dataclass(frozen=True, slots=True)
class BoolOp:
    """`AND` or `OR` over two or more operands, evaluated left to right."""

    operator: str
    operands: tuple[Node, ...]


Node = Comparison | BoolOp


def split_path(text: str) -> tuple[Segment, ...]:
    """Split a path token into keys and indexes: `a.b[2]` -> ('a', 'b', 2)."""
    return tuple(key if key else int(index) for key, index in _SEGMENT.findall(text))
