"""Restricted API keys: which permission each operation needs, and whether a key has it.

A restricted key carries up to 100 permission strings in Twilio's own vocabulary
(the strings Twilio's Console and Key resource v1 use for TaskRouter, as seen in
third-party code listing them):

    /twilio/taskrouter/<resource>/<action>

`<resource>` is a dotted path of kebab-case names from the workspace down:
`workspaces`, `workspaces.tasks`, `workspaces.tasks.reservations`,
`workspaces.task-queues.cumulative-statistics`, ... (`RESOURCES` lists them all).
`<action>` is one of `read` (fetch one), `list`, `create`, `update`, `delete`.
Statistics resources only know `list`, also when fetched for one object, and the
bulk real-time statistics POST is `workspaces.task-queue.bulk-real-time-statistics/list`
(Twilio's names, singular `task-queue` included).

Grammar accepted (case-insensitive; surrounding blanks ignored):

    permission := "/twilio/taskrouter/" ( "*" | resource-pattern "/" action-pattern )
    resource-pattern := "*" | resource | resource-prefix ".*"
    action-pattern := "read" | "list" | "create" | "update" | "delete" | "*"

Examples:

    /twilio/taskrouter/workspaces.tasks/create     create tasks (Twilio's form)
    /twilio/taskrouter/workspaces.workers/*        any action on workers (Twilio's)
    /twilio/taskrouter/workspaces.workers.*/list   list anything below workers:
                                                   channels, reservations, statistics
                                                   (extension; not workers themselves)
    /twilio/taskrouter/*/read                      fetch anything (extension)
    /twilio/taskrouter/*                           everything in TaskRouter (extension)

A resource or prefix that names no TaskRouter resource is refused when the key is
created (`PermissionSyntaxError`), so a typo cannot silently grant nothing.
A standard key (permissions `None`) may do everything, like the account's token.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from shared.errors import DomainValidationError, PermissionDeniedError

PREFIX = "/twilio/taskrouter/"
ACTIONS = ("read", "list", "create", "update", "delete")
MAX_PERMISSIONS = 100
# Twilio's generic authorization-failure code, answered with HTTP 403.
PERMISSION_DENIED_CODE = 70051


class Permission(NamedTuple):
    """What one operation needs: a resource and an action."""

    resource: str
    action: str

    def __str__(self) -> str:
        return f"{PREFIX}{self.resource}/{self.action}"


class PermissionSyntaxError(DomainValidationError):
    """A permission string outside the grammar, or naming no TaskRouter resource."""


class KeyPermissionDeniedError(PermissionDeniedError):
    """A restricted API key called an operation outside its permissions (403, 70051)."""

    def __init__(self, needed: Permission | None, method: str, path: str) -> None:
        granted = f"permission {str(needed)!r}" if needed else "an unrestricted key"
        super().__init__(
            f"The API key is not allowed to {method} {path}: it needs {granted}"
        )
        self.needed = needed


# -- the operations of the OpenAPI document ---------------------------------------

W = "/v1/Workspaces/{}"


def _collection(
    path: str,
    resource: str,
    *,
    fetch: bool = True,
    create: bool = True,
    update: bool = True,
    delete: bool = True,
) -> dict[tuple[str, str], Permission]:
    """The list/create and fetch/update/delete operations of one resource."""
    table = {("GET", path): Permission(resource, "list")}
    if create:
        table["POST", path] = Permission(resource, "create")
    instance = path + "/{}"
    if fetch:
        table["GET", instance] = Permission(resource, "read")
    if update:
        table["POST", instance] = Permission(resource, "update")
    if delete:
        table["DELETE", instance] = Permission(resource, "delete")
    return table


def _statistics(
    path: str, resource: str, method: str = "GET"
) -> dict[tuple[str, str], Permission]:
    return {(method, path): Permission(resource, "list")}


OPERATIONS: dict[tuple[str, str], Permission] = {
    **_collection("/v1/Workspaces", "workspaces"),
    **_collection(f"{W}/Activities", "workspaces.activities"),
    **_collection(f"{W}/TaskChannels", "workspaces.task-channels"),
    **_collection(f"{W}/TaskQueues", "workspaces.task-queues"),
    **_collection(f"{W}/Workflows", "workspaces.workflows"),
    **_collection(f"{W}/Workers", "workspaces.workers"),
    **_collection(f"{W}/Tasks", "workspaces.tasks"),
    **_collection(
        f"{W}/Events", "workspaces.events", create=False, update=False, delete=False
    ),
    **_collection(
        f"{W}/Workers/{{}}/Channels",
        "workspaces.workers.channels",
        create=False,
        delete=False,
    ),
    **_collection(
        f"{W}/Workers/{{}}/Reservations",
        "workspaces.workers.reservations",
        create=False,
        delete=False,
    ),
    **_collection(
        f"{W}/Tasks/{{}}/Reservations",
        "workspaces.tasks.reservations",
        create=False,
        delete=False,
    ),
    # Statistics: Twilio names every one of them `.../list`, even a single fetch.
    **_statistics(f"{W}/Statistics", "workspaces.statistics"),
    **_statistics(f"{W}/RealTimeStatistics", "workspaces.real-time-statistics"),
    **_statistics(f"{W}/CumulativeStatistics", "workspaces.cumulative-statistics"),
    **_statistics(f"{W}/TaskQueues/Statistics", "workspaces.task-queues.statistics"),
    **_statistics(
        f"{W}/TaskQueues/{{}}/Statistics", "workspaces.task-queues.instance-statistics"
    ),
    **_statistics(
        f"{W}/TaskQueues/{{}}/RealTimeStatistics",
        "workspaces.task-queue.real-time-statistics",
    ),
    **_statistics(
        f"{W}/TaskQueues/{{}}/CumulativeStatistics",
        "workspaces.task-queues.cumulative-statistics",
    ),
    **_statistics(
        f"{W}/TaskQueues/RealTimeStatistics",
        "workspaces.task-queue.bulk-real-time-statistics",
        method="POST",
    ),
    **_statistics(f"{W}/Workers/Statistics", "workspaces.workers.statistics"),
    **_statistics(
        f"{W}/Workers/RealTimeStatistics", "workspaces.workers.real-time-statistics"
    ),
    **_statistics(
        f"{W}/Workers/CumulativeStatistics", "workspaces.workers.cumulative-statistics"
    ),
    **_statistics(
        f"{W}/Workers/{{}}/Statistics", "workspaces.workers.instance-statistics"
    ),
    **_statistics(f"{W}/Workflows/{{}}/Statistics", "workspaces.workflows.statistics"),
    **_statistics(
        f"{W}/Workflows/{{}}/RealTimeStatistics",
        "workspaces.workflows.real-time-statistics",
    ),
    **_statistics(
        f"{W}/Workflows/{{}}/CumulativeStatistics",
        "workspaces.workflows.cumulative-statistics",
    ),
}

RESOURCES: frozenset[str] = frozenset(p.resource for p in OPERATIONS.values())

_PLACEHOLDER = re.compile(r"\{[^}/]*\}")


def normalize_template(route_template: str) -> str:
    """`/v1/Workspaces/{workspace_sid}/Tasks/{sid}` -> `/v1/Workspaces/{}/Tasks/{}`.

    Works for FastAPI route paths and OpenAPI paths alike: parameter names differ.
    """
    return _PLACEHOLDER.sub("{}", route_template.rstrip("/") or "/")


def required_permission(method: str, route_template: str) -> Permission | None:
    """The permission an operation needs; None for a path outside TaskRouter's API.

    `route_template` is the matched route's path with placeholders, e.g.
    `request.scope["route"].path`, not the concrete URL.
    """
    return OPERATIONS.get((method.upper(), normalize_template(route_template)))


# -- granted permissions ----------------------------------------------------------


@dataclass(frozen=True)
class _Grant:
    resource: str | None  # None = any resource
    below: bool  # True: `resource` is a prefix and only resources below it match
    action: str | None  # None = any action

    @property
    def exact(self) -> bool:
        return self.resource is not None and not self.below and self.action is not None

    def covers(self, needed: Permission) -> bool:
        if self.action is not None and self.action != needed.action:
            return False
        if self.resource is None:
            return True
        if self.below:
            return needed.resource.startswith(self.resource + ".")
        return needed.resource == self.resource


def _parse_one(text: str) -> _Grant:
    value = text.strip().lower()
    if not value.startswith(PREFIX):
        raise PermissionSyntaxError(
            f"Permission {text!r} must start with {PREFIX!r}", param="Permission"
        )
    rest = value[len(PREFIX) :]
    if rest == "*":
        return _Grant(None, False, None)
    resource, sep, action = rest.rpartition("/")
    if not sep or action not in (*ACTIONS, "*"):
        raise PermissionSyntaxError(
            f"Permission {text!r} must end in /read, /list, /create, /update, "
            "/delete or /*",
            param="Permission",
        )
    grant_action = None if action == "*" else action
    if resource == "*":
        return _Grant(None, False, grant_action)
    if resource.endswith(".*"):
        prefix = resource[:-2]
        if not any(r.startswith(prefix + ".") for r in RESOURCES):
            raise PermissionSyntaxError(
                f"Permission {text!r} names no TaskRouter resource below {prefix!r}",
                param="Permission",
            )
        return _Grant(prefix, True, grant_action)
    if resource not in RESOURCES:
        raise PermissionSyntaxError(
            f"Permission {text!r} names no TaskRouter resource {resource!r}",
            param="Permission",
        )
    return _Grant(resource, False, grant_action)


@dataclass(frozen=True)
class PermissionSet:
    """The parsed permissions of one restricted key; checks run without parsing."""

    permissions: tuple[str, ...]
    _exact: frozenset[Permission]
    _patterns: tuple[_Grant, ...]

    @classmethod
    def parse(cls, permissions: Iterable[str]) -> PermissionSet:
        """Parse and validate (1 to 100 permissions); raises PermissionSyntaxError."""
        texts = tuple(permissions)
        if not texts:
            raise PermissionSyntaxError(
                "A restricted API key needs at least one permission", param="Permission"
            )
        if len(texts) > MAX_PERMISSIONS:
            raise PermissionSyntaxError(
                f"A restricted API key has at most {MAX_PERMISSIONS} permissions, "
                f"not {len(texts)}",
                param="Permission",
            )
        grants = [_parse_one(text) for text in texts]
        exact = frozenset(
            Permission(g.resource, g.action)
            for g in grants
            if g.exact  # type: ignore[arg-type]
        )
        patterns = tuple(g for g in grants if not g.exact)
        normalized = tuple(text.strip().lower() for text in texts)
        return cls(normalized, exact, patterns)

    def allows(self, needed: Permission) -> bool:
        return needed in self._exact or any(g.covers(needed) for g in self._patterns)


def is_allowed(
    permissions: PermissionSet | Sequence[str] | None, resource: str, action: str
) -> bool:
    """True when `permissions` grant `action` on `resource`; None grants all."""
    if permissions is None:
        return True
    granted = (
        permissions
        if isinstance(permissions, PermissionSet)
        else PermissionSet.parse(permissions)
    )
    return granted.allows(Permission(resource, action))


def check_permission(
    permissions: PermissionSet | None, method: str, route_template: str, path: str
) -> None:
    """Raise KeyPermissionDeniedError unless the key may call this operation.

    A restricted key may call only operations of TaskRouter's API that its
    permissions name; anything else (a path outside the table) is refused.
    """
    if permissions is None:
        return
    needed = required_permission(method, route_template)
    if needed is None or not permissions.allows(needed):
        raise KeyPermissionDeniedError(needed, method.upper(), path)
