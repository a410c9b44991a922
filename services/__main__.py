"""`python -m services` (what `make run` calls): the whole system on this machine.

Starts nats-server with JetStream and the secantusdb store (unless NATS_URL or
MONGODB_URL name servers to use), then the five services as separate processes,
restarts any service that dies, prints the base URL and credentials once the
gateway's /healthz says every service is ready, and stops everything on Ctrl-C.
State lives under `.data/` (or TASKROUTER_DATA_DIR), so a restart keeps it.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
import time
from pathlib import Path

import httpx

from services import devstack
from shared.sids import SidPrefix, new_sid


def _credentials(data_dir: Path) -> tuple[str, str]:
    """The bootstrap account: from the environment, else kept in `.data/`."""
    sid = os.environ.get("TASKROUTER_ACCOUNT_SID")
    token = os.environ.get("TASKROUTER_AUTH_TOKEN")
    if sid and token:
        return sid, token
    path = data_dir / "credentials.json"
    if path.exists():
        saved = json.loads(path.read_text())
        return saved["account_sid"], saved["auth_token"]
    sid, token = new_sid(SidPrefix.ACCOUNT), secrets.token_hex(16)
    path.write_text(json.dumps({"account_sid": sid, "auth_token": token}))
    path.chmod(0o600)
    return sid, token


def _secret_key(data_dir: Path) -> str:
    if key := os.environ.get("TASKROUTER_SECRET_KEY"):
        return key
    path = data_dir / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def start_stack(data_dir: Path, env_overrides: dict[str, str] | None = None) -> devstack.Stack:
    """Back-ends (unless given by URL) and the five services; returns when healthy."""
    env_overrides = env_overrides or {}
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stack = devstack.Stack()
    nats_url = env_overrides.get("NATS_URL") or os.environ.get("NATS_URL")
    if not nats_url:
        port = int(os.environ.get("TASKROUTER_NATS_PORT", "4222"))
        devstack.require_free_port(port, "nats-server", "TASKROUTER_NATS_PORT or NATS_URL")
        process, nats_url = devstack.start_nats(data_dir / "nats", port, logs / "nats.log")
        stack.processes.append(process)
    mongodb_url = env_overrides.get("MONGODB_URL") or os.environ.get("MONGODB_URL")
    if not mongodb_url:
        port = int(os.environ.get("TASKROUTER_STORE_PORT", "27017"))
        devstack.require_free_port(port, "the store", "TASKROUTER_STORE_PORT or MONGODB_URL")
        process, mongodb_url = devstack.start_store(data_dir / "store", port, logs / "store.log")
        stack.processes.append(process)
    http_port = int(env_overrides.get("TASKROUTER_HTTP_PORT") or os.environ.get("TASKROUTER_HTTP_PORT", "8080"))
    devstack.require_free_port(http_port, "the gateway", "TASKROUTER_HTTP_PORT")
    account_sid, auth_token = _credentials(data_dir)
    stack.env = {
        "NATS_URL": nats_url,
        "MONGODB_URL": mongodb_url,
        "TASKROUTER_HTTP_PORT": str(http_port),
        "TASKROUTER_PUBLIC_URL": os.environ.get(
            "TASKROUTER_PUBLIC_URL", f"http://127.0.0.1:{http_port}"
        ),
        "TASKROUTER_ACCOUNT_SID": account_sid,
        "TASKROUTER_AUTH_TOKEN": auth_token,
        "TASKROUTER_SECRET_KEY": _secret_key(data_dir),
        **env_overrides,
    }
    for module in devstack.SERVICE_MODULES:
        name = module.rsplit(".", 1)[-1]
        stack.processes.append(devstack.start_service(module, stack.env, logs / f"{name}.log"))
    return stack


def wait_healthy(base_url: str, timeout: float = 120.0) -> None:
    """Poll the gateway's /healthz until every service is ready."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(f"{base_url}/healthz", timeout=2)
            if answer.status_code == 200:
                return
            last = answer.text
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.2)
    raise TimeoutError(f"the system did not become ready: {last}")


# A restarted service that ran this long is back to the shortest restart delay.
STABLE_SECONDS = 60.0


def restart_delay(previous: float | None, ran_for: float) -> float:
    """Seconds before restarting a service that exited after running `ran_for` s.

    1 s, doubling up to 30 s while it keeps exiting soon after each start; back
    to 1 s once it ran for `STABLE_SECONDS`.
    """
    if previous is None or ran_for >= STABLE_SECONDS:
        return 1.0
    return min(30.0, previous * 2)


def _supervise(stack: devstack.Stack, data_dir: Path, stop: list[bool]) -> None:
    """Restart a service process that exits, like a Kubernetes Deployment would.

    Restarts back off (1 s, doubling to 30 s) so a service that cannot start does
    not spin; a service that ran for `STABLE_SECONDS` starts again from 1 s. If
    nats-server or the store exits, everything stops: the services cannot work
    without them.
    """
    backoff: dict[str, float] = {}
    due: dict[str, float] = {}
    started: dict[str, float] = {}  # when each restarted service was started
    while not stop:
        for index, managed in enumerate(stack.processes):
            if managed.process.poll() is None:
                continue
            if managed.name in ("nats-server", "secantusdb"):
                print(f"  {managed.name} exited ({managed.process.returncode}); stopping", flush=True)
                stop.append(True)
                break
            now = time.monotonic()
            if managed.name not in due:
                ran_for = now - started.get(managed.name, float("-inf"))
                backoff[managed.name] = restart_delay(backoff.get(managed.name), ran_for)
                due[managed.name] = now + backoff[managed.name]
                print(
                    f"  {managed.name} exited ({managed.process.returncode}); "
                    f"restarting in {backoff[managed.name]:.0f} s",
                    flush=True,
                )
            if now >= due[managed.name]:
                del due[managed.name]
                module = next(m for m in devstack.SERVICE_MODULES if m.endswith(managed.name))
                log = data_dir / "logs" / f"{managed.name}.log"
                stack.processes[index] = devstack.start_service(module, stack.env, log)
                started[managed.name] = time.monotonic()
        time.sleep(0.5)


def main() -> None:
    # A shell starting `make run &` from a script makes it ignore SIGINT, and Python
    # then installs no handler of its own: ask for Ctrl-C's KeyboardInterrupt anyway.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    data_dir = Path(os.environ.get("TASKROUTER_DATA_DIR", ".data")).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    print(f"Starting TaskRouter (data in {data_dir}, logs in {data_dir / 'logs'}) ...", flush=True)
    stack = start_stack(data_dir)
    stop: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    try:
        base_url = stack.env["TASKROUTER_PUBLIC_URL"]
        wait_healthy(f"http://127.0.0.1:{stack.env['TASKROUTER_HTTP_PORT']}")
        print(
            "\nTaskRouter is ready.\n"
            f"  Base URL:    {base_url}\n"
            f"  Account SID: {stack.env['TASKROUTER_ACCOUNT_SID']}\n"
            f"  Auth token:  {stack.env['TASKROUTER_AUTH_TOKEN']}\n"
            f"  NATS:        {stack.env['NATS_URL']}  (events on taskrouter.events.>)\n"
            "Press Ctrl-C to stop.\n",
            flush=True,
        )
        _supervise(stack, data_dir, stop)
    except KeyboardInterrupt:
        pass
    finally:
        print("Stopping ...", flush=True)
        stack.stop()
        print("Stopped.", flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
