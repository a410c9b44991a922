"""Limits that keep hostile input out: deep JSON, forged page tokens."""

from __future__ import annotations

import base64
import json

import pytest

from services.gateway.paging import TOKEN_PREFIX, _scope_tag, decode_token, encode_token
from services.gateway.params import MAX_JSON_DEPTH, Params
from shared.errors import DomainValidationError


def _nested(levels: int) -> str:
    value: object = 1
    for _ in range(levels - 1):
        value = [value]
    return json.dumps({"a": value})


def test_attributes_nested_to_the_limit_are_accepted():
    text = _nested(MAX_JSON_DEPTH)
    assert Params([("Attributes", text)]).json_object("Attributes") == text


def test_attributes_nested_past_the_limit_are_refused_naming_the_parameter():
    with pytest.raises(DomainValidationError) as refused:
        Params([("Attributes", _nested(MAX_JSON_DEPTH + 1))]).json_object("Attributes")
    assert refused.value.param == "Attributes"
    assert "nest deeper" in refused.value.message


def _forged(key: list) -> str:
    raw = json.dumps([_scope_tag(""), *key]).encode()  # a well-formed tag: only the key is bad
    return TOKEN_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "key",
    [[{"d": 1e30}, "WT1"], [{"$gt": 1}, "x"], [[1], "x"], [True, "x"], [10**30, "x"], [{"d": "x"}]],
    ids=["huge-date", "operator", "list", "bool", "huge-int", "date-not-int"],
)
def test_forged_page_tokens_are_refused(key):
    with pytest.raises(DomainValidationError) as refused:
        decode_token(_forged(key))
    assert refused.value.param == "PageToken"


def test_tokens_we_issue_round_trip():
    from datetime import UTC, datetime

    key = (datetime(2026, 12, 3, 12, 0, tzinfo=UTC), "WT" + "0" * 32)
    assert decode_token(encode_token(key)) == key
