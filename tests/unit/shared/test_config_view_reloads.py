"""ConfigView: concurrent reloads of one workspace end with the store's latest state."""

from __future__ import annotations

import asyncio

from shared.config_view import ConfigView
from shared.models import Workspace

WS = "WS" + "0" * 32
AC = "AC" + "0" * 32


class _Empty:
    def __aiter__(self):
        return self

    async def __anext__(self):
        raise StopAsyncIteration


class _Collection:
    def __init__(self, store: _Store, name: str) -> None:
        self._store, self._name = store, name

    async def find_one(self, query: dict) -> dict | None:
        return await self._store.read_workspace()

    def find(self, *_: object) -> _Empty:
        return _Empty()


class _Store:
    """The workspace exists until `delete()`; the first read stalls until released."""

    def __init__(self) -> None:
        self.doc: dict | None = Workspace(sid=WS, account_sid=AC, friendly_name="W").to_document()
        self.first_read_started = asyncio.Event()
        self.release_first_read = asyncio.Event()
        self._reads = 0

    async def read_workspace(self) -> dict | None:
        self._reads += 1
        seen = self.doc
        if self._reads == 1:
            self.first_read_started.set()
            await self.release_first_read.wait()
        return seen

    def __getitem__(self, name: str) -> _Collection:
        return _Collection(self, name)


async def test_a_reload_that_read_before_a_deletion_cannot_bring_the_workspace_back():
    store = _Store()
    view = ConfigView(store)  # type: ignore[arg-type]
    stale = asyncio.create_task(view.refresh(WS))  # e.g. prompted by an earlier event
    await store.first_read_started.wait()
    store.doc = None  # the workspace is deleted meanwhile
    after_delete = asyncio.create_task(view.refresh(WS))  # the reload after the deletion
    await asyncio.sleep(0)
    store.release_first_read.set()
    await asyncio.gather(stale, after_delete)
    assert view.cached(WS) is None
