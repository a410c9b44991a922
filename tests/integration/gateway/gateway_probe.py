"""Helpers of the gateway identity tests: real gateway processes, the admin tool,
and every operation of the OpenAPI contract turned into a concrete request.

Not a test module (no `test_` prefix); imported as `tests.integration.gateway.gateway_probe`.
"""

from __future__ import annotations

from tests.polling import eventually  # noqa: F401  (used by the gateway tests)

import io
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import httpx

from services import devstack
from services.gateway.admin import run as admin_run
from shared.settings import CommonSettings, load
from shared.sids import SidPrefix, new_sid, worker_channel_sid

CONTRACT = Path("/work/shared/reference/twilio_taskrouter_v1.json")
SECRET_KEY = "identity-probe-secret-key"

# Which kind of SID a path parameter holds. `Sid` depends on the collection
# segment in front of it; the others are named after their resource.
_NAMED = {
    "WorkspaceSid": SidPrefix.WORKSPACE,
    "TaskQueueSid": SidPrefix.TASK_QUEUE,
    "TaskSid": SidPrefix.TASK,
    "WorkerSid": SidPrefix.WORKER,
    "WorkflowSid": SidPrefix.WORKFLOW,
}
_COLLECTION = {
    "Workspaces": SidPrefix.WORKSPACE,
    "Activities": SidPrefix.ACTIVITY,
    "Events": SidPrefix.EVENT,
    "Tasks": SidPrefix.TASK,
    "TaskChannels": SidPrefix.TASK_CHANNEL,
    "TaskQueues": SidPrefix.TASK_QUEUE,
    "Reservations": SidPrefix.RESERVATION,
    "Workers": SidPrefix.WORKER,
    "Channels": SidPrefix.WORKER_CHANNEL,
    "Workflows": SidPrefix.WORKFLOW,
}
_PARAM = re.compile(r"\{([^}]+)\}")


@dataclass(frozen=True)
class Operation:
    """One operation of the contract: method, path template and operationId."""

    method: str
    path: str
    operation_id: str

    def parameters(self) -> list[tuple[str, str]]:
        """(parameter name, SID prefix) of each path parameter, in order."""
        segments = self.path.split("/")
        found = []
        for index, segment in enumerate(segments):
            match = _PARAM.fullmatch(segment)
            if match is None:
                continue
            name = match.group(1)
            prefix = _NAMED.get(name) or _COLLECTION[segments[index - 1]]
            found.append((name, str(prefix)))
        return found

    def url(self, sid_of: Callable[[str, str], str]) -> str:
        """The path with each parameter filled by `sid_of(name, prefix)`."""
        values = {name: sid_of(name, prefix) for name, prefix in self.parameters()}
        return _PARAM.sub(lambda m: values[m.group(1)], self.path)

    @property
    def is_bulk_statistics(self) -> bool:
        return self.operation_id == "CreateTaskQueueBulkRealTimeStatistics"

    def __str__(self) -> str:
        return f"{self.method} {self.path} ({self.operation_id})"


@cache
def contract_operations() -> tuple[Operation, ...]:
    """Every operation of the OpenAPI document (61)."""
    document = json.loads(CONTRACT.read_text())
    return tuple(
        Operation(method.upper(), path, item[method]["operationId"])
        for path, item in document["paths"].items()
        for method in ("get", "post", "delete")
        if method in item
    )


# A plausible body per operation, so a request gets past parameter checks and
# reaches the lookup of the objects it names.
_BODIES: dict[str, dict[str, str]] = {
    "CreateWorkspace": {"FriendlyName": "probe"},
    "UpdateWorkspace": {"FriendlyName": "probe-renamed"},
    "CreateActivity": {"FriendlyName": "probe", "Available": "true"},
    "UpdateActivity": {"FriendlyName": "probe-renamed"},
    "CreateTaskChannel": {"FriendlyName": "probe", "UniqueName": "probe"},
    "UpdateTaskChannel": {"FriendlyName": "probe-renamed"},
    "CreateTaskQueue": {"FriendlyName": "probe"},
    "UpdateTaskQueue": {"FriendlyName": "probe-renamed"},
    "CreateWorkflow": {
        "FriendlyName": "probe",
        "Configuration": json.dumps({"task_routing": {"filters": []}}),
    },
    "UpdateWorkflow": {"FriendlyName": "probe-renamed"},
    "CreateWorker": {"FriendlyName": "probe"},
    "UpdateWorker": {"Attributes": "{}"},
    "CreateTask": {"Attributes": "{}"},
    "UpdateTask": {"Priority": "1"},
    "UpdateWorkerChannel": {"Capacity": "2"},
    "UpdateTaskReservation": {"ReservationStatus": "accepted"},
    "UpdateWorkerReservation": {"ReservationStatus": "accepted"},
}


