"""Common base for stored resources: a document in MongoDB with `_id` = SID."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field


def utcnow() -> datetime:
    """Now, in UTC, truncated to milliseconds as MongoDB stores it."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class Resource(BaseModel):
    """A stored TaskRouter object. Field names are the API's snake_case names."""

    model_config = ConfigDict(extra="ignore", validate_assignment=False)

    sid: str = Field(description="The object's SID.")
    account_sid: str = Field(description="Account that owns the object.")
    date_created: datetime = Field(default_factory=utcnow)
    date_updated: datetime = Field(default_factory=utcnow)

    def to_document(self) -> dict[str, Any]:
        """The MongoDB document: the model's fields with `_id` set to the SID."""
        doc = self.model_dump()
        doc["_id"] = self.sid
        return doc

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Self:
        return cls.model_validate(doc)


class WorkspaceResource(Resource):
    workspace_sid: str = Field(description="Workspace that holds the object.")
