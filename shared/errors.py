"""Domain errors, shared by every service.

    TaskRouterError                 root; `retryable` says whether trying again may help
    ├── NotFoundError               a SID or name that does not exist (for this account)
    ├── DomainValidationError       bad input: wrong type, bad JSON, unknown enum, bad expression
    ├── InvalidTransitionError      a status change the state machine does not allow
    ├── ConflictError               a duplicate name, a lost race, an object still in use
    │   └── PreconditionFailedError If-Match did not match the current ETag
    ├── AuthenticationError         missing or wrong credentials
    ├── PermissionDeniedError       credentials valid, action not granted
    ├── RateLimitedError            over the averaged request rate
    └── UnavailableError            the store or the bus did not answer (retryable)

`shared/` knows no HTTP status; the gateway maps these to Twilio's error shape in
one table. Errors travel between services as `to_wire()` dicts and come back
to life with `error_from_wire()`, so a refusal raised in the queue-dispatcher is
the same refusal the gateway answers with.
"""

from __future__ import annotations

from typing import Any


class TaskRouterError(Exception):
    """Root of every domain error."""

    retryable: bool = False

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def to_wire(self) -> dict[str, Any]:
        return {"type": type(self).__name__, "message": self.message, "param": self.param}


class NotFoundError(TaskRouterError):
    """The resource does not exist, or belongs to someone else."""

    def __init__(self, resource: str, sid: str) -> None:
        super().__init__(f"The requested resource {resource} {sid!r} was not found")
        self.resource = resource
        self.sid = sid

    def to_wire(self) -> dict[str, Any]:
        return {**super().to_wire(), "resource": self.resource, "sid": self.sid}


class DomainValidationError(TaskRouterError):
    """Input that cannot be accepted as given."""


class InvalidTransitionError(DomainValidationError):
    """A status change that the state machine does not allow (answered as 400)."""


class ConflictError(TaskRouterError):
    """A duplicate, an object still in use, or a lost race."""


class PreconditionFailedError(ConflictError):
    """`If-Match` named a version that is no longer current."""


class AuthenticationError(TaskRouterError):
    """Missing or wrong credentials."""


class PermissionDeniedError(TaskRouterError):
    """Valid credentials without the permission the operation needs."""


class RateLimitedError(TaskRouterError):
    """Too many requests; `retry_after` is in whole seconds."""

    retryable = True

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def to_wire(self) -> dict[str, Any]:
        return {**super().to_wire(), "retry_after": self.retry_after}


class UnavailableError(TaskRouterError):
    """A dependency (store, bus, another service) did not answer."""

    retryable = True


_BY_NAME: dict[str, type[TaskRouterError]] = {
    cls.__name__: cls
    for cls in (
        TaskRouterError,
        DomainValidationError,
        InvalidTransitionError,
        ConflictError,
        PreconditionFailedError,
        AuthenticationError,
        PermissionDeniedError,
        UnavailableError,
    )
}


def error_from_wire(data: dict[str, Any]) -> TaskRouterError:
    """Rebuild a domain error sent by another service with `to_wire()`."""
    kind = data.get("type", "TaskRouterError")
    if kind == "NotFoundError":
        return NotFoundError(data.get("resource", "resource"), data.get("sid", ""))
    if kind == "RateLimitedError":
        return RateLimitedError(data["message"], retry_after=data.get("retry_after", 1))
    cls = _BY_NAME.get(kind, TaskRouterError)
    return cls(data.get("message", "internal error"), param=data.get("param"))
