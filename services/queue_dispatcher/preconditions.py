"""`If-Match` checks against an object's version (its ETag)."""

from __future__ import annotations

from shared.errors import PreconditionFailedError


def check_if_match(if_match: str | None, version: int, what: str) -> None:
    """Raise unless `if_match` is absent, `*`, or names `version` (`3`, `"3"`, `W/"3"`)."""
    if if_match is None or if_match.strip() in ("", "*"):
        return
    text = if_match.strip()
    if text.startswith("W/"):
        text = text[2:]
    if text.strip('"') != str(version):
        raise PreconditionFailedError(
            f"If-Match {if_match!r} does not match the current version {version} of {what}"
        )
