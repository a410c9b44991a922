"""Malformed requests, sent raw: each is answered with a 4xx in Twilio's error
shape naming the parameter at fault, and nothing in the workspace changes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import RunningSystem, eventually
from tests.e2e.operations.conftest import routing_to
from tests.e2e.operations.recorder import check_error_body

pytestmark = pytest.mark.e2e

LONG_NAME = "n" * 65
LONG_ATTRIBUTES = json.dumps({"x": "a" * 4089})  # 4097 characters
MISSING = {
    "WA": "WA" + "0" * 32,
    "WQ": "WQ" + "0" * 32,
    "WK": "WK" + "0" * 32,
    "WR": "WR" + "0" * 32,
}
SNAPSHOT_LISTS = (
    "Activities",
    "TaskChannels",
    "TaskQueues",
    "Workflows",
    "Workers",
    "Tasks",
)


@dataclass(frozen=True)
class Bad:
    """One malformed request: `path` under the workspace ('' is the workspace
    itself; '/v1/...' is absolute). `names` must appear in the error message."""

    method: str
    path: str
    names: str | None
    data: dict[str, Any] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    status: int = 400
    code: int = 20001
    json_body: bytes | None = None


def _expression(text: str) -> str:
    return json.dumps(
        {
            "task_routing": {
                "filters": [
                    {
                        "filter_friendly_name": "broken",
                        "expression": text,
                        "targets": [{"queue": "{queue}"}],
                    }
                ],
                "default_filter": {"queue": "{queue}"},
            }
        }
    )


CASES: dict[str, Bad] = {
    # A SID in the path that is malformed or unknown is an unknown resource.
    "path: malformed worker SID": Bad(
        "GET", "/Workers/WKnope", None, status=404, code=20404
    ),
    "path: malformed task SID": Bad(
        "POST", "/Tasks/not-a-sid", None, {"Priority": "1"}, status=404, code=20404
    ),
    "path: unknown activity": Bad(
        "POST",
        f"/Activities/{MISSING['WA']}",
        None,
        {"FriendlyName": "x"},
        status=404,
        code=20404,
    ),
    "path: wrong prefix": Bad(
        "DELETE", "/Workflows/{queue}", None, status=404, code=20404
    ),
    "path: malformed workspace": Bad(
        "GET", "/v1/Workspaces/WSxyz", None, status=404, code=20404
    ),
    "path: unknown reservation": Bad(
        "POST",
        f"/Tasks/{{task}}/Reservations/{MISSING['WR']}",
        None,
        {"ReservationStatus": "accepted"},
        status=404,
        code=20404,
    ),
    "path: unknown worker channel": Bad(
        "POST",
        "/Workers/{worker}/Channels/carrier-pigeon",
        None,
        {"Capacity": "2"},
        status=404,
        code=20404,
    ),
    # A SID in the body that is malformed or not in the workspace is a bad parameter.
    "body: malformed ActivitySid": Bad(
        "POST", "/Workers", "ActivitySid", {"FriendlyName": "a", "ActivitySid": "WA123"}
    ),
    "body: unknown ActivitySid": Bad(
        "POST", "/Workers/{worker}", "ActivitySid", {"ActivitySid": MISSING["WA"]}
    ),
    "body: malformed WorkflowSid": Bad(
        "POST", "/Tasks", "WorkflowSid", {"WorkflowSid": "WWbad"}
    ),
    "body: unknown TaskQueueSid": Bad(
        "POST", "/Tasks", "TaskQueueSid", {"TaskQueueSid": MISSING["WQ"]}
    ),
    "body: SID of another kind": Bad(
        "POST",
        "/TaskQueues",
        "ReservationActivitySid",
        {"FriendlyName": "q", "ReservationActivitySid": MISSING["WK"]},
    ),
    "body: malformed DefaultActivitySid": Bad(
        "POST", "", "DefaultActivitySid", {"DefaultActivitySid": "Offline"}
    ),
    "body: RoutingTarget not a target": Bad(
        "POST", "/Tasks", "RoutingTarget", {"RoutingTarget": "{task}"}
    ),
    "query: malformed WorkerSid": Bad(
        "GET", "/Tasks/{task}/Reservations", "WorkerSid", query={"WorkerSid": "bob"}
    ),
    # Wrong types.
    "type: Priority not a number": Bad(
        "POST", "/Tasks", "Priority", {"WorkflowSid": "{workflow}", "Priority": "high"}
    ),
    "type: negative Timeout": Bad(
        "POST", "/Tasks", "Timeout", {"WorkflowSid": "{workflow}", "Timeout": "-1"}
    ),
    "type: MaxReservedWorkers": Bad(
        "POST",
        "/TaskQueues",
        "MaxReservedWorkers",
        {"FriendlyName": "q", "MaxReservedWorkers": "abc"},
    ),
    "type: TaskReservationTimeout": Bad(
        "POST",
        "/Workflows/{workflow}",
        "TaskReservationTimeout",
        {"TaskReservationTimeout": "1.5"},
    ),
    "type: channel Capacity": Bad(
        "POST", "/Workers/{worker}/Channels/default", "Capacity", {"Capacity": "lots"}
    ),
    "type: channel Capacity too high": Bad(
        "POST", "/Workers/{worker}/Channels/default", "Capacity", {"Capacity": "51"}
    ),
    "type: MultiTaskEnabled": Bad(
        "POST",
        "/v1/Workspaces",
        "MultiTaskEnabled",
        {"FriendlyName": "x", "MultiTaskEnabled": "maybe"},
    ),
    "type: VirtualStartTime": Bad(
        "POST", "/Tasks/{task}", "VirtualStartTime", {"VirtualStartTime": "yesterday"}
    ),
    "type: PageSize zero": Bad("GET", "/Tasks", "PageSize", query={"PageSize": "0"}),
    "type: PageSize too big": Bad(
        "GET", "/Workers", "PageSize", query={"PageSize": "1001"}
    ),
    "type: Priority filter": Bad("GET", "/Tasks", "Priority", query={"Priority": "x"}),
    "type: Priority beyond 64 bits": Bad(
        "GET", "/Tasks", "Priority", query={"Priority": "9" * 23}
    ),
    "type: Page beyond range": Bad(
        "GET",
        "/Workers/{worker}/Reservations",
        "Page",
        query={"Page": "26730046542675168985088"},
    ),
    "type: PageToken not ours": Bad(
        "GET", "/Tasks", "PageToken", query={"PageToken": "PAgarbage!"}
    ),
    "type: Minutes negative": Bad(
        "GET", "/Statistics", "Minutes", query={"Minutes": "-5"}
    ),
    "type: SplitByWaitTime": Bad(
        "GET",
        "/CumulativeStatistics",
        "SplitByWaitTime",
        query={"SplitByWaitTime": "a,b"},
    ),
    "type: StartDate": Bad("GET", "/Events", "StartDate", query={"StartDate": "soon"}),
    "type: bulk statistics body": Bad(
        "POST", "/TaskQueues/RealTimeStatistics", "QueueSids", json_body=b"{not json"
    ),
    "type: bulk statistics SIDs": Bad(
        "POST",
        "/TaskQueues/RealTimeStatistics",
        "QueueSids",
        json_body=b'{"QueueSids": ["WQ1"]}',
    ),
    # JSON-in-string parameters.
    "json: Attributes not JSON": Bad(
        "POST", "/Workers", "Attributes", {"FriendlyName": "a", "Attributes": "{bad"}
    ),
    "json: Attributes not an object": Bad(
        "POST",
        "/Tasks",
        "Attributes",
        {"WorkflowSid": "{workflow}", "Attributes": "[1]"},
    ),
    "json: worker update Attributes": Bad(
        "POST", "/Workers/{worker}", "Attributes", {"Attributes": "not json"}
    ),
    "json: Configuration not JSON": Bad(
        "POST",
        "/Workflows",
        "Configuration",
        {"FriendlyName": "w", "Configuration": "{bad"},
    ),
    "json: Configuration without routing": Bad(
        "POST",
        "/Workflows/{workflow}",
        "Configuration",
        {"Configuration": '{"filters": []}'},
    ),
    "json: EvaluateWorkerAttributes": Bad(
        "GET",
        "/TaskQueues",
        "EvaluateWorkerAttributes",
        query={"EvaluateWorkerAttributes": "{bad"},
    ),
    # Unknown enumeration values.
    "enum: Template": Bad(
        "POST", "/v1/Workspaces", "Template", {"FriendlyName": "x", "Template": "GOLD"}
    ),
    "enum: PrioritizeQueueOrder": Bad(
        "POST", "", "PrioritizeQueueOrder", {"PrioritizeQueueOrder": "RANDOM"}
    ),
    "enum: TaskOrder": Bad(
        "POST", "/TaskQueues/{queue}", "TaskOrder", {"TaskOrder": "RANDOM"}
    ),
    "enum: AssignmentStatus update": Bad(
        "POST", "/Tasks/{task}", "AssignmentStatus", {"AssignmentStatus": "done"}
    ),
    "enum: AssignmentStatus filter": Bad(
        "GET", "/Tasks", "AssignmentStatus", query={"AssignmentStatus": "pending,done"}
    ),
    "enum: ReservationStatus filter": Bad(
        "GET",
        "/Workers/{worker}/Reservations",
        "ReservationStatus",
        query={"ReservationStatus": "maybe"},
    ),
    "enum: worker Ordering": Bad(
        "GET", "/Workers", "Ordering", query={"Ordering": "Age:asc"}
    ),
    "enum: task Ordering direction": Bad(
        "GET", "/Tasks", "Ordering", query={"Ordering": "Priority:up"}
    ),
    # Missing required parameters.
    "missing: workspace FriendlyName": Bad("POST", "/v1/Workspaces", "FriendlyName"),
    "missing: activity FriendlyName": Bad("POST", "/Activities", "FriendlyName"),
    "missing: worker FriendlyName": Bad(
        "POST", "/Workers", "FriendlyName", {"Attributes": "{}"}
    ),
    "missing: UniqueName": Bad(
        "POST", "/TaskChannels", "UniqueName", {"FriendlyName": "x"}
    ),
    "missing: Configuration": Bad(
        "POST", "/Workflows", "Configuration", {"FriendlyName": "w"}
    ),
    "missing: WorkflowSid": Bad("POST", "/Tasks", "WorkflowSid", {"Attributes": "{}"}),
    # Too long.
    "long: worker FriendlyName": Bad(
        "POST", "/Workers", "FriendlyName", {"FriendlyName": LONG_NAME}
    ),
    "long: queue FriendlyName": Bad(
        "POST", "/TaskQueues", "FriendlyName", {"FriendlyName": LONG_NAME}
    ),
    "long: workspace FriendlyName": Bad(
        "POST", "", "FriendlyName", {"FriendlyName": LONG_NAME}
    ),
    "long: worker Attributes": Bad(
        "POST",
        "/Workers",
        "Attributes",
        {"FriendlyName": "a", "Attributes": LONG_ATTRIBUTES},
    ),
    "long: task Attributes": Bad(
        "POST",
        "/Tasks",
        "Attributes",
        {"WorkflowSid": "{workflow}", "Attributes": LONG_ATTRIBUTES},
    ),
    "long: task update Attributes": Bad(
        "POST", "/Tasks/{task}", "Attributes", {"Attributes": LONG_ATTRIBUTES}
    ),
    # Invalid expressions: the message names the parameter and the position.
    "expression: TargetWorkers": Bad(
        "POST",
        "/TaskQueues",
        "TargetWorkers",
        {"FriendlyName": "q", "TargetWorkers": "skills HAS"},
    ),
    "expression: TargetWorkers update": Bad(
        "POST", "/TaskQueues/{queue}", "TargetWorkers", {"TargetWorkers": "1 == == 1"}
    ),
    "expression: workflow filter": Bad(
        "POST",
        "/Workflows",
        "Configuration",
        {"FriendlyName": "w", "Configuration": _expression("evel == 1 AND")},
    ),
    "expression: TargetWorkersExpression": Bad(
        "GET",
        "/Workers",
        "TargetWorkersExpression",
        query={"TargetWorkersExpression": "a =="},
    ),
    "expression: EvaluateTaskAttributes": Bad(
        "GET",
        "/Tasks",
        "EvaluateTaskAttributes",
        query={"EvaluateTaskAttributes": "(x"},
    ),
    # Duplicates.
    "duplicate: UniqueName": Bad(
        "POST",
        "/TaskChannels",
        "UniqueName",
        {"FriendlyName": "Again", "UniqueName": "voice"},
    ),
    "duplicate: worker FriendlyName": Bad(
        "POST", "/Workers", "'Existing'", {"FriendlyName": "Existing"}
    ),
    # Credentials, unknown paths and methods.
    "auth: wrong token": Bad("GET", "/Workers", None, status=401, code=20003),
    "route: unknown path": Bad("GET", "/Robots", None, status=404, code=20404),
    "route: method not allowed": Bad("DELETE", "/Events", None, status=405, code=20004),
}
POSITION_CASES = {
    name
    for name in CASES
    if name.startswith("expression: ")
    and "Target" in name
    or name == "expression: workflow filter"
}


@dataclass
class Target:
    base: str
    auth: tuple[str, str]
    sids: dict[str, str]
    http: httpx.Client


@pytest.fixture(scope="module")
def target(system: RunningSystem) -> Iterator[Target]:
    client = system.client()
    workspace = client.taskrouter.v1.workspaces.create(
        friendly_name=f"Malformed {uuid.uuid4().hex[:6]}"
    )
    ws = client.taskrouter.v1.workspaces(workspace.sid)
    queue = ws.task_queues.create(friendly_name="Nobody", target_workers="1==0")
    workflow = ws.workflows.create(
        friendly_name="One", configuration=routing_to(queue.sid)
    )
    ws.workflows.create(friendly_name="Two", configuration=routing_to(queue.sid))
    worker = ws.workers.create(friendly_name="Existing")
    task = ws.tasks.create(workflow_sid=workflow.sid)
    # Let routing settle, so the snapshots compare only what requests change.
    eventually(lambda: ws.tasks(task.sid).fetch().task_queue_sid == queue.sid)
    sids = {
        "queue": queue.sid,
        "workflow": workflow.sid,
        "worker": worker.sid,
        "task": task.sid,
        "ws": workspace.sid,
    }
    auth = (system.account_sid, system.auth_token)
    with httpx.Client(auth=auth) as http:
        yield Target(
            f"{system.base_url}/v1/Workspaces/{workspace.sid}", auth, sids, http
        )
    ws.delete()


def _fill(text: str, sids: dict[str, str]) -> str:
    for key, sid in sids.items():
        text = text.replace(f"{{{key}}}", sid)
    return text


def _snapshot(target: Target) -> dict[str, Any]:
    """Every object of the workspace (tasks without their ever-growing `age`)."""
    http = target.http
    state: dict[str, Any] = {"": http.get(target.base).json()}
    for name in SNAPSHOT_LISTS:
        body = http.get(f"{target.base}/{name}?PageSize=1000").json()
        state[name] = [
            {k: v for k, v in item.items() if k != "age"}
            for item in body[body["meta"]["key"]]
        ]
    workspaces = http.get(f"{target.base.rsplit('/', 1)[0]}?PageSize=1000").json()
    state["workspaces"] = sorted(w["sid"] for w in workspaces["workspaces"])
    return state


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_malformed_request_is_refused_and_changes_nothing(target: Target, case: Bad):
    before = _snapshot(target)
    path = _fill(case.path, target.sids)
    url = path and (
        f"{target.base.split('/v1/')[0]}{path}"
        if path.startswith("/v1/")
        else f"{target.base}{path}"
    )
    url = url or target.base
    auth = ("AC" + "0" * 32, "wrong") if case.status == 401 else target.auth
    data = {k: _fill(v, target.sids) for k, v in case.data.items()}
    if case.json_body is not None:
        response = target.http.request(
            case.method,
            url,
            auth=auth,
            content=case.json_body,
            headers={"Content-Type": "application/json"},
        )
    else:
        response = target.http.request(
            case.method, url, auth=auth, params=case.query, data=data or None
        )

    body = response.json()
    assert (response.status_code, body.get("code")) == (case.status, case.code), body
    check_error_body(body, case.status)
    if case.names is not None:
        assert case.names in body["message"], body["message"]
    name = next(n for n, c in CASES.items() if c is case)
    if name in POSITION_CASES:
        assert "position" in body["message"], body["message"]
    assert _snapshot(target) == before
