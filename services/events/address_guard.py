"""Refuse webhook destinations inside the operator's network.

A workspace's callback URL is chosen by an API user; without this guard anyone
with API access could make the service POST to `http://127.0.0.1:...`, a cloud
metadata endpoint (169.254.169.254) or any host on the private network. Every
address the host name resolves to is checked, so a name that resolves to one
public and one private address is refused too. The operator may allow private
destinations (`TASKROUTER_WEBHOOK_ALLOW_PRIVATE=true`), e.g. for local development.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

Resolver = Callable[[str, int], Awaitable[list[str]]]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedDestinationError(Exception):
    """The URL may not be called: bad scheme, unresolvable or non-public host."""


def is_public_address(address: IPAddress) -> bool:
    """False for loopback, private, link-local, multicast, reserved and unspecified."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


async def resolve_host(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (A and AAAA)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


async def check_destination(
    url: str, *, allow_private: bool, resolver: Resolver = resolve_host
) -> None:
    """Raise BlockedDestinationError unless `url` may receive a webhook."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BlockedDestinationError(f"not an http(s) URL: {url!r}")
    if allow_private:
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise BlockedDestinationError(f"bad port in {url!r}") from exc
    try:
        addresses = await resolver(parts.hostname, port)
    except OSError as exc:
        raise BlockedDestinationError(f"cannot resolve {parts.hostname!r}") from exc
    if not addresses:
        raise BlockedDestinationError(f"{parts.hostname!r} resolves to no address")
    for text in addresses:
        # Scoped IPv6 addresses (fe80::1%eth0) carry a zone after `%`.
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if not is_public_address(address):
            raise BlockedDestinationError(
                f"{parts.hostname!r} resolves to the non-public address {text!r}"
            )
