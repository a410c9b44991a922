"""What an assignment callback answered: a pure reading of the reply (workflows.md §6).

A 2xx reply whose body is a JSON object with an `instruction` is an instruction.
Any other 2xx (empty body, no JSON, no `instruction`) means "my application acts
later through the REST API": the reservation stays pending. We read the JSON
whatever the Content-Type says, because some receivers omit it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

SUPPORTED = frozenset({"accept", "reject"})
# Telephony instructions need a voice network this service does not have.
TELEPHONY = frozenset({"dequeue", "call", "redirect", "conference", "supervise"})


@dataclass(frozen=True)
class Instruction:
    name: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def supported(self) -> bool:
        return self.name in SUPPORTED

    @property
    def activity_sid(self) -> str | None:
        """The worker's next activity on `reject` (absent: the previous activity)."""
        value = self.params.get("activity_sid")
        return value if isinstance(value, str) and value else None

    def to_record(self) -> dict[str, Any]:
        return {"instruction": self.name, **self.params}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Instruction:
        params = {k: v for k, v in record.items() if k != "instruction"}
        return cls(str(record["instruction"]), params)


def read_instruction(body: bytes) -> Instruction | None:
    """The instruction in a 2xx reply body, or None for "acting later"."""
    if not body.strip():
        return None
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict) or not isinstance(
        document.get("instruction"), str
    ):
        return None
    params = {k: v for k, v in document.items() if k != "instruction"}
    return Instruction(document["instruction"].strip().lower(), params)
