"""The Telegram webhook in-process, against a real Redis: what each kind of request gets back,
what the inbox holds afterwards, and that every other path reaches the app behind it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from api.telegram_webhook import BODY_LIMIT, TelegramWebhook, WebhookState
from core.telegram.inbox import PARTITIONS, Inbox, partition_of
from tests.fake_bot_api import message

SECRET = "webhook-secret-0123456789"
HEADERS = {"X-Telegram-Bot-Api-Secret-Token": SECRET}


def app_with_webhook(redis: Redis, flood_limit: str = "1000/second") -> TelegramWebhook:
    async def behind(_: object) -> PlainTextResponse:
        return PlainTextResponse("the app behind the webhook")

    app = Starlette(routes=[Route("/livez", behind)])
    app.state.telegram_webhook = WebhookState(
        secret=SECRET.encode(), inbox=Inbox(redis, dedup_ttl=3600)
    )
    return TelegramWebhook(app, flood_limit=flood_limit)


@pytest.fixture
async def client(redis: Redis) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app_with_webhook(redis))
    async with httpx.AsyncClient(transport=transport, base_url="http://kadr") as client:
        yield client


async def stored(redis: Redis) -> list[dict[str, Any]]:
    entries = []
    for partition in range(PARTITIONS):
        for raw in await redis.lrange(f"kadr:inbox:{partition}", 0, -1):  # type: ignore[misc]
            entries.append(json.loads(raw.split(b" ", 1)[1]))
    return entries


async def test_an_update_is_stored_once_in_its_chats_partition(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    update = message(9_100_001, 4242, "/start")
    first = await client.post("/webhooks/telegram", json=update, headers=HEADERS)
    again = await client.post("/webhooks/telegram", json=update, headers=HEADERS)
    assert (first.status_code, first.json()) == (200, {"status": "accepted"})
    assert (again.status_code, again.json()) == (200, {"status": "duplicate"})
    assert await stored(redis) == [update]
    partition = partition_of(update, 9_100_001)
    assert await redis.llen(f"kadr:inbox:{partition}") == 1  # type: ignore[misc]


def seen(update: dict[str, Any]) -> dict[str, Any]:
    """The answer that has Telegram put 👀 on the update's message."""
    return {
        "method": "setMessageReaction",
        "chat_id": update["message"]["chat"]["id"],
        "message_id": update["message"]["message_id"],
        "reaction": [{"type": "emoji", "emoji": "👀"}],
    }


def in_group(update: dict[str, Any]) -> dict[str, Any]:
    update["message"]["chat"] = {"id": -100_42, "type": "supergroup", "title": "G"}
    return update


def photo(update: dict[str, Any]) -> dict[str, Any]:
    del update["message"]["text"]
    update["message"]["photo"] = [
        {"file_id": "p1", "file_unique_id": "u1", "width": 640, "height": 480}
    ]
    return update


@pytest.mark.parametrize(
    ("update", "reacted"),
    [
        (message(9_100_011, 4242, "a red fox"), True),
        (photo(message(9_100_012, 4242)), True),
        (message(9_100_013, 4242, "/balance"), False),
        (in_group(message(9_100_014, 4242, "@kadr_bot a red fox")), False),
    ],
    ids=["private prompt", "private photo", "command", "group"],
)
async def test_a_private_prompt_or_photo_is_answered_with_a_reaction_stored_or_copied(
    client: httpx.AsyncClient, redis: Redis, update: dict[str, Any], reacted: bool
) -> None:
    """The 👀 rides in the 200's body (core/telegram/seen.py), for a copy too: Telegram sends
    one only when it never got, so never ran, the first answer."""
    first = await client.post("/webhooks/telegram", json=update, headers=HEADERS)
    again = await client.post("/webhooks/telegram", json=update, headers=HEADERS)
    expected = [seen(update)] * 2 if reacted else [{"status": "accepted"}, {"status": "duplicate"}]
    assert [first.json(), again.json()] == expected
    assert (first.status_code, again.status_code) == (200, 200)
    assert await stored(redis) == [update]


@pytest.mark.parametrize(
    ("headers", "body", "status", "reason"),
    [
        ({}, b'{"update_id": 1}', 401, "wrong or missing secret token"),
        ({"X-Telegram-Bot-Api-Secret-Token": SECRET + "x"}, b'{"update_id": 1}', 401, "secret"),
        (HEADERS, b"\xff\xfe", 400, "body is not JSON"),
        (HEADERS, b"[]", 400, "body must be a JSON object"),
        (HEADERS, b'{"update_id": true}', 400, "update_id must be an integer"),
        (HEADERS, b'{"update_id": 1, "x": "' + b"y" * BODY_LIMIT + b'"}', 413, "body over"),
    ],
)
async def test_what_is_not_an_update_from_telegram_is_refused_and_not_stored(
    client: httpx.AsyncClient,
    redis: Redis,
    headers: dict[str, str],
    body: bytes,
    status: int,
    reason: str,
) -> None:
    response = await client.post("/webhooks/telegram", content=body, headers=headers)
    assert response.status_code == status
    assert reason in response.json()["detail"]
    assert await stored(redis) == []


async def test_a_streamed_body_over_the_cap_is_refused_without_a_declared_length(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"update_id": 2, "x": "'
        for _ in range(BODY_LIMIT // 65536 + 1):
            yield b"y" * 65536
        yield b'"}'

    response = await client.post("/webhooks/telegram", content=chunks(), headers=HEADERS)
    assert response.status_code == 413
    assert await stored(redis) == []


async def test_a_declared_length_of_thousands_of_digits_is_413(client: httpx.AsyncClient) -> None:
    headers = {**HEADERS, "Content-Length": "9" * 5000}
    request = client.build_request("POST", "/webhooks/telegram", content=b"{}", headers=headers)
    assert (await client.send(request)).status_code == 413


async def test_a_get_is_405_and_other_paths_reach_the_app(client: httpx.AsyncClient) -> None:
    assert (await client.get("/webhooks/telegram")).status_code == 405
    assert (await client.get("/livez")).text == "the app behind the webhook"


async def test_redis_down_is_503_so_that_telegram_delivers_again() -> None:
    unreachable = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    transport = httpx.ASGITransport(app=app_with_webhook(unreachable))
    async with httpx.AsyncClient(transport=transport, base_url="http://kadr") as client:
        update = message(9_100_002, 4243, "a blue fox")
        response = await client.post("/webhooks/telegram", json=update, headers=HEADERS)
    assert (response.status_code, response.json()) == (503, {"detail": "inbox unavailable"})
    await unreachable.aclose()


async def test_a_flood_from_one_address_is_refused_before_it_is_read(redis: Redis) -> None:
    app = app_with_webhook(redis, flood_limit="3/minute")
    flooder = httpx.ASGITransport(app=app, client=("203.0.113.9", 4000))
    telegram = httpx.ASGITransport(app=app, client=("149.154.167.1", 4000))
    async with httpx.AsyncClient(transport=flooder, base_url="http://kadr") as client:
        answers = [
            (await client.post("/webhooks/telegram", content=b"junk", headers=HEADERS)).status_code
            for _ in range(5)
        ]
    async with httpx.AsyncClient(transport=telegram, base_url="http://kadr") as client:
        update = message(9_100_003, 4244, "a green fox")
        other = await client.post("/webhooks/telegram", json=update, headers=HEADERS)
    assert answers == [400, 400, 400, 429, 429]
    assert (other.status_code, await stored(redis)) == (200, [update])
