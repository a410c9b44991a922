"""The telephony parameters of a reservation update, read into `instruction_params`.

Keys become snake_case, as in assignment-callback instructions
(`DequeuePostWorkActivitySid` → `dequeue_post_work_activity_sid`); values keep
the contract's types: integers, booleans, lists for the `...Event` parameters.
"""

from __future__ import annotations

import re
from typing import Any

from services.gateway.params import Params
from shared.errors import DomainValidationError

INTEGERS = ("DequeueTimeout", "CallTimeout", "Timeout", "MaxParticipants")
BOOLEANS = (
    "CallAccept", "RedirectAccept", "Record", "Muted", "StartConferenceOnEnter",
    "EndConferenceOnExit", "EarlyMedia", "EndConferenceOnCustomerExit", "BeepOnCustomerEntrance",
)
LISTS = {
    "StatusCallbackEvent": ("initiated", "ringing", "answered", "completed"),
    "ConferenceStatusCallbackEvent": ("start", "end", "join", "leave", "mute", "hold", "speaker"),
    "DequeueStatusCallbackEvent": None,
}
CHOICES = {"SupervisorMode": ("monitor", "whisper", "barge")}
STRINGS = (
    "DequeuePostWorkActivitySid", "DequeueFrom", "DequeueRecord", "DequeueTo",
    "DequeueStatusCallbackUrl", "CallFrom", "CallRecord", "CallTo", "CallUrl",
    "CallStatusCallbackUrl", "RedirectCallSid", "RedirectUrl", "To", "From", "StatusCallback",
    "StatusCallbackMethod", "Beep", "WaitUrl", "WaitMethod", "ConferenceStatusCallback",
    "ConferenceStatusCallbackMethod", "ConferenceRecord", "ConferenceTrim", "RecordingChannels",
    "RecordingStatusCallback", "RecordingStatusCallbackMethod",
    "ConferenceRecordingStatusCallback", "ConferenceRecordingStatusCallbackMethod", "Region",
    "SipAuthUsername", "SipAuthPassword", "PostWorkActivitySid", "Supervisor",
    "JitterBufferSize",
)


def snake_case(name: str) -> str:
    """`DequeuePostWorkActivitySid` → `dequeue_post_work_activity_sid`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def read_instruction_params(params: Params) -> dict[str, Any]:
    """Every telephony parameter present in the request, typed and snake_cased."""
    found: dict[str, Any] = {}
    for name in INTEGERS:
        if (number := params.integer(name, minimum=0)) is not None:
            found[snake_case(name)] = number
    for name in BOOLEANS:
        if (flag := params.boolean(name)) is not None:
            found[snake_case(name)] = flag
    for name, allowed in LISTS.items():
        values = params.strings(name, comma=True)
        for value in values:
            if allowed is not None and value not in allowed:
                raise DomainValidationError(
                    f"{name} must be among {', '.join(allowed)}, got {value!r}", param=name
                )
        if values:
            found[snake_case(name)] = values
    for name, choices in CHOICES.items():
        if (choice := params.choice(name, choices)) is not None:
            found[snake_case(name)] = choice
    for name in STRINGS:
        if (text := params.text(name)) is not None:
            found[snake_case(name)] = text
    return found
