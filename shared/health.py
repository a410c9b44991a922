"""Probes and metrics over HTTP for a service process: `/livez`, `/readyz`, `/metrics`.

`ServiceRuntime` starts a `HealthServer` on `TASKROUTER_METRICS_PORT` when that
setting is not 0. It runs uvicorn on the service's own event loop, so:

- `/livez` answers 200 as long as the event loop turns; a loop blocked by a stuck
  handler stops answering and the kubelet restarts the container.
- `/readyz` answers 200 once the runtime is ready (broker and store up, start-up
  hooks done, `runtime.ready` set) and 503 before that and while stopping.
- `/metrics` answers the process registry of `shared.metrics` (Prometheus' own
  ASGI exposition, which also speaks OpenMetrics and gzip).

Anything else is a 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Generator, MutableMapping
from typing import Any

import uvicorn
from prometheus_client import make_asgi_app

from shared.metrics import REGISTRY

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]


class HealthApp:
    """The ASGI application behind the health server."""

    def __init__(self, is_ready: Callable[[], bool]) -> None:
        self._is_ready = is_ready
        self._metrics = make_asgi_app(REGISTRY)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return  # no lifespan or websockets: the server runs with lifespan off
        path = scope["path"]
        if path == "/metrics":
            await self._metrics(scope, receive, send)
        elif path == "/livez":
            await _answer(send, 200, b"ok\n")
        elif path == "/readyz":
            if self._is_ready():
                await _answer(send, 200, b"ready\n")
            else:
                await _answer(send, 503, b"starting or stopping\n")
        else:
            await _answer(send, 404, b"not found\n")


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its host process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # NOTE: uvicorn would replace the process' SIGTERM handler for its own
        # shutdown; here the service (or the gateway's uvicorn) owns the signals.
        yield


class HealthServer:
    """`/livez`, `/readyz` and `/metrics` on `host:port`, inside the running loop."""

    def __init__(self, host: str, port: int, is_ready: Callable[[], bool]) -> None:
        self.host = host
        self.port = port
        config = uvicorn.Config(
            HealthApp(is_ready),
            lifespan="off",
            log_config=None,
            access_log=False,
            http="h11",
            # Probes and scrapes are short; a slow client must not hold the loop.
            timeout_keep_alive=5,
        )
        self._server = _EmbeddedServer(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Bind the port (raising `OSError` if it is taken) and start serving."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self._task = asyncio.ensure_future(self._server.serve(sockets=[sock]))
        while not self._server.started and not self._task.done():
            await asyncio.sleep(0.01)
        if self._task.done():
            self._task.result()  # raises what made the server fail to start
        logger.info(
            "health server listening", extra={"host": self.host, "port": self.port}
        )

    async def stop(self) -> None:
        """Stop serving and wait until open connections are closed."""
        if self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._task = None


async def _answer(send: Any, status: int, body: bytes) -> None:
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
