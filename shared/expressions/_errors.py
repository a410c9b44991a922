"""`ExpressionError` and the translation of lark's parse errors into our words.

Lark's own messages list internal terminal names (`_AND`, `LSQB`); users of the
REST API should read what went wrong and where, e.g.
`Invalid expression 'skill-level > 3': unexpected '-' at position 5`.
"""

from __future__ import annotations

from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

# Long expressions are cut in messages so an error stays one readable line.
_MAX_QUOTED = 100

# What a user would call each terminal when it is "expected".
_OPERAND = "a value or attribute name"
_DESCRIPTIONS = {
    "PATH": _OPERAND,
    "STRING": _OPERAND,
    "NUMBER": _OPERAND,
    "TRUE": _OPERAND,
    "FALSE": _OPERAND,
    "NULL": _OPERAND,
    "LSQB": _OPERAND,
    "COMPARATOR": "an operator",
    "HAS": "an operator",
    "IN": "an operator",
    "NOT": "an operator",
    "CONTAINS": "an operator",
    "_AND": "AND",
    "_OR": "OR",
    "LPAR": "'('",
    "RPAR": "')'",
    "RSQB": "']'",
    "COMMA": "','",
    "DIRECTION": "ASC or DESC",
    "$END": "end of input",
}


class ExpressionError(ValueError):
    """An expression (or `order_by`) that cannot be compiled.

    `position` is a 0-based character offset into the text when the problem has
    a place; `line` and `column` are 1-based, as editors count them.
    """

    def __init__(
        self,
        message: str,
        *,
        position: int | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        self.line = line
        self.column = column


def quote_text(text: str) -> str:
    """Quote `text` for a message, shortened when very long."""
    if len(text) > _MAX_QUOTED:
        text = text[: _MAX_QUOTED - 3] + "..."
    return f"'{text}'"


def error_at(label: str, text: str, detail: str, position: int) -> ExpressionError:
    """Build an error for `detail` at a 0-based `position` of `text`."""
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    message = f"Invalid {label} {quote_text(text)}: {detail}"
    return ExpressionError(message, position=position, line=line, column=column)


def error_from_lark(label: str, text: str, exc: UnexpectedInput) -> ExpressionError:
    """Translate a lark parse error into an `ExpressionError` for `text`."""
    if isinstance(exc, UnexpectedCharacters):
        return _unexpected_character(label, text, exc.pos_in_stream)
    if isinstance(exc, UnexpectedToken):
        # `accepts` is exact; `expected` is LALR's merged look-ahead set.
        return _unexpected_token(label, text, exc.token, exc.accepts or exc.expected)
    # UnexpectedEOF and anything newer: report the end of the text.
    return error_at(label, text, "unexpected end of input", len(text))


def _unexpected_character(label: str, text: str, position: int) -> ExpressionError:
    char = text[position]
    if char in "'\"":
        # The string lexer failed to find the closing quote.
        detail = f"unterminated string starting at position {position}"
    else:
        detail = f"unexpected {char!r} at position {position}"
    return error_at(label, text, detail, position)


def _unexpected_token(
    label: str, text: str, token: Token, expected: set[str]
) -> ExpressionError:
    if token.type == "$END":
        position = len(text)
        detail = f"unexpected end of input at position {position}"
    else:
        position = token.start_pos or 0
        detail = f"unexpected {token.value!r} at position {position}"
    wanted = _describe_expected(expected)
    if wanted:
        detail += f", expected {wanted}"
    if token.type == "NOT" and "PATH" in expected:
        # Only `NOT IN` exists; say so instead of leaving users to guess.
        detail += " (unary NOT is not supported; use != or NOT IN)"
    return error_at(label, text, detail, position)


def _describe_expected(expected: set[str]) -> str:
    names = {_DESCRIPTIONS.get(name, name) for name in expected}
    if _OPERAND in names and "PATH" not in expected:
        # Inside an array literal: attribute names are not allowed there.
        names = (names - {_OPERAND}) | {"a constant"}
    names = sorted(names)
    if not names:
        return ""
    if len(names) == 1:
        return names[0]
    return "one of " + ", ".join(names)
