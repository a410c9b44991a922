"""Restricted-key permissions: the operation table against the OpenAPI, the grammar."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.gateway.permissions import (
    MAX_PERMISSIONS,
    OPERATIONS,
    KeyPermissionDeniedError,
    Permission,
    PermissionSet,
    PermissionSyntaxError,
    check_permission,
    is_allowed,
    normalize_template,
    required_permission,
)

OPENAPI = Path("/work/shared/reference/twilio_taskrouter_v1.json")
STATISTICS = ("Statistics", "RealTimeStatistics", "CumulativeStatistics")

# Twilio's TaskRouter permission names (Console / Key resource v1), as listed by
# third-party code; written out here independently of the module's table.
TWILIO_PERMISSIONS = (
    {"workspaces/" + a for a in ("read", "list", "create", "update", "delete")}
    | {
        f"workspaces.{r}/{a}"
        for r in (
            "activities",
            "task-channels",
            "task-queues",
            "workflows",
            "workers",
            "tasks",
        )
        for a in ("read", "list", "create", "update", "delete")
    }
    | {
        "workspaces.events/read",
        "workspaces.events/list",
        "workspaces.workers.channels/read",
        "workspaces.workers.channels/list",
        "workspaces.workers.channels/update",
        "workspaces.workers.reservations/read",
        "workspaces.workers.reservations/list",
        "workspaces.workers.reservations/update",
        "workspaces.tasks.reservations/read",
        "workspaces.tasks.reservations/list",
        "workspaces.tasks.reservations/update",
        "workspaces.statistics/list",
        "workspaces.real-time-statistics/list",
        "workspaces.cumulative-statistics/list",
        "workspaces.task-queues.statistics/list",
        "workspaces.task-queues.instance-statistics/list",
        "workspaces.task-queue.real-time-statistics/list",
        "workspaces.task-queues.cumulative-statistics/list",
        "workspaces.task-queue.bulk-real-time-statistics/list",
        "workspaces.workers.statistics/list",
        "workspaces.workers.real-time-statistics/list",
        "workspaces.workers.cumulative-statistics/list",
        "workspaces.workers.instance-statistics/list",
        "workspaces.workflows.statistics/list",
        "workspaces.workflows.real-time-statistics/list",
        "workspaces.workflows.cumulative-statistics/list",
    }
)


def _openapi_operations() -> list[tuple[str, str, str]]:
    spec = json.loads(OPENAPI.read_text())
    return [
        (method.upper(), path, operation["operationId"])
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in ("get", "post", "delete", "put", "patch")
    ]


def _expected_action(method: str, path: str) -> str:
    """The action the operation's shape implies (statistics are always `list`)."""
    last = path.rstrip("/").rsplit("/", 1)[-1]
    if last in STATISTICS:
        return "list"
    instance = last.startswith("{")
    return {
        ("GET", True): "read",
        ("GET", False): "list",
        ("POST", False): "create",
        ("POST", True): "update",
        ("DELETE", True): "delete",
    }[method, instance]


def test_openapi_document_has_61_operations():
    assert len(_openapi_operations()) == 61


@pytest.mark.parametrize(
    ("method", "path"),
    [(m, p) for m, p, _ in _openapi_operations()],
    ids=[op for _, _, op in _openapi_operations()],
)
def test_required_permission_maps_every_openapi_operation(method: str, path: str):
    needed = required_permission(method, path)

    assert needed is not None
    assert needed.action == _expected_action(method, path)
    assert f"{needed.resource}/{needed.action}" in TWILIO_PERMISSIONS


def test_operation_table_holds_exactly_the_openapi_operations():
    from_spec = {(m, normalize_template(p)) for m, p, _ in _openapi_operations()}

    assert set(OPERATIONS) == from_spec
    assert {
        f"{p.resource}/{p.action}" for p in OPERATIONS.values()
    } == TWILIO_PERMISSIONS


@pytest.mark.parametrize(
    ("method", "template", "expected"),
    [
        (
            "GET",
            "/v1/Workspaces/{workspace_sid}/Tasks/{sid}",
            Permission("workspaces.tasks", "read"),
        ),
        (
            "post",
            "/v1/Workspaces/{workspace_sid}/Tasks",
            Permission("workspaces.tasks", "create"),
        ),
        ("POST", "/v1/Workspaces/{sid}", Permission("workspaces", "update")),
        (
            "GET",
            "/v1/Workspaces/{workspace_sid}/TaskQueues/Statistics",
            Permission("workspaces.task-queues.statistics", "list"),
        ),
        (
            "POST",
            "/v1/Workspaces/{workspace_sid}/Workers/{worker_sid}/Channels/{sid}",
            Permission("workspaces.workers.channels", "update"),
        ),
        (
            "GET",
            "/v1/Workspaces/{workspace_sid}/Tasks/{sid}/",
            Permission("workspaces.tasks", "read"),
        ),
    ],
    ids=[
        "fetch-task",
        "create-task-lower-method",
        "update-workspace",
        "queues-statistics",
        "update-worker-channel",
        "trailing-slash",
    ],
)
def test_required_permission_reads_fastapi_route_templates(method, template, expected):
    assert required_permission(method, template) == expected


