"""Which URLs a worker may download: only fal's media hosts and the configured fal bases.

A result URL comes from a fal payload, and a payload is only as trustworthy as the webhook
that carried it; downloading whatever it names would let anyone reach our private network or
the cloud's metadata service from inside the worker (SSRF). So a URL is fetched only when its
host is one of fal's media hosts and every address its name resolves to is a global one, or
when it is exactly (scheme, host, port) one of the fal bases the operator configured — the
one way a loopback address is allowed (the fal stand-in runs on 127.0.0.1 in tests).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

#: fal serves generated files from `https://v3.fal.media/files/...` (docs/reference): the
#: apex and its subdomains, over https only.
FAL_MEDIA_DOMAIN = "fal.media"
#: A name that takes longer than this to resolve is not fetched.
RESOLVE_TIMEOUT = 5.0

Origin = tuple[str, str, int]


class RefusedURL(Exception):
    """A URL kadr will not fetch; the message says why (never anything secret: URLs are fal's
    public result URLs)."""


def _origin(url: str) -> Origin:
    """(scheme, host, port) with the scheme's default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise RefusedURL(f"not an http(s) URL: {url[:200]}")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise RefusedURL(f"bad port in {url[:200]}") from None
    return scheme, parts.hostname.lower().rstrip("."), port


def _is_fal_media(host: str) -> bool:
    return host == FAL_MEDIA_DOMAIN or host.endswith(f".{FAL_MEDIA_DOMAIN}")


@dataclass(frozen=True, slots=True)
class UrlGuard:
    """`bases`: the configured fal bases (FAL_QUEUE_URL, FAL_REST_URL), trusted as they are."""

    bases: frozenset[Origin]

    @classmethod
    def for_fal(cls, base_urls: Iterable[str]) -> UrlGuard:
        return cls(frozenset(_origin(url) for url in base_urls))

    async def check(self, url: str) -> None:
        """Raise RefusedURL unless `url` may be fetched; resolves the name to see every address."""
        origin = _origin(url)
        if origin in self.bases:
            return
        scheme, host, port = origin
        if scheme != "https" or not _is_fal_media(host):
            raise RefusedURL(f"host {host} is neither fal's media host nor a configured fal base")
        for address in await _addresses(host, port):
            if not address.is_global:
                raise RefusedURL(f"host {host} resolves to a non-global address {address}")


async def _addresses(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Every address `host` resolves to (an IP literal is its own one address)."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError) as exc:
        raise RefusedURL(f"host {host} does not resolve: {type(exc).__name__}") from None
    if not infos:
        raise RefusedURL(f"host {host} resolves to nothing")
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
