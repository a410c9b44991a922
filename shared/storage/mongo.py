"""Opening the store and translating its errors once, at this boundary."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    BulkWriteError,
    ClientBulkWriteException,
    ConnectionFailure,
    DuplicateKeyError,
    PyMongoError,
)

from shared.errors import ConflictError, UnavailableError

logger = logging.getLogger(__name__)

T = TypeVar("T")


def open_client(url: str) -> AsyncMongoClient[dict[str, Any]]:
    """A client with timezone-aware datetimes and short server selection."""
    return AsyncMongoClient(url, tz_aware=True, serverSelectionTimeoutMS=5000)


@asynccontextmanager
async def open_database(url: str, name: str) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    client = open_client(url)
    try:
        yield client[name]
    finally:
        await client.close()


async def translate_errors(operation: Callable[[], Awaitable[T]]) -> T:
    """Run a store operation, turning pymongo's errors into domain errors."""
    try:
        return await operation()
    except DuplicateKeyError as exc:
        raise ConflictError("an object with the same unique value already exists") from exc
    except BulkWriteError as exc:
        if any(e.get("code") == 11000 for e in exc.details.get("writeErrors", [])):
            raise ConflictError("an object with the same unique value already exists") from exc
        raise UnavailableError("the store refused a write") from exc
    except ClientBulkWriteException as exc:
        if any(e.get("code") == 11000 for e in exc.write_errors or []):
            raise ConflictError("an object with the same unique value already exists") from exc
        if isinstance(exc.error, ConnectionFailure):
            # Not a refusal: the connection went away mid-command (e.g. a store restart).
            raise UnavailableError("the store did not answer") from exc
        raise UnavailableError("the store refused a write") from exc
    except ConnectionFailure as exc:
        raise UnavailableError("the store did not answer") from exc
    except PyMongoError as exc:
        raise UnavailableError(f"the store failed: {type(exc).__name__}") from exc


async def supports_transactions(client: AsyncMongoClient[Any]) -> bool:
    """True when the server is a replica-set member or mongos (transactions work)."""
    hello = await client.admin.command("hello")
    return bool(hello.get("setName")) or hello.get("msg") == "isdbgrid"
