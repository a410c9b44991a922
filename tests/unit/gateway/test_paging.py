from datetime import UTC, datetime

import pytest

from services.gateway.paging import (
    PageRequest,
    decode_token,
    encode_token,
    keyset_filter,
    list_meta,
    page_in_memory,
    page_request,
)
from services.gateway.params import Params
from shared.errors import DomainValidationError

MOMENT = datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)


def test_token_round_trips_dates_and_sids():
    token = encode_token((MOMENT, "WA1"))
    assert token.startswith("PA")
    assert decode_token(token) == (MOMENT, "WA1")


def test_a_token_works_only_on_the_list_that_made_it():
    tasks = "/v1/Workspaces/WS1/Tasks"
    token = encode_token((MOMENT, "WT1"), tasks)
    assert decode_token(token, tasks) == (MOMENT, "WT1")
    for other in ("/v1/Workspaces/WS1/Workers", "/v1/Workspaces/WS2/Tasks"):
        with pytest.raises(DomainValidationError) as caught:
            decode_token(token, other)
        assert caught.value.param == "PageToken"
        assert "another list" in caught.value.message


def test_a_refused_token_is_not_echoed_whole():
    with pytest.raises(DomainValidationError) as caught:
        decode_token("PA" + "x" * 10_000)
    assert len(caught.value.message) < 120


@pytest.mark.parametrize("token", ["XYZ", "PA!!!", "PAbm90IGpzb24", "PAW10"], ids=[
    "foreign-prefix", "not-base64", "not-json", "empty-key"])
def test_decode_token_refuses_foreign_tokens(token):
    with pytest.raises(DomainValidationError) as caught:
        decode_token(token)
    assert caught.value.param == "PageToken"


@pytest.mark.parametrize("size", ["0", "1001", "x"])
def test_page_size_must_be_between_1_and_1000(size):
    with pytest.raises(DomainValidationError):
        page_request(Params([("PageSize", size)]))


def test_page_index_is_bounded_so_the_skipped_count_fits_64_bits():
    assert page_request(Params([("Page", str(2**31 - 1))])).page == 2**31 - 1
    with pytest.raises(DomainValidationError) as caught:
        page_request(Params([("Page", "26730046542675168985088")]))
    assert caught.value.param == "Page"


def test_page_request_defaults():
    assert page_request(Params([])) == PageRequest(50, 0, None, None)


def test_page_in_memory_continues_after_the_token():
    items = [(MOMENT, f"WA{i}") for i in range(5)]
    first = page_in_memory(items, PageRequest(page_size=2), lambda x: x)
    assert first.items == items[:2] and first.next_key == items[1]
    second = page_in_memory(items, PageRequest(2, 1, first.next_key), lambda x: x)
    assert second.items == items[2:4]
    last = page_in_memory(items, PageRequest(2, 2, second.next_key), lambda x: x)
    assert last.items == items[4:] and last.next_key is None


def test_page_in_memory_descending():
    items = [(i, "x") for i in range(4)]
    first = page_in_memory(items, PageRequest(page_size=3), lambda x: x, descending=True)
    assert [i for i, _ in first.items] == [3, 2, 1]
    rest = page_in_memory(items, PageRequest(3, 1, first.next_key), lambda x: x, descending=True)
    assert [i for i, _ in rest.items] == [0]


def test_page_by_index_without_token_skips_pages():
    page = page_in_memory(list(range(10)), PageRequest(3, 2), lambda x: (x,))
    assert page.items == [6, 7, 8]


def test_keyset_filter_for_mixed_directions():
    assert keyset_filter([("priority", -1), ("_id", -1)], (5, "WT1")) == {"$or": [
        {"priority": {"$lt": 5}},
        {"priority": 5, "_id": {"$lt": "WT1"}},
    ]}


def test_meta_repeats_filters_and_links_pages():
    params = Params([("AssignmentStatus", "pending,reserved"), ("PageSize", "2"), ("Page", "1"),
                     ("PageToken", "PAabc")])
    request = PageRequest(2, 1, (1,), "PAabc")
    meta = list_meta("https://tr.example", "/v1/Workspaces/WS1/Tasks", params, request, "tasks",
                     (MOMENT, "WT9"))
    base = "https://tr.example/v1/Workspaces/WS1/Tasks?AssignmentStatus=pending%2Creserved"
    assert meta["url"] == f"{base}&PageSize=2&Page=1&PageToken=PAabc"
    assert meta["first_page_url"] == f"{base}&PageSize=2&Page=0"
    assert meta["previous_page_url"] == f"{base}&PageSize=2&Page=0"
    assert meta["next_page_url"].startswith(f"{base}&PageSize=2&Page=2&PageToken=PA")
    assert (meta["key"], meta["page"], meta["page_size"]) == ("tasks", 1, 2)


def test_a_next_page_token_belongs_to_the_lists_path_and_filters():
    path = "/v1/Workspaces/WS1/Events"
    filters = [("EventType", "task.created"), ("TaskSid", "WT1")]
    meta = list_meta("https://tr.example", path, Params([*filters, ("PageSize", "2")]),
                     PageRequest(2, 0), "events", (MOMENT, "EV9"))
    token = meta["next_page_url"].rsplit("PageToken=", 1)[1]
    # The same filters, in any order, continue the list.
    again = page_request(Params([*reversed(filters), ("PageToken", token), ("Page", "1")]), path)
    assert again.after == (MOMENT, "EV9")
    # Other filters, or none, make it another list.
    for other in ([("EventType", "reservation.created"), ("TaskSid", "WT1")], filters[:1]):
        with pytest.raises(DomainValidationError) as caught:
            page_request(Params([*other, ("PageToken", token)]), path)
        assert caught.value.param == "PageToken"


def test_meta_of_a_single_page_has_no_neighbours():
    meta = list_meta("http://h", "/v1/Workspaces", Params([]), PageRequest(), "workspaces", None)
    assert meta["next_page_url"] is None and meta["previous_page_url"] is None


def test_paging_through_tokens_visits_in_memory_objects_with_microseconds_once():
    # Objects held in memory (the dispatcher's worker channels) carry microseconds;
    # tokens carry milliseconds. Each object must come exactly once, in order.
    base = datetime(2026, 12, 4, 12, 0, 0, 123_456, tzinfo=UTC)
    items = [(base, "WC1"), (base.replace(microsecond=123_999), "WC2"), (base.replace(microsecond=456_789), "WC3")]
    seen, after = [], None
    for index in range(len(items) + 1):
        token = encode_token(after, "/scope") if after is not None else None
        request = PageRequest(1, index, decode_token(token, "/scope") if token else None, token)
        page = page_in_memory(items, request, lambda x: x)
        seen.extend(page.items)
        if page.next_key is None:
            break
        after = page.next_key
    assert seen == items
