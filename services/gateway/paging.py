"""List paging: `PageSize`, `Page`, `PageToken` in; `meta` with absolute URLs out.

Pages are cut by key (keyset paging), never by offset, so a page never repeats or
skips an object when others are created meanwhile. The token is opaque to
clients: `PA` + base64 of a tag of the list's path and the last returned sort
key, e.g. `["3f2a91c0", <date_created>, "WA…"]`; a token is refused by every
list but the one that made it. `Page` is only echoed;
without a token, `Page=n` skips `n` pages, so a client driving paging by index
still gets sensible results.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

import orjson

from services.gateway.params import Params
from shared.errors import DomainValidationError
from shared.events import epoch_ms

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_PAGE = 2**31 - 1
PAGING_PARAMS = ("PageSize", "Page", "PageToken")
TOKEN_PREFIX = "PA"


@dataclass(frozen=True)
class PageRequest:
    """The paging part of a list request."""

    page_size: int = DEFAULT_PAGE_SIZE
    page: int = 0
    after: tuple[Any, ...] | None = None
    token: str | None = None

    @property
    def offset(self) -> int:
        """Objects to skip: only when paging by index without a token."""
        return 0 if self.after is not None else self.page * self.page_size


def _ms(moment: datetime) -> int:
    """Whole epoch milliseconds, the precision of a token and of a stored date."""
    return epoch_ms(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"d": _ms(value)}
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"d"} and isinstance(value["d"], int):
        return datetime.fromtimestamp(value["d"] / 1000, UTC)
    return value


def _scope_tag(scope: str) -> str:
    return hashlib.sha1(scope.encode()).hexdigest()[:8]


def encode_token(key: Sequence[Any], scope: str = "") -> str:
    """The page token continuing after the object with sort key `key`.

    `scope` is the list's path: a token carries a tag of it, so a token taken
    from one list (another resource, another workspace) is refused by the others.
    """
    raw = orjson.dumps([_scope_tag(scope), *(_encode_value(v) for v in key)])
    return TOKEN_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, scope: str = "") -> tuple[Any, ...]:
    """The sort key inside a token of the list at `scope`; 400 naming PageToken otherwise."""
    shown = token if len(token) <= 64 else token[:61] + "..."
    invalid = DomainValidationError(f"PageToken {shown!r} is not valid", param="PageToken")
    if not token.startswith(TOKEN_PREFIX):
        raise invalid
    body = token[len(TOKEN_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        key = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise invalid from None
    if not isinstance(key, list) or len(key) < 2 or not all(map(_is_key_value, key)):
        raise invalid
    if key[0] != _scope_tag(scope):
        raise DomainValidationError(
            f"PageToken {shown!r} belongs to another list", param="PageToken"
        )
    return tuple(_decode_value(v) for v in key[1:])


_INT64 = 2**63 - 1


def _is_key_value(value: Any) -> bool:
    """Only what `encode_token` writes: strings, 64-bit numbers, `{"d": ms}` dates, null."""
    if value is None or isinstance(value, str):
        return True
    if isinstance(value, dict):
        return set(value) == {"d"} and isinstance(value["d"], int) and abs(value["d"]) <= _INT64
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return abs(value) <= _INT64


def _list_scope(path: str, params: Params) -> str:
    """What a page token belongs to: the list's path and its filters, in any order."""
    filters = sorted((k, v) for k, v in params.items if k not in PAGING_PARAMS)
    return f"{path}?{urlencode(filters)}" if filters else path


def page_request(params: Params, path: str = "") -> PageRequest:
    """Read `PageSize` (1–1000, default 50), `Page` and `PageToken`.

    A token is accepted only by the list that made it: the same `path` and filters.
    """
    size = params.integer("PageSize", minimum=1, maximum=MAX_PAGE_SIZE)
    # Bounded so that the objects skipped by index (Page × PageSize) stay a 64-bit count.
    page = params.integer("Page", minimum=0, maximum=MAX_PAGE)
    token = params.text("PageToken") or None
    after = decode_token(token, _list_scope(path, params)) if token else None
    return PageRequest(size or DEFAULT_PAGE_SIZE, page or 0, after, token)


