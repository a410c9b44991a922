"""Webhook signatures must satisfy twilio's own RequestValidator."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import pytest
from twilio.request_validator import RequestValidator

from services.events.signing import compute_signature, request_url
from services.events.webhook_form import event_callback_params
from shared.events import make_event
from shared.models import utcnow

TOKEN = "12345678901234567890123456789012"


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/cb",
        "https://example.com:8443/cb?x=1&y=two",
        "http://example.com/hooks/task%20router",
    ],
    ids=["plain", "port-and-query", "escaped-path"],
)
def test_compute_signature_is_accepted_by_request_validator(url):
    params = {"EventType": "task.created", "TaskAttributes": '{"a": "é & ="}', "B": ""}

    signature = compute_signature(url, params, TOKEN)

    assert RequestValidator(TOKEN).validate(url, params, signature)


def test_compute_signature_rejected_with_another_token():
    params = {"EventType": "task.created"}

    signature = compute_signature("https://example.com/cb", params, TOKEN)

    assert not RequestValidator("another").validate(
        "https://example.com/cb", params, signature
    )


def test_compute_signature_leaves_out_the_override_fragment():
    params = {"EventType": "task.created"}

    signature = compute_signature("https://example.com/cb#rc=3&rp=all", params, TOKEN)

    assert request_url("https://example.com/cb#rc=3&rp=all") == "https://example.com/cb"
    assert RequestValidator(TOKEN).validate("https://example.com/cb", params, signature)


def test_signed_event_form_survives_form_encoding():
    event = make_event(
        "task.created",
        account_sid="AC1",
        workspace_sid="WS1",
        resource_type="task",
        resource_sid="WT1",
        at=utcnow(),
        description="Task WT1 created",
        data={"task_sid": "WT1", "task_attributes": '{"skill": "fr & en"}'},
    )
    params = event_callback_params(event, "Support", utcnow())
    signature = compute_signature("https://example.com/cb", params, TOKEN)

    # What a receiver sees: the body decoded back into fields.
    received = dict(parse_qsl(urlencode(params), keep_blank_values=True))

    assert RequestValidator(TOKEN).validate(
        "https://example.com/cb", received, signature
    )
