"""TLS policy, and a real uvicorn server serving HTTPS with a certificate made here."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi import FastAPI

from services import devstack
from services.gateway.identity_settings import IdentitySettings
from services.gateway.tls import (
    InsecureListenError,
    TlsConfigurationError,
    check_listen_policy,
    is_loopback,
    server_tls_options,
    uvicorn_tls_options,
)
from shared.settings import load


@dataclass
class Options:
    http_host: str = "127.0.0.1"
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    allow_insecure_http: bool = False


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.DNSName("localhost"),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.5.0.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.7", False),
        ("gateway.example.com", False),
    ],
)
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("host", "tls", "insecure", "refused"),
    [
        ("127.0.0.1", False, False, False),
        ("0.0.0.0", False, False, True),
        ("0.0.0.0", True, False, False),
        ("0.0.0.0", False, True, False),
        ("gateway.example.com", False, False, True),
    ],
    ids=[
        "loopback-plain",
        "public-plain",
        "public-tls",
        "public-override",
        "hostname-plain",
    ],
)
def test_check_listen_policy(host, tls, insecure, refused):
    if refused:
        with pytest.raises(InsecureListenError, match="TASKROUTER_ALLOW_INSECURE_HTTP"):
            check_listen_policy(host, tls, insecure)
    else:
        check_listen_policy(host, tls, insecure)


def test_settings_read_the_tls_variables():
    settings = load(
        IdentitySettings,
        {
            "TASKROUTER_TLS_CERT_FILE": "/c.pem",
            "TASKROUTER_TLS_KEY_FILE": "/k.pem",
            "TASKROUTER_ALLOW_INSECURE_HTTP": "true",
        },
    )

    assert (settings.tls_cert_file, settings.tls_key_file) == ("/c.pem", "/k.pem")
    assert settings.allow_insecure_http is True
    assert load(IdentitySettings, {}).allow_insecure_http is False


def test_uvicorn_tls_options(tmp_path):
    cert, key = _self_signed(tmp_path)

    assert uvicorn_tls_options(Options()) == {}
    assert uvicorn_tls_options(
        Options(tls_cert_file=str(cert), tls_key_file=str(key))
    ) == {
        "ssl_certfile": str(cert),
        "ssl_keyfile": str(key),
    }


def test_uvicorn_tls_options_refuses_half_or_broken_configuration(tmp_path):
    cert, key = _self_signed(tmp_path)
    other_cert, _ = _self_signed(_mkdir(tmp_path / "other"))

    with pytest.raises(TlsConfigurationError, match="both"):
        uvicorn_tls_options(Options(tls_cert_file=str(cert)))
    with pytest.raises(TlsConfigurationError, match="does not exist"):
        uvicorn_tls_options(Options(tls_cert_file=str(cert), tls_key_file="/nope.key"))
    with pytest.raises(TlsConfigurationError, match="do not load"):
        uvicorn_tls_options(
            Options(tls_cert_file=str(other_cert), tls_key_file=str(key))
        )


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def test_server_tls_options_applies_the_policy(tmp_path):
    cert, key = _self_signed(tmp_path)

    with pytest.raises(InsecureListenError):
        server_tls_options(Options(http_host="0.0.0.0"))
    assert (
        server_tls_options(Options(http_host="0.0.0.0", allow_insecure_http=True)) == {}
    )
    assert server_tls_options(
        Options(http_host="0.0.0.0", tls_cert_file=str(cert), tls_key_file=str(key))
    )["ssl_certfile"] == str(cert)


async def test_uvicorn_serves_https_with_the_options(tmp_path):
    cert, key = _self_signed(tmp_path)
    app = FastAPI()

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "tls"}

    port = devstack.free_port()
    options = server_tls_options(
        Options(tls_cert_file=str(cert), tls_key_file=str(key))
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, **options)
    )
    serving = asyncio.create_task(server.serve())
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline and not serving.done(), (
                "server did not start"
            )
            await asyncio.sleep(0.01)
        trust = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(verify=trust) as client:
            answer = await client.get(f"https://127.0.0.1:{port}/hello")
        async with httpx.AsyncClient() as untrusting:
            with pytest.raises(httpx.ConnectError):
                await untrusting.get(f"https://127.0.0.1:{port}/hello")
    finally:
        server.should_exit = True
        await serving

    assert answer.status_code == 200 and answer.json() == {"hello": "tls"}
