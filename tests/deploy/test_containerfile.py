"""The container image recipe, checked by reading (no container engine runs here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.deploy

ROOT = Path(__file__).resolve().parents[2]
CONTAINERFILE = (ROOT / "Containerfile").read_text()
INSTRUCTIONS = [
    line.strip()
    for line in re.sub(r"\\\n", " ", CONTAINERFILE).splitlines()
    if line.strip() and not line.lstrip().startswith("#")
]


def _instructions(name: str) -> list[str]:
    return [line for line in INSTRUCTIONS if line.split()[0] == name]


def test_base_image_is_python_311_slim_pinned_by_tag():
    (default,) = [line for line in _instructions("ARG") if "PYTHON_IMAGE=" in line]
    image = default.split("=", 1)[1]

    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", image)
    assert [line.split()[1] for line in _instructions("FROM")] == [
        "${PYTHON_IMAGE}"
    ] * 2


def test_build_is_multi_stage_and_installs_without_dev_extras():
    stages = [line.split()[-1] for line in _instructions("FROM")]
    (install,) = [line for line in _instructions("RUN") if "pip install" in line]

    assert stages == ["build", "runtime"]
    assert "pip install ." in install and "[dev]" not in install
    assert (
        _instructions("COPY")[-1] == "COPY --from=build /opt/taskrouter /opt/taskrouter"
    )


def test_runtime_runs_as_a_numeric_non_root_user_and_picks_the_service_by_command():
    users = _instructions("USER")

    assert users[-1] == "USER 10001:10001"
    assert INSTRUCTIONS.index(users[-1]) > INSTRUCTIONS.index(
        "FROM ${PYTHON_IMAGE} AS runtime"
    )
    assert _instructions("ENTRYPOINT") == ['ENTRYPOINT ["python", "-m"]']
    assert _instructions("CMD") == ['CMD ["services.gateway"]']


def test_no_settings_or_secrets_are_baked_in():
    baked = " ".join(_instructions("ENV") + _instructions("ARG"))

    for word in (
        "SECRET",
        "TOKEN",
        "PASSWORD",
        "MONGODB_URL",
        "NATS_URL",
        "ACCOUNT_SID",
    ):
        assert word not in baked.upper()


def test_build_context_is_an_allow_list_without_local_data():
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    assert lines[0] == "*"
    included = {line[1:] for line in lines if line.startswith("!")}
    assert included == {"pyproject.toml", "README.md", "services", "shared"}
