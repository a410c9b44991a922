"""When the gateway may serve plain HTTP, and how it serves HTTPS.

Credentials travel in every request (HTTP Basic), so the gateway refuses to
listen on anything but a loopback address without TLS, unless told explicitly
that something in front of it terminates TLS:

    TASKROUTER_TLS_CERT_FILE=/etc/taskrouter/tls.crt   PEM certificate (chain)
    TASKROUTER_TLS_KEY_FILE=/etc/taskrouter/tls.key    its PEM private key
    TASKROUTER_ALLOW_INSECURE_HTTP=true                plain HTTP on any address
                                                       (e.g. behind a TLS proxy)

Both files or neither; they are loaded once at start so a bad pair fails there,
with the file names in the message, rather than at the first connection.
"""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path
from typing import Any, Protocol


class TlsSettings(Protocol):
    http_host: str
    tls_cert_file: str | None
    tls_key_file: str | None
    allow_insecure_http: bool


class TlsConfigurationError(ValueError):
    """The certificate or key settings cannot be used."""


class InsecureListenError(ValueError):
    """Asked to serve plain HTTP on a non-loopback address without the override."""


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback IPs (127.0.0.0/8, ::1); False for `0.0.0.0`."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        # Any other host name may resolve to a public interface: treat it as one.
        return False


def check_listen_policy(host: str, tls_enabled: bool, allow_insecure: bool) -> None:
    """Raise InsecureListenError for plain HTTP on a non-loopback address."""
    if tls_enabled or allow_insecure or is_loopback(host):
        return
    raise InsecureListenError(
        f"Refusing to serve plain HTTP on {host!r}: clients send credentials with "
        "every request. Set TASKROUTER_TLS_CERT_FILE and TASKROUTER_TLS_KEY_FILE to "
        "serve HTTPS, listen on 127.0.0.1, or set TASKROUTER_ALLOW_INSECURE_HTTP=true "
        "when a proxy in front terminates TLS."
    )


def uvicorn_tls_options(settings: TlsSettings) -> dict[str, Any]:
    """`ssl_certfile`/`ssl_keyfile` for `uvicorn.Config`, or {} when TLS is off.

    Raises TlsConfigurationError when only one file is set or the pair does not load.
    """
    cert, key = settings.tls_cert_file, settings.tls_key_file
    if not cert and not key:
        return {}
    if not cert or not key:
        raise TlsConfigurationError(
            "Set both TASKROUTER_TLS_CERT_FILE and TASKROUTER_TLS_KEY_FILE, or neither"
        )
    for name, path in (("certificate", cert), ("key", key)):
        if not Path(path).is_file():
            raise TlsConfigurationError(f"TLS {name} file {path!r} does not exist")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise TlsConfigurationError(
            f"TLS certificate {cert!r} and key {key!r} do not load: {exc}"
        ) from exc
    return {"ssl_certfile": cert, "ssl_keyfile": key}


def server_tls_options(settings: TlsSettings) -> dict[str, Any]:
    """The TLS options for uvicorn after checking the listen policy; call at start."""
    options = uvicorn_tls_options(settings)
    check_listen_policy(settings.http_host, bool(options), settings.allow_insecure_http)
    return options
