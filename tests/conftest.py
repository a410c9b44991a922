"""Back-ends for integration and end-to-end tests: real NATS, a real store.

Order of choice: URLs from the environment (NATS_URL, MONGODB_URL), then
testcontainers where a Docker engine answers, then local processes started the
same way `make run` starts them. Each test gets its own database and its own
subject prefix, so tests never see each other's state or messages.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from services import devstack


def _docker_answers() -> bool:
    if not Path("/var/run/docker.sock").exists() and not os.environ.get("DOCKER_HOST"):
        return False
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


def _nats_url(stack: ExitStack, tmp: Path) -> str:
    if url := os.environ.get("NATS_URL"):
        return url
    if _docker_answers():
        from testcontainers.nats import NatsContainer

        container = stack.enter_context(NatsContainer("nats:2.11", jetstream=True))
        return container.nats_uri()
    process, url = devstack.start_nats(tmp / "nats", log=tmp / "nats.log")
    stack.callback(process.stop)
    return url


def _mongodb_url(stack: ExitStack, tmp: Path) -> str:
    if url := os.environ.get("MONGODB_URL"):
        return url
    if _docker_answers():
        from testcontainers.mongodb import MongoDbContainer

        container = stack.enter_context(MongoDbContainer("mongo:8", replica_set=True))
        return container.get_connection_url()
    process, url = devstack.start_store(tmp / "store", log=tmp / "store.log")
    stack.callback(process.stop)
    return url


@pytest.fixture(scope="session")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """NATS and MongoDB URLs shared by the whole session."""
    tmp = tmp_path_factory.mktemp("backends")
    with ExitStack() as stack:
        yield {"NATS_URL": _nats_url(stack, tmp), "MONGODB_URL": _mongodb_url(stack, tmp)}


@pytest.fixture
def isolated_env(backends: dict[str, str]) -> dict[str, str]:
    """Settings for one test: its own database and its own subject prefix."""
    tag = uuid.uuid4().hex[:10]
    return {
        **backends,
        "MONGODB_DATABASE": f"t_{tag}",
        "TASKROUTER_SUBJECT_PREFIX": f"t{tag}",
        "TASKROUTER_LOG_LEVEL": "INFO",
        # Services these tests leave out answer "no responders" at once, not after 10 s.
        "TASKROUTER_COMMAND_RESTART_WAIT": "0",
    }
