"""Which URLs a worker may download: only fal's media hosts and the configured fal bases.

A result URL comes from a fal payload, and a payload is only as trustworthy as the webhook
that carried it; downloading whatever it names would let anyone reach our private network or
the cloud's metadata service from inside the worker (SSRF). So a URL is fetched only when its
host is one of fal's media hosts and every address its name resolves to is a global one, or
when it is exactly (scheme, host, port) one of the fal bases the operator configured — the
one way a loopback address is allowed (the fal stand-in runs on 127.0.0.1 in tests). The
download then goes to the address that was checked (`Target`), so a name that resolves
differently a moment later (DNS rebinding) cannot send it elsewhere.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

#: fal serves generated files from `https://v3.fal.media/files/...` (docs/reference): the
#: apex and its subdomains, over https only.
FAL_MEDIA_DOMAIN = "fal.media"
#: A name that takes longer than this to resolve is not fetched.
RESOLVE_TIMEOUT = 5.0

Origin = tuple[str, str, int]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


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


@dataclass(frozen=True, slots=True)
class Target:
    """Where to fetch a checked URL: `url` names the checked address itself; the host's name
    rides in the Host header and in TLS (SNI and the certificate check, httpcore's
    `sni_hostname`)."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


def _pinned(url: str, host: str, address: IPAddress) -> Target:
    parts = urlsplit(url)
    literal = f"[{address}]" if address.version == 6 else str(address)
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    host_header = f"{host}:{parts.port}" if parts.port else host
    return Target(
        url=urlunsplit(parts._replace(netloc=netloc)),
        headers={"Host": host_header},
        extensions={"sni_hostname": host},
    )


def _is_fal_media(host: str) -> bool:
    return host == FAL_MEDIA_DOMAIN or host.endswith(f".{FAL_MEDIA_DOMAIN}")


@dataclass(frozen=True, slots=True)
class UrlGuard:
    """`bases`: the configured fal bases (FAL_QUEUE_URL, FAL_REST_URL), trusted as they are."""

    bases: frozenset[Origin]

    @classmethod
    def for_fal(cls, base_urls: Iterable[str]) -> UrlGuard:
        return cls(frozenset(_origin(url) for url in base_urls))

    async def check(self, url: str) -> Target:
        """Where `url` may be fetched from; RefusedURL unless it may be fetched at all. The
        name is resolved and every address it has must be global."""
        origin = _origin(url)
        if origin in self.bases:
            return Target(url)
        scheme, host, port = origin
        if scheme != "https" or not _is_fal_media(host):
            raise RefusedURL(f"host {host} is neither fal's media host nor a configured fal base")
        addresses = await _addresses(host, port)
        for address in addresses:
            if not address.is_global:
                raise RefusedURL(f"host {host} resolves to a non-global address {address}")
        return _pinned(url, host, addresses[0])


async def _addresses(host: str, port: int) -> list[IPAddress]:
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
