"""The SSRF guard: webhooks go only to http(s) URLs on public addresses.

Checked twice: when an endpoint is registered (`UrlGuard.check`, a clear 400), and at every
connection (`GuardedResolver`, the resolver of the dispatcher's HTTP client), so a name that
later resolves to a private address (DNS rebinding) is refused where it matters. An address is
refused when it is not globally routable (private, loopback, link-local, shared, reserved,
unspecified, documentation) or is multicast; an IPv4-mapped IPv6 address is judged as its IPv4.
`WEBHOOKS_ALLOW_PRIVATE_URLS=true` (development, the test stack) lets all of them through.
Redirects are never followed (the client sends `allow_redirects=False`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Final
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from payment_service.core.errors import InvalidRequest

MAX_URL_LENGTH: Final = 2048
RESOLVE_TIMEOUT_SECONDS: Final = 5.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def address_allowed(address: str, *, allow_private: bool = False) -> bool:
    """Whether a webhook may connect to this IP address."""
    try:
        ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if allow_private:
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _refuse(message: str) -> InvalidRequest:
    return InvalidRequest(message, code="invalid_webhook_url", param="url")


def check_syntax(url: str) -> tuple[str, int]:
    """The host and port of a URL webhooks may use, or `InvalidRequest`."""
    if len(url) > MAX_URL_LENGTH or not url.isprintable() or " " in url:
        raise _refuse(f"url must be at most {MAX_URL_LENGTH} printable characters, no spaces")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _refuse("url is not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise _refuse("url must use http or https")
    if not parts.hostname:
        raise _refuse("url must name a host")
    if parts.username is not None or parts.password is not None:
        raise _refuse("url must not hold credentials")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


class UrlGuard:
    """The `UrlGuard` port: syntax, then every address the host resolves to."""

    def __init__(self, *, allow_private: bool) -> None:
        self._allow_private = allow_private

    async def check(self, url: str) -> None:
        host, port = check_syntax(url)
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT_SECONDS
            )
        except (OSError, TimeoutError):
            raise _refuse(f"url host {host!r} does not resolve") from None
        addresses = {str(info[4][0]) for info in infos}
        if not addresses or not all(
            address_allowed(a, allow_private=self._allow_private) for a in addresses
        ):
            raise _refuse("url resolves to a private, loopback, link-local or reserved address")


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, keeping only the addresses `address_allowed` lets through."""

    def __init__(self, *, allow_private: bool) -> None:
        self._inner = DefaultResolver()
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        kept = [r for r in found if address_allowed(r["host"], allow_private=self._allow_private)]
        if not kept:
            raise OSError(f"refused: {host} resolves only to addresses webhooks may not reach")
        return kept

    async def close(self) -> None:
        await self._inner.close()


def literal_refused(url: str, *, allow_private: bool) -> bool:
    """True when the URL's host is an IP literal webhooks may not reach (aiohttp connects to a
    literal without asking the resolver)."""
    host, _ = check_syntax(url)
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return not address_allowed(host, allow_private=allow_private)
