"""Reading PascalCase form and query parameters, refusing bad ones with 400/20001.

Each reader names the parameter in its refusal (`DomainValidationError` with
`param`), so a client learns which value was wrong:

    params = Params(await request.form())
    params.integer("Priority", minimum=0)      # "Priority must be an integer, got 'x'"
    params.json_object("Attributes", max_chars=4096)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson

from shared.errors import DomainValidationError
from shared.sids import is_sid

FRIENDLY_NAME_MAX = 64
ATTRIBUTES_MAX_CHARS = 4096
# Decision: TaskRouter documents no nesting limit; deeper documents than this are
# refused so that every service can walk attributes without deep recursion.
MAX_JSON_DEPTH = 32


def _depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level + 1)
            stack.extend((child, level + 1) for child in item)
    return deepest
CONFIGURATION_MAX_BYTES = 1_048_576
# Decision: callback URLs longer than this are refused when saved; every HTTP
# client refuses some length, and a URL that can never be called is a mistake.
URL_MAX_CHARS = 4096
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_TRUE = {"true", "1", "yes"}
_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)


def _invalid(name: str, message: str) -> DomainValidationError:
    return DomainValidationError(message, param=name)


class Params:
    """The parameters of one request: a form body or a query string."""

    def __init__(self, items: Iterable[tuple[str, Any]]) -> None:
        self.items = [(k, v) for k, v in items if isinstance(v, str)]
        self._first: dict[str, str] = {}
        for key, value in self.items:
            self._first.setdefault(key, value)

    @classmethod
    def from_multidict(cls, data: Any) -> Params:
        """From Starlette's `FormData` or `QueryParams`."""
        return cls(data.multi_items())

    def has(self, name: str) -> bool:
        return name in self._first

    def text(
        self,
        name: str,
        *,
        required: bool = False,
        max_length: int | None = None,
        allow_empty: bool = True,
    ) -> str | None:
        """A string parameter; None when absent."""
        value = self._first.get(name)
        if value is None or (value == "" and not allow_empty):
            if required:
                raise _invalid(name, f"{name} field is required")
            return None
        if max_length is not None and len(value) > max_length:
            raise _invalid(name, f"{name} must be at most {max_length} characters long")
        return value

    def friendly_name(self, name: str = "FriendlyName", *, required: bool = False) -> str | None:
        return self.text(
            name, required=required, max_length=FRIENDLY_NAME_MAX, allow_empty=not required
        )

    def integer(
        self,
        name: str,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        """A decimal integer within bounds; None when absent."""
        value = self._first.get(name)
        if value is None:
            return None
        try:
            number = int(value.strip())
        except ValueError:
            raise _invalid(name, f"{name} must be an integer, got {value!r}") from None
        # The store holds 64-bit integers; anything wider could never match or be kept.
        if not INT64_MIN <= number <= INT64_MAX:
            raise _invalid(name, f"{name} is out of range, got {number}")
        if minimum is not None and number < minimum:
            raise _invalid(name, f"{name} must be at least {minimum}, got {number}")
        if maximum is not None and number > maximum:
            raise _invalid(name, f"{name} must be at most {maximum}, got {number}")
        return number

    def boolean(self, name: str, *, lenient: bool = False) -> bool | None:
        """`true`/`false`; with `lenient`, `true`/`1`/`yes` are true and all else false."""
        value = self._first.get(name)
        if value is None:
            return None
        lowered = value.strip().lower()
        if lenient:
            return lowered in _TRUE
        if lowered in ("true", "false"):
            return lowered == "true"
        raise _invalid(name, f"{name} must be true or false, got {value!r}")

    def json_object(
        self, name: str, *, max_chars: int | None = None, max_bytes: int | None = None
    ) -> str | None:
        """A JSON object given as a string, returned verbatim; None when absent."""
        value = self._first.get(name)
        if value is None:
            return None
        if max_chars is not None and len(value) > max_chars:
            raise _invalid(name, f"{name} must be at most {max_chars} characters long")
        if max_bytes is not None and len(value.encode()) > max_bytes:
            raise _invalid(name, f"{name} must be at most {max_bytes} bytes long")
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise _invalid(name, f"{name} must be valid JSON") from None
        if not isinstance(parsed, dict):
            raise _invalid(name, f"{name} must be a JSON object")
        if _depth(parsed) > MAX_JSON_DEPTH:
            raise _invalid(name, f"{name} must not nest deeper than {MAX_JSON_DEPTH} levels")
        return value

    def sid(self, name: str, prefix: str, *, required: bool = False) -> str | None:
        """A SID of kind `prefix`; None when absent."""
        value = self.text(name, required=required)
        if value is None:
            return None
        return check_sid(name, value, prefix)

    def strings(self, name: str, *, comma: bool = False) -> list[str]:
        """Every value of a repeated parameter; `comma` also splits `a,b`."""
        values = [v for k, v in self.items if k == name]
        if comma:
            values = [part.strip() for v in values for part in v.split(",")]
        return [v for v in values if v != ""]

    def choice(self, name: str, choices: Iterable[str]) -> str | None:
        """One of `choices` (exact); None when absent."""
        value = self._first.get(name)
        if value is None:
            return None
        allowed = list(choices)
        if value not in allowed:
            raise _invalid(
                name, f"{name} must be one of {', '.join(allowed)}, got {value!r}"
            )
        return value

    def date(self, name: str) -> datetime | None:
        """An ISO 8601 date-time (UTC when no offset is given); None when absent."""
        value = self._first.get(name)
        if value is None:
            return None
        return parse_date(name, value)

    def url(self, name: str) -> str | None:
        """An http(s) URL; an empty value (clearing it) is returned as ''."""
        value = self._first.get(name)
        if value is None or value == "":
            return value
        if len(value) > URL_MAX_CHARS:
            raise _invalid(name, f"{name} must be at most {URL_MAX_CHARS} characters long")
        if not _URL.match(value):
            raise _invalid(name, f"{name} must be an http or https URL, got {value!r}")
        return value


def check_sid(name: str, value: str, prefix: str) -> str:
    """`value` when it is a SID of kind `prefix`; a 400 naming `name` otherwise."""
    if not is_sid(value, prefix):
        raise _invalid(name, f"{name} must be a {prefix} SID, got {value!r}")
    return value


def parse_date(name: str, value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise _invalid(name, f"{name} must be an ISO 8601 date, got {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_ordering(name: str, value: str, fields: dict[str, str]) -> list[tuple[str, int]]:
    """`Attribute:asc|desc[,...]` as `[(stored_field, 1 | -1), ...]`.

    `fields` maps the accepted attribute names to stored fields, e.g.
    `parse_ordering("Ordering", "Priority:desc,DateCreated:asc", TASK_FIELDS)` is
    `[("priority", -1), ("date_created", 1)]`. A missing direction means asc.
    """
    ordering: list[tuple[str, int]] = []
    for part in value.split(","):
        attribute, _, direction = part.strip().partition(":")
        field = fields.get(attribute.strip())
        if field is None:
            raise _invalid(
                name, f"{name} attribute must be one of {', '.join(fields)}, got {attribute!r}"
            )
        direction = direction.strip().lower() or "asc"
        if direction not in ("asc", "desc"):
            raise _invalid(name, f"{name} order must be asc or desc, got {direction!r}")
        if any(f == field for f, _ in ordering):
            raise _invalid(name, f"{name} names {attribute!r} twice")
        ordering.append((field, 1 if direction == "asc" else -1))
    return ordering
