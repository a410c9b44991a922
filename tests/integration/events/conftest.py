"""Fixtures for the events service: real NATS, a real store, a local receiver."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import pytest
from events_support import Received, Receiver, events_settings

from services.events.app import EventsService, build_service
from shared.runtime import ServiceRuntime
from shared.settings import CommonSettings, load


@pytest.fixture
def receiver() -> Any:
    holder: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length).decode()
            request = Received(
                self.path,
                dict(self.headers.items()),
                dict(parse_qsl(body, keep_blank_values=True)),
            )
            recorder = holder["receiver"]
            status, content_type, payload = recorder.reply(request)
            recorder.requests.put(request)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder["receiver"] = Receiver(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield holder["receiver"]
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
async def start_events_service(isolated_env):
    """`await start(**setting_overrides)` starts the events service."""
    started: list[EventsService] = []

    async def start(**overrides: str) -> EventsService:
        service = build_service(events_settings(isolated_env, **overrides))
        await service.runtime.start()
        started.append(service)
        return service

    yield start
    for service in reversed(started):
        await service.runtime.stop()


@pytest.fixture
async def probe(isolated_env):
    """Another service's runtime, publishing events through its committer."""
    runtime = ServiceRuntime("probe", load(CommonSettings, isolated_env))
    await runtime.start()
    yield runtime
    await runtime.stop()
