"""Operator semantics on JSON values (expressions.md §3-§4).

Every function takes two resolved values and returns a bool; none raises on
JSON input. Values fall into categories:

    NULL < BOOL < NUMBER < STRING  (scalars)   ARRAY, OBJECT, OTHER (not scalars)

- Scalars of different categories are never equal: `'3' == 3`, `true == 1` are
  false and the matching `!=` is true. Ints and floats are one category.
- A scalar operator with an array or object operand is false, `!=` included
  (`skills != 'support'` is false when `skills` is an array).
- NULL (missing or JSON null) is the exception: `x == null` / `x != null` test
  presence for any value, arrays and objects too, because the docs write
  `preferred_agents != null` on an array and expect true.
- Values of any other Python type (datetimes, sets...) never compare.

`predicate_for` builds a one-argument test for "value <op> constant" and picks a
faster form for the common constant shapes; results are the same as the
generic functions.
"""

from __future__ import annotations

import operator as _py
from collections.abc import Callable, Mapping
from typing import Any

NULL, BOOL, NUMBER, STRING, ARRAY, OBJECT, OTHER = range(7)

_CATEGORY_BY_TYPE: dict[type, int] = {
    type(None): NULL,
    bool: BOOL,
    int: NUMBER,
    float: NUMBER,
    str: STRING,
    list: ARRAY,
    tuple: ARRAY,
    dict: OBJECT,
}

Predicate = Callable[[Any], bool]
BinaryOperator = Callable[[Any, Any], bool]


def category(value: Any) -> int:
    """The category of `value`; exact JSON types take the fast path."""
    found = _CATEGORY_BY_TYPE.get(type(value))
    if found is not None:
        return found
    return _category_of_subclass(value)


def _category_of_subclass(value: Any) -> int:
    # bool before int: bool is an int subclass but never a number here.
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, (int, float)):
        return NUMBER
    if isinstance(value, str):
        return STRING
    if isinstance(value, (list, tuple)):
        return ARRAY
    if isinstance(value, Mapping):
        return OBJECT
    return OTHER


def equals(left: Any, right: Any) -> bool:
    """`left == right`."""
    left_kind, right_kind = category(left), category(right)
    if left_kind == NULL or right_kind == NULL:
        return left_kind == right_kind
    if left_kind >= ARRAY or right_kind >= ARRAY:
        return False
    return left_kind == right_kind and left == right


def not_equals(left: Any, right: Any) -> bool:
    """`left != right`: not the negation of `==` for arrays and objects."""
    left_kind, right_kind = category(left), category(right)
    if left_kind == NULL or right_kind == NULL:
        return left_kind != right_kind
    if left_kind >= ARRAY or right_kind >= ARRAY:
        return False
    return left_kind != right_kind or left != right


def _ordering(compare: Callable[[Any, Any], bool]) -> BinaryOperator:
    """`>`-style operator: numbers numerically, strings lexicographically."""

    def ordered(left: Any, right: Any) -> bool:
        kind = category(left)
        return (
            kind in (NUMBER, STRING)
            and kind == category(right)
            and compare(left, right)
        )

    return ordered


def contains(left: Any, right: Any) -> bool:
    """`left CONTAINS right`: case-sensitive substring test on two strings."""
    return category(left) == STRING and category(right) == STRING and right in left


def has(left: Any, right: Any) -> bool:
    """`left HAS right`: an array holding an element equal to a non-null scalar."""
    if category(left) != ARRAY:
        return False
    kind = category(right)
    if kind == STRING:
        # A string equals only strings, so Python's own `in` is exact here.
        return right in left
    if not NULL < kind < ARRAY:
        return False
    return any(equals(element, right) for element in left)


def is_in(left: Any, right: Any) -> bool:
    """`left IN right`: the mirror of HAS."""
    return has(right, left)


def not_in(left: Any, right: Any) -> bool:
    """`left NOT IN right`: right is an array and left (a scalar) is not in it.

    A NULL left side is "not in" any array (unconfirmed, recommended).
    """
    if category(right) != ARRAY or category(left) >= ARRAY:
        return False
    return not has(right, left)


OPERATORS: dict[str, BinaryOperator] = {
    "==": equals,
    "!=": not_equals,
    ">": _ordering(_py.gt),
    ">=": _ordering(_py.ge),
    "<": _ordering(_py.lt),
    "<=": _ordering(_py.le),
    "CONTAINS": contains,
    "HAS": has,
    "IN": is_in,
    "NOT IN": not_in,
}