@dataclass
class Page(Generic[T]):
    """One page of objects and the key to continue after it (None on the last page)."""

    items: list[T]
    next_key: tuple[Any, ...] | None


def cut_page(
    candidates: Iterable[T], request: PageRequest, key: Callable[[T], tuple[Any, ...]]
) -> Page[T]:
    """The page of already sorted `candidates` that follows `request.after`.

    `candidates` must be sorted by `key` ascending, starting after the token's key
    (or from the beginning); the iterable is consumed only as far as needed.
    """
    skip = request.offset
    items: list[T] = []
    for item in candidates:
        if skip:
            skip -= 1
            continue
        if len(items) == request.page_size:
            return Page(items, key(items[-1]))
        items.append(item)
    return Page(items, None)


def page_in_memory(
    objects: Iterable[T],
    request: PageRequest,
    key: Callable[[T], tuple[Any, ...]],
    *,
    descending: bool = False,
) -> Page[T]:
    """Sort `objects` by `key` and cut the requested page (for cached configuration)."""
    ordered = sorted(objects, key=lambda o: _comparable(key(o)), reverse=descending)
    if request.after is not None:
        after = _comparable(request.after)
        if descending:
            ordered = [o for o in ordered if _comparable(key(o)) < after]
        else:
            ordered = [o for o in ordered if _comparable(key(o)) > after]
    return cut_page(ordered, request, key)


def _comparable(key: tuple[Any, ...]) -> tuple[Any, ...]:
    # At a token's precision: objects held in memory carry microseconds, and an
    # object must compare equal to the token made from it, or paging repeats it.
    return tuple(_ms(v) if isinstance(v, datetime) else v for v in key)


def list_meta(
    root_url: str,
    path: str,
    params: Params,
    request: PageRequest,
    key: str,
    next_key: tuple[Any, ...] | None,
) -> dict[str, Any]:
    """The `meta` object: absolute URLs that repeat every active filter."""
    filters = [(k, v) for k, v in params.items if k not in PAGING_PARAMS]
    base = f"{root_url}{path}"

    def url(page: int, token: str | None) -> str:
        query = [*filters, ("PageSize", str(request.page_size)), ("Page", str(page))]
        if token:
            query.append(("PageToken", token))
        return f"{base}?{urlencode(query)}"

    next_token = encode_token(next_key, _list_scope(path, params)) if next_key else None
    next_url = url(request.page + 1, next_token) if next_token else None
    previous_url = url(request.page - 1, None) if request.page > 0 else None
    return {
        "first_page_url": url(0, None),
        "key": key,
        "next_page_url": next_url,
        "page": request.page,
        "page_size": request.page_size,
        "previous_page_url": previous_url,
        "url": url(request.page, request.token),
    }


def list_body(key: str, records: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    return {key: records, "meta": meta}


def keyset_filter(sort: Sequence[tuple[str, int]], after: Sequence[Any]) -> dict[str, Any]:
    """A MongoDB filter for the documents after `after` in `sort` order.

    `sort` is `[(field, 1 | -1), ...]` ending with `_id`, `after` the values of
    those fields in the last document of the previous page. For
    `[("date_created", 1), ("_id", 1)]` and `(d, "WT1")` it is
    `{"$or": [{"date_created": {"$gt": d}}, {"date_created": d, "_id": {"$gt": "WT1"}}]}`.
    """
    if len(after) != len(sort):
        raise DomainValidationError("PageToken does not fit this list", param="PageToken")
    branches = []
    for depth, (field, direction) in enumerate(sort):
        branch = {name: after[i] for i, (name, _) in enumerate(sort[:depth])}
        branch[field] = {"$gt" if direction > 0 else "$lt": after[depth]}
        branches.append(branch)
    return {"$or": branches}
