"""The guard refusing webhooks to loopback, link-local and private addresses."""

from __future__ import annotations

import ipaddress

import pytest

from services.events.address_guard import (
    BlockedDestinationError,
    check_destination,
    is_public_address,
)


def _resolver(*addresses: str):
    async def resolve(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolve


async def _failing_resolver(host: str, port: int) -> list[str]:
    raise OSError("no such host")


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
    ],
)
def test_is_public_address(address, public):
    assert is_public_address(ipaddress.ip_address(address)) is public


async def test_check_destination_accepts_public_host():
    await check_destination(
        "https://hooks.example.com/cb",
        allow_private=False,
        resolver=_resolver("93.184.216.34"),
    )


@pytest.mark.parametrize(
    "addresses",
    [
        ("127.0.0.1",),
        ("93.184.216.34", "10.0.0.5"),
        ("fe80::1%eth0",),
        ("169.254.169.254",),
    ],
    ids=["loopback", "one-of-two-private", "scoped-link-local", "metadata"],
)
async def test_check_destination_refuses_non_public_addresses(addresses):
    with pytest.raises(BlockedDestinationError):
        await check_destination(
            "http://hooks.example.com/cb",
            allow_private=False,
            resolver=_resolver(*addresses),
        )


async def test_check_destination_refuses_literal_loopback_ip():
    with pytest.raises(BlockedDestinationError):
        await check_destination("http://127.0.0.1:8080/cb", allow_private=False)


async def test_check_destination_allows_private_when_operator_allows():
    await check_destination(
        "http://127.0.0.1:8080/cb", allow_private=True, resolver=_failing_resolver
    )


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/cb", "file:///etc/passwd", "https:///no-host", "not a url"],
)
async def test_check_destination_refuses_non_http_urls(url):
    with pytest.raises(BlockedDestinationError):
        await check_destination(url, allow_private=True)


async def test_check_destination_refuses_unresolvable_host():
    with pytest.raises(BlockedDestinationError):
        await check_destination(
            "https://nowhere.invalid/cb",
            allow_private=False,
            resolver=_failing_resolver,
        )
