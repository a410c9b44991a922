"""Text to syntax tree: the lark parsers (built once, at import) and input limits."""

from __future__ import annotations

import re
from pathlib import Path as FilePath

from lark import Lark, Token, Transformer, Tree
from lark.exceptions import UnexpectedInput

from ._ast import BoolOp, Comparison, Constant, Node, Path, split_path
from ._errors import ExpressionError, error_at, error_from_lark, quote_text

MAX_LENGTH = 4096
MAX_DEPTH = 64

_GRAMMAR = (FilePath(__file__).parent / "grammar.lark").read_text(encoding="utf-8")

# Two parsers from one grammar: lark keeps only the terminals each start rule
# reaches, so ASC/DESC are reserved in `order_by` but remain attribute names in
# expressions.
_EXPRESSION_PARSER = Lark(_GRAMMAR, parser="lalr", lexer="basic", start="expression")
_ORDER_BY_PARSER = Lark(_GRAMMAR, parser="lalr", lexer="basic", start="order_by")

# `\'`, `\"` and `\\` are escapes; any other backslash is kept as written, so
# `'C:\temp'` means what it looks like (escape set unconfirmed).
_ESCAPE = re.compile(r"\\(['\"\\])")


class _ToAst(Transformer):
    """Turns lark's tree into `_ast` nodes; one method per grammar rule."""

    def or_expr(self, children: list[Node]) -> BoolOp:
        return BoolOp("OR", tuple(children))

    def and_expr(self, children: list[Node]) -> BoolOp:
        return BoolOp("AND", tuple(children))

    def comparison(self, children: list) -> Comparison:
        left, operator, right = children
        return Comparison(operator, left, right)

    def operator(self, tokens: list[Token]) -> str:
        words = [token.value.upper() for token in tokens]
        # `NOT IN` arrives as two tokens; a lone `=` means `==`.
        text = " ".join(words)
        return "==" if text == "=" else text

    def path(self, tokens: list[Token]) -> Path:
        (token,) = tokens
        return Path(token.value, split_path(token.value), token.start_pos or 0)

    def string(self, tokens: list[Token]) -> Constant:
        return Constant(_ESCAPE.sub(r"\1", tokens[0].value[1:-1]))

    def number(self, tokens: list[Token]) -> Constant:
        text = tokens[0].value
        return Constant(float(text) if "." in text else int(text))

    def true(self, _: list[Token]) -> Constant:
        return Constant(True)

    def false(self, _: list[Token]) -> Constant:
        return Constant(False)

    def null(self, _: list[Token]) -> Constant:
        return Constant(None)

    def array(self, items: list[Constant]) -> Constant:
        return Constant(tuple(item.value for item in items))


_TO_AST = _ToAst()


def parse_expression(text: str) -> Node:
    """Parse an expression into a syntax tree, or raise `ExpressionError`."""
    _check_limits("expression", text)
    try:
        tree = _EXPRESSION_PARSER.parse(text)
    except UnexpectedInput as exc:
        raise error_from_lark("expression", text, exc) from None
    return _TO_AST.transform(tree)


def parse_order_by_clauses(text: str) -> list[tuple[Path, bool]]:
    """Parse `order_by` into (path, descending) pairs, or raise `ExpressionError`."""
    _check_limits("order_by", text)
    try:
        tree = _ORDER_BY_PARSER.parse(text)
    except UnexpectedInput as exc:
        raise error_from_lark("order_by", text, exc) from None
    return [_order_clause(clause) for clause in tree.children]


def _order_clause(clause: Tree) -> tuple[Path, bool]:
    path_token, direction = clause.children
    path = Path(path_token.value, split_path(path_token.value), path_token.start_pos)
    return path, direction.value.upper() == "DESC"


def _check_limits(label: str, text: str) -> None:
    if not text.strip():
        raise ExpressionError(f"Invalid {label} {quote_text(text)}: it is empty")
    if len(text) > MAX_LENGTH:
        raise error_at(label, text, f"longer than {MAX_LENGTH} characters", MAX_LENGTH)
    too_deep = _first_too_deep_parenthesis(text)
    if too_deep is not None:
        detail = (
            f"parentheses nested deeper than {MAX_DEPTH} levels at position {too_deep}"
        )
        raise error_at(label, text, detail, too_deep)


def _first_too_deep_parenthesis(text: str) -> int | None:
    """Position of the first '(' beyond `MAX_DEPTH`, ignoring quoted strings.

    Checked on the raw text, before parsing, because both lark's transformer and
    our compiler recurse once per nesting level.
    """
    depth = 0
    quote: str | None = None
    escaped = False
    for position, char in enumerate(text):
        if quote is not None:
            # Inside a string: only the matching, unescaped quote ends it.
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
            if depth > MAX_DEPTH:
                return position
        elif char == ")":
            depth -= 1
    return None


def parse_path(text: str) -> Path:
    """Parse a lone attribute path such as `task.agent_sid`, or raise."""
    _check_limits("path", text)
    try:
        tokens = list(_EXPRESSION_PARSER.lex(text))
    except UnexpectedInput as exc:
        raise error_from_lark("path", text, exc) from None
    first = tokens[0]
    if first.type != "PATH":
        raise error_at("path", text, f"{first.value!r} is not an attribute path", 0)
    if len(tokens) > 1:
        extra = tokens[1]
        detail = f"unexpected {extra.value!r} at position {extra.start_pos}"
        raise error_at("path", text, detail, extra.start_pos)
    return Path(first.value, split_path(first.value), first.start_pos)