def send(
    http: httpx.Client,
    operation: Operation,
    url: str,
    auth: tuple[str, str] | None,
) -> httpx.Response:
    """Send `operation` to `url` with a plausible body; `auth` None sends none."""
    kwargs: dict[str, Any] = {}
    if operation.is_bulk_statistics:
        kwargs["json"] = {"QueueSids": []}
    elif operation.method == "POST":
        kwargs["data"] = _BODIES.get(operation.operation_id, {})
    if auth is not None:
        kwargs["auth"] = auth
    return http.request(operation.method, url, **kwargs)


def random_sid(name: str, prefix: str) -> str:
    """A well-formed SID of `prefix` naming nothing."""
    if prefix == SidPrefix.WORKER_CHANNEL:
        return worker_channel_sid(
            new_sid(SidPrefix.WORKER), new_sid(SidPrefix.TASK_CHANNEL)
        )
    return new_sid(prefix)


def assert_twilio_error(
    response: httpx.Response, status: int, code: int, what: str
) -> dict:
    """The answer is Twilio's error body with `status` and `code`; returns it."""
    assert response.status_code == status, (
        f"{what}: expected {status}, got {response.status_code} {response.text[:300]}"
    )
    body = response.json()
    assert set(body) >= {"code", "message", "more_info", "status"}, f"{what}: {body}"
    assert body["code"] == code and body["status"] == status, f"{what}: {body}"
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}", (
        f"{what}: {body}"
    )
    assert isinstance(body["message"], str) and body["message"], f"{what}: {body}"
    return body


# -- processes and the admin tool ----------------------------------------------------


def gateway_env(
    isolated_env: Mapping[str, str], account_sid: str, auth_token: str, **extra: str
) -> dict[str, str]:
    """Settings shared by every gateway of one test (same store, prefix, account)."""
    return {
        **isolated_env,
        "TASKROUTER_ACCOUNT_SID": account_sid,
        "TASKROUTER_AUTH_TOKEN": auth_token,
        "TASKROUTER_SECRET_KEY": SECRET_KEY,
        **extra,
    }


def start_gateway_process(
    env: Mapping[str, str], log: Path
) -> tuple[devstack.ManagedProcess, str]:
    """One `python -m services.gateway` on a free port; waits for the port (not
    /healthz, which stays 503 while the other services are not running)."""
    port = devstack.free_port()
    url = f"http://127.0.0.1:{port}"
    process = devstack.start_service(
        "services.gateway",
        {**env, "TASKROUTER_HTTP_PORT": str(port), "TASKROUTER_PUBLIC_URL": url},
        log=log,
    )
    try:
        devstack.wait_for_port(port, 60, process.process)
    except (RuntimeError, TimeoutError):  # the process died, or never listened
        process.stop()
        raise RuntimeError(
            f"gateway did not start:\n{log.read_text()[-4000:]}"
        ) from None
    return process, url


def new_account() -> tuple[str, str]:
    """A fresh bootstrap account SID and auth token."""
    return new_sid(SidPrefix.ACCOUNT), uuid.uuid4().hex


def admin_settings(env: Mapping[str, str]) -> CommonSettings:
    return load(CommonSettings, dict(env))


async def admin(settings: CommonSettings, *argv: str) -> Any:
    """Run one admin command in-process; its JSON output, or AssertionError."""
    out, err = io.StringIO(), io.StringIO()
    status = await admin_run(argv, settings, out, err)
    assert status == 0, f"admin {argv} failed: {err.getvalue()}"
    return json.loads(out.getvalue())
