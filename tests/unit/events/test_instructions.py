"""Reading an assignment callback's reply."""

from __future__ import annotations

import pytest

from services.events.instructions import Instruction, read_instruction


@pytest.mark.parametrize(
    "body",
    [b"", b"  ", b"<Response/>", b"[1, 2]", b'{"status": "ok"}', b'{"instruction": 5}'],
    ids=["empty", "blank", "xml", "list", "no-instruction", "not-a-string"],
)
def test_read_instruction_means_acting_later(body):
    assert read_instruction(body) is None


def test_read_instruction_accept():
    instruction = read_instruction(b'{"instruction": "accept"}')

    assert instruction == Instruction("accept")
    assert instruction.supported


def test_read_instruction_reject_with_activity():
    instruction = read_instruction(b'{"instruction": "Reject", "activity_sid": "WA1"}')

    assert instruction.name == "reject"
    assert instruction.activity_sid == "WA1"
    assert Instruction.from_record(instruction.to_record()) == instruction


@pytest.mark.parametrize("name", ["dequeue", "call", "redirect", "conference"])
def test_telephony_instructions_are_not_supported(name):
    assert not read_instruction(
        f'{{"instruction": "{name}", "to": "x"}}'.encode()
    ).supported
