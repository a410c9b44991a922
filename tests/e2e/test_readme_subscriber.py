"""The README's example NATS subscriber, run as a newcomer would, sees a task's events."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import RunningSystem, eventually

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"


def subscriber_script(system: RunningSystem, workspace_sid: str) -> str:
    block = re.search(r"```python\n(# subscribe\.py.*?)```", README.read_text(), re.S)
    assert block, "README has no subscribe.py example"
    script = block.group(1)
    prefix = system.env["TASKROUTER_SUBJECT_PREFIX"]
    script = script.replace("nats://127.0.0.1:4222", system.env["NATS_URL"])
    script = script.replace("taskrouter.events.AC….WS….>", f"{prefix}.events.{system.account_sid}.{workspace_sid}.>")
    return script.replace("asyncio.run(main())", "asyncio.run(main(seconds=15))")


def test_readme_subscriber_prints_the_events_of_a_task(system: RunningSystem):
    client = system.client()
    workspace = client.taskrouter.v1.workspaces.create(friendly_name="Subscribed", template="FIFO")
    ws = client.taskrouter.v1.workspaces(workspace.sid)
    process = subprocess.Popen(
        [sys.executable, "-c", subscriber_script(system, workspace.sid)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout.readline().strip() == "subscribed"
        task = ws.tasks.create(attributes=json.dumps({"type": "support"}))
        eventually(lambda: ws.tasks(task.sid).fetch().task_queue_sid)
        seen: list[str] = []

        def task_queue_entered_printed() -> bool:
            line = process.stdout.readline().strip()
            seen.append(line)
            return line == f"task-queue.entered {task.sid}"

        eventually(task_queue_entered_printed, timeout=15, interval=0)
        assert f"task.created {task.sid}" in seen
    finally:
        process.kill()
        process.wait()
