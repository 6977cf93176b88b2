"""FalWebhookVerifier against a JWKS served over real HTTP whose keys the test controls."""

import asyncio
import base64
import hashlib
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from nacl.signing import SigningKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core.fal.webhook import (
    FalKeysUnavailable,
    FalWebhookVerifier,
    InvalidFalSignature,
    decode_jwk_x,
    read_signed_headers,
)
from sandbox.asgi import serve

BODY = b'{"request_id":"req-1","status":"OK","payload":{"images":[]}}'


class Jwks:
    """A JWKS endpoint that counts its fetches and can rotate keys or fail."""

    def __init__(self) -> None:
        self.reset()
        self.app = Starlette(routes=[Route("/jwks.json", self._serve)])

    def reset(self) -> None:
        """A fresh key, no fetches yet, serving at once."""
        self.keys = [SigningKey.generate()]
        self.fetches = 0
        self.broken = False
        self.delay = 0.0

    async def _serve(self, _: Request) -> Response:
        self.fetches += 1
        await asyncio.sleep(self.delay)
        if self.broken:
            return Response(status_code=500)
        entries = [
            {
                "kty": "OKP",
                "crv": "Ed25519",
                "x": base64.urlsafe_b64encode(bytes(key.verify_key)).decode().rstrip("="),
            }
            for key in self.keys
        ]
        return JSONResponse({"keys": [{"kty": "RSA", "n": "x", "e": "AQAB"}, *entries]})


def signed(
    key: SigningKey, body: bytes = BODY, *, timestamp: int | None = None, request_id: str = "req-1"
) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    message = f"{request_id}\nuser-1\n{stamp}\n{hashlib.sha256(body).hexdigest()}".encode()
    return {
        "X-Fal-Webhook-Request-Id": request_id,
        "X-Fal-Webhook-User-Id": "user-1",
        "X-Fal-Webhook-Timestamp": stamp,
        "X-Fal-Webhook-Signature": key.sign(message).signature.hex(),
    }


@pytest.fixture(scope="module")
async def jwks_served() -> AsyncIterator[tuple[Jwks, str]]:
    """One server for the module: starting and stopping uvicorn per test costs more than
    the tests."""
    server = Jwks()
    async with serve(server.app) as base:
        yield server, f"{base}/jwks.json"


@pytest.fixture
def jwks(jwks_served: tuple[Jwks, str]) -> tuple[Jwks, str]:
    server, url = jwks_served
    server.reset()
    return server, url


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def test_a_signed_fresh_webhook_passes(
    jwks: tuple[Jwks, str], http: httpx.AsyncClient
) -> None:
    server, url = jwks
    verifier = FalWebhookVerifier(http, url)
    await verifier.verify(signed(server.keys[0]), BODY)
    lowercase = {name.lower(): value for name, value in signed(server.keys[0]).items()}
    await verifier.verify(lowercase, BODY)
    assert server.fetches == 1


@pytest.mark.parametrize(
    "header",
    [
        "X-Fal-Webhook-Request-Id",
        "X-Fal-Webhook-User-Id",
        "X-Fal-Webhook-Timestamp",
        "X-Fal-Webhook-Signature",
    ],
)
async def test_every_header_is_required(
    jwks: tuple[Jwks, str], http: httpx.AsyncClient, header: str
) -> None:
    server, url = jwks
    headers = signed(server.keys[0])
    del headers[header]
    with pytest.raises(InvalidFalSignature, match=header.lower()):
        await FalWebhookVerifier(http, url).verify(headers, BODY)


@pytest.mark.parametrize("skew", [-301, 301])
async def test_timestamps_beyond_the_leeway_are_refused(
    jwks: tuple[Jwks, str], http: httpx.AsyncClient, skew: int
) -> None:
    server, url = jwks
    with pytest.raises(InvalidFalSignature, match="window"):
        await FalWebhookVerifier(http, url).verify(
            signed(server.keys[0], timestamp=int(time.time()) + skew), BODY
        )


async def test_timestamps_within_the_leeway_pass(
    jwks: tuple[Jwks, str], http: httpx.AsyncClient
) -> None:
    server, url = jwks
    await FalWebhookVerifier(http, url).verify(
        signed(server.keys[0], timestamp=int(time.time()) - 200), BODY
    )


@pytest.mark.parametrize("signature", ["zz", "ab" * 10])
async def test_malformed_signatures_are_refused(
    jwks: tuple[Jwks, str], http: httpx.AsyncClient, signature: str
) -> None:
    server, url = jwks
    headers = {**signed(server.keys[0]), "X-Fal-Webhook-Signature": signature}
    with pytest.raises(InvalidFalSignature):
        await FalWebhookVerifier(http, url).verify(headers, BODY)


async def test_an_altered_body_or_request_id_is_refused(
    jwks: tuple[Jwks, str], http: httpx.AsyncClient
) -> None:
    server, url = jwks
    verifier = FalWebhookVerifier(http, url)
    with pytest.raises(InvalidFalSignature, match="no fal JWKS key"):
        await verifier.verify(signed(server.keys[0]), BODY.replace(b"OK", b"KO"))
    headers = {**signed(server.keys[0]), "X-Fal-Webhook-Request-Id": "req-2"}
    with pytest.raises(InvalidFalSignature, match="no fal JWKS key"):
        await verifier.verify(headers, BODY)


