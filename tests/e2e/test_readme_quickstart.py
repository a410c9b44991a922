"""The README's quickstart, pasted as a newcomer would, against the running system."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import RunningSystem

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"


def quickstart_script(system: RunningSystem) -> str:
    text = README.read_text()
    block = re.search(r"```python\n(.*?)```", text, re.S)
    assert block, "README has no python quickstart block"
    script = block.group(1)
    assert 'Client("AC…", "…")' in script and "http://127.0.0.1:8080" in script
    script = script.replace('Client("AC…", "…")', f'Client("{system.account_sid}", "{system.auth_token}")')
    return script.replace("http://127.0.0.1:8080", system.base_url)


def test_readme_quickstart_runs_to_completion(system: RunningSystem):
    run = subprocess.run(
        [sys.executable, "-c", quickstart_script(system)],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "offered to Alice"
    printed = [line.split()[-1] for line in lines[1:]]
    assert printed[0] == "task.created"
    assert {"reservation.created", "reservation.accepted", "task.completed"} <= set(printed)