# `c OP v` rewritten as `v MIRROR[OP] c`, so a constant on the left can use the
# same fast predicates as a constant on the right.
MIRRORED = {
    "==": "==",
    "!=": "!=",
    ">": "<",
    ">=": "<=",
    "<": ">",
    "<=": ">=",
    "HAS": "IN",
    "IN": "HAS",
}


def predicate_for(operator: str, constant: Any) -> Predicate:
    """Test for `value <operator> constant`, specialised for the constant."""
    kind = category(constant)
    fast = _FAST_PREDICATES.get((operator, kind))
    if fast is not None:
        return fast(constant)
    if operator in ("IN", "NOT IN") and kind == ARRAY:
        return _membership_predicate(operator == "NOT IN", constant)
    generic = OPERATORS[operator]
    return lambda value: generic(value, constant)


def flipped_predicate_for(operator: str, constant: Any) -> Predicate:
    """Test for `constant <operator> value`."""
    mirrored = MIRRORED.get(operator)
    if mirrored is not None:
        return predicate_for(mirrored, constant)
    generic = OPERATORS[operator]
    return lambda value: generic(constant, value)


def _is_number(value: Any) -> bool:
    # `type(True) is int` is false, so booleans drop to `category`, which
    # files them under BOOL.
    kind = type(value)
    return kind is int or kind is float or category(value) == NUMBER


def _is_string(value: Any) -> bool:
    return type(value) is str or category(value) == STRING


def _equals_string(constant: str) -> Predicate:
    # Python's str equality is already false for every non-string value.
    return lambda value: value == constant


def _equals_number(constant: float) -> Predicate:
    # `True == 1` in Python, so the type check follows the cheap equality.
    return lambda value: value == constant and _is_number(value)


def _equals_bool(constant: bool) -> Predicate:
    return lambda value: value is constant


def _equals_null(_: None) -> Predicate:
    return lambda value: value is None


def _not_equals_string(constant: str) -> Predicate:
    def test(value: Any) -> bool:
        if type(value) is str:
            return value != constant
        return not_equals(value, constant)

    return test


def _not_equals_null(_: None) -> Predicate:
    return lambda value: value is not None


def _number_ordering(compare: Callable[[Any, Any], bool]) -> Callable[[Any], Predicate]:
    def build(constant: float) -> Predicate:
        return lambda value: _is_number(value) and compare(value, constant)

    return build


def _string_ordering(compare: Callable[[Any, Any], bool]) -> Callable[[Any], Predicate]:
    def build(constant: str) -> Predicate:
        return lambda value: _is_string(value) and compare(value, constant)

    return build


def _has_string(constant: str) -> Predicate:
    # `in` on a list uses ==, and a string equals only strings: no loop needed.
    return lambda value: (
        (type(value) is list or category(value) == ARRAY) and constant in value
    )


def _contains_string(constant: str) -> Predicate:
    return lambda value: _is_string(value) and constant in value


def _membership_predicate(negate: bool, constants: tuple) -> Predicate:
    """`value IN [...]` / `value NOT IN [...]` against a constant array."""
    kinds = {category(item) for item in constants}
    if kinds == {STRING}:
        members = frozenset(constants)

        def test_strings(value: Any) -> bool:
            if type(value) is str:
                return (value in members) != negate
            return not_in(value, constants) if negate else is_in(value, constants)

        return test_strings
    generic = not_in if negate else is_in
    return lambda value: generic(value, constants)


_FAST_PREDICATES: dict[tuple[str, int], Callable[[Any], Predicate]] = {
    ("==", STRING): _equals_string,
    ("==", NUMBER): _equals_number,
    ("==", BOOL): _equals_bool,
    ("==", NULL): _equals_null,
    ("!=", STRING): _not_equals_string,
    ("!=", NULL): _not_equals_null,
    (">", NUMBER): _number_ordering(_py.gt),
    (">=", NUMBER): _number_ordering(_py.ge),
    ("<", NUMBER): _number_ordering(_py.lt),
    ("<=", NUMBER): _number_ordering(_py.le),
    (">", STRING): _string_ordering(_py.gt),
    (">=", STRING): _string_ordering(_py.ge),
    ("<", STRING): _string_ordering(_py.lt),
    ("<=", STRING): _string_ordering(_py.le),
    ("HAS", STRING): _has_string,
    ("CONTAINS", STRING): _contains_string,
}
