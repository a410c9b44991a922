"""`python -m services.gateway`: serve TaskRouter's REST API over HTTP."""

from __future__ import annotations

import uvicorn

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from services.gateway.tls import InsecureListenError, TlsConfigurationError, server_tls_options
from shared.logging import configure_logging
from shared.runtime import run
from shared.settings import load


async def main() -> None:
    settings = load(GatewaySettings)
    configure_logging("gateway", settings.log_level, settings.log_format)
    try:
        tls = server_tls_options(settings)
    except (InsecureListenError, TlsConfigurationError) as exc:
        raise SystemExit(f"gateway: {exc}") from None
    config = uvicorn.Config(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        **tls,
    )
    await uvicorn.Server(config).serve()


if __name__ == "__main__":
    run(main)
