"""Paging through the official client (`list()` and `stream()` walk every page)
and the `meta` block: absolute, complete URLs that repeat the filters."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.contract import validate_response
from tests.e2e.conftest import RunningSystem
from tests.e2e.operations.conftest import Api

pytestmark = pytest.mark.e2e

COUNT = 120
PAGE_SIZE = 50


@pytest.fixture(scope="module")
def crowded(api: Api) -> Iterator[Any]:
    """A workspace with 120 extra activities and 120 workers."""
    workspace = api.v1.workspaces.create(
        friendly_name=f"Crowded {uuid.uuid4().hex[:6]}"
    )
    ws = api.v1.workspaces(workspace.sid)
    for n in range(COUNT):
        ws.activities.create(friendly_name=f"Extra {n:03}", available=True)
        ws.workers.create(
            friendly_name=f"Worker {n:03}", attributes=json.dumps({"n": n})
        )
    yield ws
    ws.delete()


def _walk(system: RunningSystem, url: str) -> Iterator[dict[str, Any]]:
    """Every page from `url` on, following `meta.next_page_url` as the client does."""
    auth = (system.account_sid, system.auth_token)
    while url:
        response = httpx.get(url, auth=auth)
        assert response.status_code == 200, response.text
        body = response.json()
        yield body
        url = body["meta"]["next_page_url"]


def _query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def test_list_and_stream_walk_every_page_of_activities(api: Api, crowded: Any):
    listed = crowded.activities.list(page_size=PAGE_SIZE)
    assert len(listed) == COUNT + 3
    assert len({a.sid for a in listed}) == COUNT + 3
    streamed = list(crowded.activities.stream(page_size=PAGE_SIZE))
    assert [a.sid for a in streamed] == [a.sid for a in listed]
    extras = [a.friendly_name for a in listed if a.friendly_name.startswith("Extra")]
    assert extras == [f"Extra {n:03}" for n in range(COUNT)]  # creation order
    limited = list(crowded.activities.stream(page_size=PAGE_SIZE, limit=70))
    assert [a.sid for a in limited] == [a.sid for a in listed[:70]]


def test_list_and_stream_walk_every_page_of_workers(api: Api, crowded: Any):
    listed = crowded.workers.list(page_size=PAGE_SIZE, available="false")
    assert [w.friendly_name for w in listed] == [f"Worker {n:03}" for n in range(COUNT)]
    streamed = crowded.workers.stream(page_size=PAGE_SIZE, ordering="FriendlyName:desc")
    assert [w.friendly_name for w in streamed] == [
        f"Worker {n:03}" for n in reversed(range(COUNT))
    ]


def test_meta_urls_are_absolute_complete_and_repeat_filters(
    system: RunningSystem, crowded: Any
):
    base = f"{system.base_url}/v1/Workspaces/{crowded._solution['sid']}/Workers"
    first = f"{base}?Available=false&PageSize={PAGE_SIZE}"
    pages = list(_walk(system, first))
    assert [len(p["workers"]) for p in pages] == [50, 50, 20]
    for index, page in enumerate(pages):
        validate_response("ListWorker", 200, page)
        meta = page["meta"]
        assert (meta["key"], meta["page"], meta["page_size"]) == (
            "workers",
            index,
            PAGE_SIZE,
        )
        for name in ("url", "first_page_url", "next_page_url", "previous_page_url"):
            url = meta[name]
            if url is None:
                continue
            assert url.startswith(f"{base}?"), (name, url)
            assert _query(url)["Available"] == ["false"] and _query(url)[
                "PageSize"
            ] == ["50"]
        assert _query(meta["first_page_url"])["Page"] == ["0"]
        assert "PageToken" not in _query(meta["first_page_url"])
        assert _query(meta["url"])["Page"] == [str(index)]
        if index == 0:
            assert meta["previous_page_url"] is None
        else:
            assert _query(meta["previous_page_url"])["Page"] == [str(index - 1)]
        if index < 2:
            next_query = _query(meta["next_page_url"])
            assert next_query["Page"] == [str(index + 1)]
            assert next_query["PageToken"][0].startswith("PA")
        else:
            assert meta["next_page_url"] is None
    names = [w["friendly_name"] for p in pages for w in p["workers"]]
    assert names == [f"Worker {n:03}" for n in range(COUNT)]


def test_page_index_without_token_skips_whole_pages(
    system: RunningSystem, crowded: Any
):
    base = f"{system.base_url}/v1/Workspaces/{crowded._solution['sid']}/Activities"
    auth = (system.account_sid, system.auth_token)
    by_token = list(_walk(system, f"{base}?PageSize=40"))
    by_index = httpx.get(f"{base}?PageSize=40&Page=2", auth=auth).json()
    assert by_index["activities"] == by_token[2]["activities"]
    assert by_index["meta"]["page"] == 2


def test_tasks_page_with_a_filter_evaluated_in_the_gateway(api: Api, crowded: Any):
    queue = crowded.task_queues.create(friendly_name="Nobody", target_workers="1==0")
    for n in range(12):
        crowded.tasks.create(task_queue_sid=queue.sid, attributes=json.dumps({"n": n}))
    even = crowded.tasks.list(
        evaluate_task_attributes="n IN [0, 2, 4, 6, 8, 10]", page_size=4
    )
    assert [json.loads(t.attributes)["n"] for t in even] == [0, 2, 4, 6, 8, 10]
    last_meta = api.last_body()["meta"]
    assert _query(last_meta["url"])["EvaluateTaskAttributes"] == [
        "n IN [0, 2, 4, 6, 8, 10]"
    ]
