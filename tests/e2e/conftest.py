"""The whole system as `make run` starts it: five service processes, real back-ends."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from twilio.rest import Client

from services import devstack
from services.__main__ import start_stack, wait_healthy
from shared.sids import SidPrefix, new_sid
from tests.polling import eventually  # noqa: F401  (re-exported for the e2e tests)


@dataclass
class RunningSystem:
    base_url: str
    account_sid: str
    auth_token: str
    env: dict[str, str]
    stack: devstack.Stack
    logs: Path

    def client(self) -> Client:
        client = Client(self.account_sid, self.auth_token)
        client.taskrouter.base_url = self.base_url
        return client

    def restart(self, service: str) -> None:
        """Kill one service process hard and start it again."""
        index = next(i for i, p in enumerate(self.stack.processes) if p.name == service)
        self.stack.processes[index].kill()
        module = next(m for m in devstack.SERVICE_MODULES if m.endswith(service))
        self.stack.processes[index] = devstack.start_service(
            module, self.stack.env, self.logs / f"{service}.log"
        )
        wait_healthy(self.base_url)


@pytest.fixture(scope="session")
def system(backends, tmp_path_factory) -> Iterator[RunningSystem]:
    data_dir = tmp_path_factory.mktemp("system")
    port = devstack.free_port()
    tag = secrets.token_hex(5)
    env = {
        **backends,
        "MONGODB_DATABASE": f"e2e_{tag}",
        "TASKROUTER_SUBJECT_PREFIX": f"e2e{tag}",
        "TASKROUTER_HTTP_PORT": str(port),
        "TASKROUTER_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "TASKROUTER_ACCOUNT_SID": new_sid(SidPrefix.ACCOUNT),
        "TASKROUTER_AUTH_TOKEN": secrets.token_hex(16),
        "TASKROUTER_WEBHOOK_ALLOW_PRIVATE": "true",
        # The suite sends bursts (schemathesis, paging); rate limits have their own tests.
        "TASKROUTER_RATE_LIMIT_PER_SECOND": "5000",
    }
    stack = start_stack(data_dir, env)
    try:
        wait_healthy(env["TASKROUTER_PUBLIC_URL"])
        yield RunningSystem(
            base_url=env["TASKROUTER_PUBLIC_URL"],
            account_sid=env["TASKROUTER_ACCOUNT_SID"],
            auth_token=env["TASKROUTER_AUTH_TOKEN"],
            env=stack.env,
            stack=stack,
            logs=data_dir / "logs",
        )
    finally:
        stack.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """On a failed end-to-end test, add the services' recent warnings to its report.

    The stack runs in other processes, so without this a failure in CI shows
    only the test's side; the log lines usually say what went wrong.
    """
    report = yield
    running = getattr(item, "funcargs", {}).get("system")
    if report.failed and call.when == "call" and isinstance(running, RunningSystem):
        report.sections.append(("services' warnings and errors", _log_excerpt(running.logs)))
    return report


def _log_excerpt(logs: Path, per_file: int = 15) -> str:
    lines = []
    for path in sorted(logs.glob("*.log")):
        noteworthy = [
            line[:600]
            for line in path.read_text(errors="replace").splitlines()
            if '"level":"WARNING"' in line or '"level":"ERROR"' in line
        ]
        lines.append(f"--- {path.name}: {len(noteworthy)} warnings/errors, last {per_file}")
        lines.extend(noteworthy[-per_file:])
    return "\n".join(lines)
