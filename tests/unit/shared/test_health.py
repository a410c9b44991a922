"""The probe and metrics server: the ASGI app in memory, then on a real socket."""

from __future__ import annotations

import socket

import httpx
import pytest

from shared.health import HealthApp, HealthServer


class _Flag:
    def __init__(self) -> None:
        self.value = False

    def __call__(self) -> bool:
        return self.value


async def test_health_app_answers_readiness_from_the_flag():
    ready = _Flag()
    transport = httpx.ASGITransport(app=HealthApp(ready))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/livez")).status_code == 200
        assert (await client.get("/readyz")).status_code == 503

        ready.value = True
        assert (await client.get("/readyz")).status_code == 200

        assert (await client.get("/other")).status_code == 404
        scraped = await client.get("/metrics")
        assert scraped.status_code == 200
        assert "# TYPE taskrouter_commands_total counter" in scraped.text


async def test_health_server_serves_on_a_real_port_and_stops():
    server = HealthServer("127.0.0.1", 0, lambda: True)
    await server.start()
    url = f"http://127.0.0.1:{server.port}"
    async with httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/readyz")).text == "ready\n"
        assert "process_cpu_seconds_total" in (await client.get("/metrics")).text

    await server.stop()

    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(base_url=url) as client:
            await client.get("/livez")


async def test_health_server_start_fails_when_the_port_is_taken():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = HealthServer("127.0.0.1", taken.getsockname()[1], lambda: True)
        with pytest.raises(OSError):
            await server.start()
