from datetime import UTC, datetime

import pytest

from services.gateway.instruction_params import read_instruction_params, snake_case
from services.gateway.params import Params, parse_ordering
from shared.errors import DomainValidationError


def _refusal(call) -> DomainValidationError:
    with pytest.raises(DomainValidationError) as caught:
        call()
    return caught.value


@pytest.mark.parametrize("value,expected", [("true", True), ("1", True), ("yes", True),
                                            ("false", False), ("0", False), ("nope", False)])
def test_lenient_booleans(value, expected):
    assert Params([("Available", value)]).boolean("Available", lenient=True) is expected


def test_strict_booleans_refuse_other_values():
    assert Params([("X", "TRUE")]).boolean("X") is True
    assert _refusal(lambda: Params([("X", "yes")]).boolean("X")).param == "X"


def test_integer_names_the_parameter():
    error = _refusal(lambda: Params([("Priority", "high")]).integer("Priority"))
    assert error.param == "Priority" and "'high'" in error.message
    assert _refusal(lambda: Params([("T", "0")]).integer("T", minimum=1)).param == "T"


@pytest.mark.parametrize("value", [str(2**63), str(-(2**63) - 1), "9" * 30])
def test_integer_refuses_values_wider_than_64_bits(value):
    assert _refusal(lambda: Params([("Priority", value)]).integer("Priority")).param == "Priority"
    assert Params([("P", str(2**63 - 1))]).integer("P") == 2**63 - 1


@pytest.mark.parametrize("text", ["[]", "1", "{", '"s"'])
def test_json_object_refuses_everything_but_objects(text):
    assert _refusal(lambda: Params([("Attributes", text)]).json_object("Attributes")).param == (
        "Attributes")


def test_json_object_is_returned_verbatim_and_sized():
    text = '{ "a" :  1 }'
    assert Params([("Attributes", text)]).json_object("Attributes", max_chars=20) == text
    big = '{"a": "' + "x" * 4096 + '"}'
    assert _refusal(lambda: Params([("Attributes", big)]).json_object(
        "Attributes", max_chars=4096)).param == "Attributes"


def test_friendly_name_limits():
    assert _refusal(lambda: Params([]).friendly_name(required=True)).message == (
        "FriendlyName field is required")
    assert _refusal(lambda: Params([("FriendlyName", "x" * 65)]).friendly_name()).param == (
        "FriendlyName")


def test_sid_pattern():
    assert Params([("WorkflowSid", "WW" + "a" * 32)]).sid("WorkflowSid", "WW")
    assert _refusal(lambda: Params([("WorkflowSid", "WQ" + "a" * 32)]).sid(
        "WorkflowSid", "WW")).param == "WorkflowSid"


def test_repeated_and_comma_joined_lists():
    params = Params([("S", "pending"), ("S", "reserved,assigned")])
    assert params.strings("S", comma=True) == ["pending", "reserved", "assigned"]
    assert params.strings("S") == ["pending", "reserved,assigned"]


def test_dates_are_utc():
    assert Params([("D", "2023-08-02T12:34:56Z")]).date("D") == datetime(
        2023, 8, 2, 12, 34, 56, tzinfo=UTC)
    assert _refusal(lambda: Params([("D", "yesterday")]).date("D")).param == "D"


def test_choice_refuses_unknown_enum_values():
    assert _refusal(lambda: Params([("TaskOrder", "fifo")]).choice(
        "TaskOrder", ["FIFO", "LIFO"])).param == "TaskOrder"


def test_ordering():
    fields = {"DateCreated": "date_created", "Priority": "priority"}
    assert parse_ordering("Ordering", "Priority:desc,DateCreated:asc", fields) == [
        ("priority", -1), ("date_created", 1)]
    assert parse_ordering("Ordering", "DateCreated", fields) == [("date_created", 1)]
    for bad in ("Age:asc", "Priority:up", "Priority:asc,Priority:desc"):
        assert _refusal(lambda b=bad: parse_ordering("Ordering", b, fields)).param == "Ordering"


def test_instruction_params_are_typed_and_snake_cased():
    params = Params([("CallTimeout", "30"), ("Record", "true"), ("From", "+1555"),
                     ("StatusCallbackEvent", "ringing"), ("StatusCallbackEvent", "answered"),
                     ("DequeuePostWorkActivitySid", "WA1"), ("ReservationStatus", "accepted")])
    assert read_instruction_params(params) == {
        "call_timeout": 30, "record": True, "from": "+1555",
        "status_callback_event": ["ringing", "answered"],
        "dequeue_post_work_activity_sid": "WA1",
    }
    assert snake_case("SipAuthUsername") == "sip_auth_username"
    assert _refusal(lambda: read_instruction_params(
        Params([("ConferenceStatusCallbackEvent", "explode")]))).param == (
        "ConferenceStatusCallbackEvent")


def test_callback_urls_have_a_length_limit():
    from services.gateway.params import URL_MAX_CHARS

    fits = "https://example.com/" + "a" * (URL_MAX_CHARS - 20)
    assert Params([("EventCallbackUrl", fits)]).url("EventCallbackUrl") == fits
    error = _refusal(lambda: Params([("EventCallbackUrl", fits + "a")]).url("EventCallbackUrl"))
    assert error.param == "EventCallbackUrl" and str(URL_MAX_CHARS) in error.message
