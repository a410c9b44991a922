"""Read-only access to collections other services own (workers, tasks,
reservations, events), one page at a time.

The queue-dispatcher and the events service create the indexes these queries
use; the gateway never writes these collections.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from services.gateway.paging import Page, PageRequest, cut_page, keyset_filter
from shared.errors import NotFoundError, UnavailableError
from shared.storage.mongo import translate_errors

Document = dict[str, Any]
Predicate = Callable[[Document], bool]

# Documents scanned for one page when a filter is evaluated here rather than by
# the store (expression filters); past this the page ends early with a token.
SCAN_LIMIT = 20_000


async def find_one(
    db: AsyncDatabase[Any], collection: str, query: Document, resource: str, sid: str
) -> Document:
    """The document matching `query`; NotFoundError(resource, sid) when none does."""
    doc = await translate_errors(lambda: db[collection].find_one(query))
    if doc is None:
        raise NotFoundError(resource, sid)
    return doc


def sort_key(doc: Document, sort: Sequence[tuple[str, int]]) -> tuple[Any, ...]:
    """The values of the sort fields in `doc` (the page token's content)."""
    return tuple(doc.get(field) for field, _ in sort)


async def find_page(
    db: AsyncDatabase[Any],
    collection: str,
    query: Document,
    sort: Sequence[tuple[str, int]],
    paging: PageRequest,
    predicate: Predicate | None = None,
) -> Page[Document]:
    """One page of `collection` in `sort` order (which must end with `_id`).

    `predicate` filters documents the store cannot (expressions over JSON
    attributes); matching documents are collected until the page is full.
    """
    if paging.after is not None:
        query = {"$and": [query, keyset_filter(sort, paging.after)]}
    cursor = db[collection].find(query).sort(list(sort)).batch_size(
        min(paging.page_size + 1, 1000) if predicate is None else 1000
    )
    if predicate is None:
        cursor = cursor.limit(paging.offset + paging.page_size + 1)
    try:
        return await _collect(_matching(cursor, predicate), paging, sort)
    except PyMongoError as exc:
        raise UnavailableError(f"the store failed: {type(exc).__name__}") from exc


async def _matching(cursor: Any, predicate: Predicate | None) -> AsyncIterator[Document]:
    scanned = 0
    async for doc in cursor:
        scanned += 1
        if predicate is None or predicate(doc):
            yield doc
        if scanned >= SCAN_LIMIT:
            # TODO: a filter evaluated here stops after SCAN_LIMIT documents per page; the
            # page may then be short although more matches follow on later pages.
            return


async def _collect(
    docs: AsyncIterator[Document], paging: PageRequest, sort: Sequence[tuple[str, int]]
) -> Page[Document]:
    collected = [doc async for doc in _take(docs, paging.offset + paging.page_size + 1)]
    return cut_page(collected, paging, lambda d: sort_key(d, sort))


async def _take(docs: AsyncIterator[Document], count: int) -> AsyncIterator[Document]:
    taken = 0
    async for doc in docs:
        yield doc
        taken += 1
        if taken >= count:
            return
