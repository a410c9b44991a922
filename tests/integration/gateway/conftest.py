"""A gateway process per test module, against the session's NATS and store.

Each module gets its own database and subject prefix. Tests drive it with the
official `twilio` client (`client`) or plain HTTP (`http`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from twilio.rest import Client

from services import devstack
from shared.sids import SidPrefix, new_sid


@dataclass
class RunningGateway:
    url: str
    account_sid: str
    auth_token: str
    env: dict[str, str]
    log: Path

    def client(self, account_sid: str | None = None, auth_token: str | None = None) -> Client:
        client = Client(account_sid or self.account_sid, auth_token or self.auth_token)
        client.taskrouter.base_url = self.url
        return client

    def http(self, auth: tuple[str, str] | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, auth=auth or (self.account_sid, self.auth_token), timeout=15
        )


def start_gateway(backends: dict[str, str], tmp: Path, **extra: str) -> tuple[
    devstack.ManagedProcess, RunningGateway
]:
    tag = uuid.uuid4().hex[:10]
    port = devstack.free_port()
    account_sid, auth_token = new_sid(SidPrefix.ACCOUNT), uuid.uuid4().hex
    env = {
        **backends,
        "MONGODB_DATABASE": f"gw_{tag}",
        "TASKROUTER_SUBJECT_PREFIX": f"gw{tag}",
        "TASKROUTER_HTTP_PORT": str(port),
        "TASKROUTER_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "TASKROUTER_ACCOUNT_SID": account_sid,
        "TASKROUTER_AUTH_TOKEN": auth_token,
        "TASKROUTER_LOG_LEVEL": "INFO",
        # The gateway runs alone: commands to absent services fail at once.
        "TASKROUTER_COMMAND_RESTART_WAIT": "0",
        **extra,
    }
    log = tmp / f"gateway-{tag}.log"
    process = devstack.start_service("services.gateway", env, log=log)
    try:
        devstack.wait_for_port(port, 60, process.process)
    except Exception:
        process.stop()
        raise RuntimeError(f"gateway did not start:\n{log.read_text()[-4000:]}") from None
    return process, RunningGateway(f"http://127.0.0.1:{port}", account_sid, auth_token, env, log)


@pytest.fixture(scope="module")
def gateway(
    backends: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    process, running = start_gateway(backends, tmp_path_factory.mktemp("gateway"))
    yield running
    process.stop()


@pytest.fixture(scope="module")
def client(gateway: RunningGateway) -> Client:
    return gateway.client()


@pytest.fixture(scope="module")
def http(gateway: RunningGateway) -> Iterator[httpx.Client]:
    with gateway.http() as session:
        yield session