async def test_a_rotated_key_is_fetched_once_and_forgeries_do_not_refetch(
    jwks: tuple[Jwks, str], http: httpx.AsyncClient
) -> None:
    server, url = jwks
    verifier = FalWebhookVerifier(http, url, refetch_interval=0)
    await verifier.verify(signed(server.keys[0]), BODY)
    server.keys = [SigningKey.generate()]
    await verifier.verify(signed(server.keys[0]), BODY)
    assert server.fetches == 2

    limited = FalWebhookVerifier(http, url, refetch_interval=3600)
    await limited.verify(signed(server.keys[0]), BODY)
    for _ in range(20):
        with pytest.raises(InvalidFalSignature):
            await limited.verify(signed(SigningKey.generate()), BODY)
    assert server.fetches == 3


async def test_concurrent_first_callers_share_one_fetch(
    jwks: tuple[Jwks, str], http: httpx.AsyncClient
) -> None:
    server, url = jwks
    verifier = FalWebhookVerifier(http, url)
    await asyncio.gather(*(verifier.verify(signed(server.keys[0]), BODY) for _ in range(20)))
    assert server.fetches == 1


async def test_expired_keys_are_refetched_and_kept_if_the_refetch_fails(
    jwks: tuple[Jwks, str], http: httpx.AsyncClient
) -> None:
    server, url = jwks
    verifier = FalWebhookVerifier(http, url, ttl=0, refetch_interval=0)
    await verifier.verify(signed(server.keys[0]), BODY)
    server.broken = True
    await verifier.verify(signed(server.keys[0]), BODY)
    await wait_for_fetches(server, 2)
    await verifier.verify(signed(server.keys[0]), BODY)


async def wait_for_fetches(server: Jwks, count: int) -> None:
    """Keys past their time are refetched in the background: wait for the fetch to be made."""
    for _ in range(200):
        if server.fetches >= count:
            await asyncio.sleep(0.05)
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{server.fetches} JWKS fetches, expected {count}")


async def test_a_refetch_in_flight_does_not_hold_back_webhooks_the_cached_key_verifies(
    jwks: tuple[Jwks, str], http: httpx.AsyncClient
) -> None:
    """A forged webhook starts a slow refetch; genuine ones keep passing meanwhile, at once."""
    server, url = jwks
    verifier = FalWebhookVerifier(http, url, refetch_interval=0)
    await verifier.verify(signed(server.keys[0]), BODY)
    server.delay = 1.0
    forged = asyncio.create_task(verifier.verify(signed(SigningKey.generate()), BODY))
    await wait_for_fetches(server, 2)
    for _ in range(5):
        await asyncio.wait_for(verifier.verify(signed(server.keys[0]), BODY), timeout=0.5)
    assert not forged.done()
    with pytest.raises(InvalidFalSignature):
        await forged


async def test_keys_past_their_time_serve_while_the_new_ones_come(
    jwks: tuple[Jwks, str], http: httpx.AsyncClient
) -> None:
    server, url = jwks
    verifier = FalWebhookVerifier(http, url, ttl=0, refetch_interval=0)
    await verifier.verify(signed(server.keys[0]), BODY)
    server.delay = 1.0
    await asyncio.wait_for(verifier.verify(signed(server.keys[0]), BODY), timeout=0.5)
    await wait_for_fetches(server, 2)
    await asyncio.wait_for(verifier.verify(signed(server.keys[0]), BODY), timeout=0.5)


@pytest.mark.parametrize(
    "timestamp",
    ["\u00b2", "1" * 5000, "\u0661\u0662\u0663", "-1", "+1700000000", "1e9", "17000000 00", "0x1"],
)
def test_timestamps_that_are_not_ascii_unix_seconds_are_refused_before_any_key(
    timestamp: str,
) -> None:
    headers = {**signed(SigningKey.generate()), "X-Fal-Webhook-Timestamp": timestamp}
    with pytest.raises(InvalidFalSignature, match="unix seconds"):
        read_signed_headers(headers, leeway=300)


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Fal-Webhook-Request-Id", "r" * 129),
        ("X-Fal-Webhook-Request-Id", "req 1"),
        ("X-Fal-Webhook-User-Id", "\u00e9"),
        ("X-Fal-Webhook-Signature", "ab" * 64 + "ab"),
        ("X-Fal-Webhook-Signature", "zz" * 64),
    ],
)
def test_headers_of_the_wrong_shape_are_refused(header: str, value: str) -> None:
    headers = {**signed(SigningKey.generate()), header: value}
    with pytest.raises(InvalidFalSignature):
        read_signed_headers(headers, leeway=300)


async def test_no_keys_at_all_is_reported_as_unavailable(
    jwks: tuple[Jwks, str], http: httpx.AsyncClient
) -> None:
    server, url = jwks
    server.broken = True
    with pytest.raises(FalKeysUnavailable):
        await FalWebhookVerifier(http, url).verify(signed(server.keys[0]), BODY)


def test_jwk_x_decodes_with_or_without_padding() -> None:
    raw = bytes(range(32))
    encoded = base64.urlsafe_b64encode(raw).decode()
    assert encoded.endswith("=")
    assert decode_jwk_x(encoded.rstrip("=")) == raw
    assert decode_jwk_x(encoded) == raw
    with pytest.raises(ValueError):
        decode_jwk_x(base64.urlsafe_b64encode(b"short").decode())