@pytest.mark.parametrize(
    ("method", "template"),
    [
        ("GET", "/healthz"),
        ("PUT", "/v1/Workspaces/{sid}"),
        ("DELETE", "/v1/Workspaces"),
    ],
    ids=["outside-api", "put-not-an-operation", "delete-collection"],
)
def test_required_permission_is_none_outside_the_api(method, template):
    assert required_permission(method, template) is None


@pytest.mark.parametrize(
    ("granted", "resource", "action", "allowed"),
    [
        (
            ["/twilio/taskrouter/workspaces.tasks/create"],
            "workspaces.tasks",
            "create",
            True,
        ),
        (
            ["/twilio/taskrouter/workspaces.tasks/create"],
            "workspaces.tasks",
            "update",
            False,
        ),
        (
            ["/twilio/taskrouter/workspaces.tasks/create"],
            "workspaces.tasks.reservations",
            "create",
            False,
        ),
        (
            ["/twilio/taskrouter/workspaces.workers/*"],
            "workspaces.workers",
            "delete",
            True,
        ),
        (
            ["/twilio/taskrouter/workspaces.workers/*"],
            "workspaces.workers.channels",
            "list",
            False,
        ),
        (
            ["/twilio/taskrouter/workspaces.workers.*/list"],
            "workspaces.workers.channels",
            "list",
            True,
        ),
        (
            ["/twilio/taskrouter/workspaces.workers.*/list"],
            "workspaces.workers.statistics",
            "list",
            True,
        ),
        (
            ["/twilio/taskrouter/workspaces.workers.*/list"],
            "workspaces.workers",
            "list",
            False,
        ),
        (
            ["/twilio/taskrouter/workspaces.workers.*/list"],
            "workspaces.workers.channels",
            "update",
            False,
        ),
        (
            ["/twilio/taskrouter/workspaces.*/*"],
            "workspaces.tasks.reservations",
            "update",
            True,
        ),
        (["/twilio/taskrouter/workspaces.*/*"], "workspaces", "read", False),
        (["/twilio/taskrouter/*/read"], "workspaces.events", "read", True),
        (["/twilio/taskrouter/*/read"], "workspaces.events", "list", False),
        (["/twilio/taskrouter/*"], "workspaces", "delete", True),
        (["  /TWILIO/TaskRouter/Workspaces/READ "], "workspaces", "read", True),
        (
            [
                "/twilio/taskrouter/workspaces/read",
                "/twilio/taskrouter/workspaces.tasks/list",
            ],
            "workspaces.tasks",
            "list",
            True,
        ),
        (None, "workspaces", "delete", True),
    ],
    ids=[
        "exact",
        "exact-other-action",
        "exact-not-subresource",
        "action-wildcard",
        "action-wildcard-not-subresource",
        "prefix-child",
        "prefix-grandchild-stats",
        "prefix-excludes-itself",
        "prefix-other-action",
        "prefix-everything-below",
        "prefix-not-workspaces",
        "any-resource-read",
        "any-resource-other-action",
        "everything",
        "case-and-blanks",
        "second-of-two",
        "standard-key",
    ],
)
def test_is_allowed(granted, resource, action, allowed):
    assert is_allowed(granted, resource, action) is allowed


@pytest.mark.parametrize(
    "text",
    [
        "/taskrouter/workspaces/read",
        "/twilio/taskrouter/workspaces/fetch",
        "/twilio/taskrouter/workspaces",
        "/twilio/taskrouter/workspace.tasks/read",
        "/twilio/taskrouter/tasks.*/read",
        "/twilio/messaging/messages/read",
        "/twilio/taskrouter/",
    ],
    ids=[
        "no-twilio-prefix",
        "unknown-action",
        "no-action",
        "typo-resource",
        "unknown-prefix",
        "other-product",
        "empty",
    ],
)
def test_permission_set_refuses_malformed_permissions(text):
    with pytest.raises(PermissionSyntaxError):
        PermissionSet.parse([text])


def test_permission_set_holds_at_most_100_permissions():
    one = "/twilio/taskrouter/workspaces/read"
    assert (
        len(PermissionSet.parse([one] * MAX_PERMISSIONS).permissions) == MAX_PERMISSIONS
    )
    with pytest.raises(PermissionSyntaxError, match="at most 100"):
        PermissionSet.parse([one] * (MAX_PERMISSIONS + 1))


def test_permission_set_refuses_empty_list():
    with pytest.raises(PermissionSyntaxError):
        PermissionSet.parse([])


def test_check_permission_refuses_outside_grant_with_the_needed_permission():
    granted = PermissionSet.parse(["/twilio/taskrouter/workspaces.tasks/read"])
    template = "/v1/Workspaces/{workspace_sid}/Tasks"

    check_permission(granted, "GET", "/v1/Workspaces/{workspace_sid}/Tasks/{sid}", "/x")
    with pytest.raises(KeyPermissionDeniedError) as caught:
        check_permission(granted, "POST", template, "/v1/Workspaces/WS1/Tasks")

    assert caught.value.needed == Permission("workspaces.tasks", "create")
    assert "/twilio/taskrouter/workspaces.tasks/create" in caught.value.message


def test_check_permission_outside_the_api_refuses_restricted_passes_standard():
    granted = PermissionSet.parse(["/twilio/taskrouter/*"])

    with pytest.raises(KeyPermissionDeniedError):
        check_permission(granted, "GET", "/v1/Extensions/{x}", "/v1/Extensions/1")
    check_permission(None, "GET", "/v1/Extensions/{x}", "/v1/Extensions/1")
