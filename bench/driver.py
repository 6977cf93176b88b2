"""Posting updates at a webhook, open loop (at a schedule) or closed loop (as fast as it answers).

Open loop times each answer from the moment the post was *due*, not from when the client got
round to it, so a server that falls behind shows as latency instead of quietly slowing the
load down. Both loops are bounded by the number of updates and by a deadline.

Like Telegram, the open loop delivers an update again when the webhook answered anything but
2xx, or nothing (kadr's webhook answers 503 when the inbox cannot store it), so an outage costs
time, not the update; its latency runs from the first due moment to the 200. The pauses
between deliveries are the caller's: every second by default, Telegram's doubling ones for
the chaos step, whose api is down for seconds at a time. Like Telegram too, it runs a method
call given in a 2xx answer's body (kadr's 👀 on a private prompt) at the Bot API named by
`replies_to`, the stand-in's, which so records it like any call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench.updates import Update
from sandbox.stack import TEST_SECRET

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
#: The closed loops post from several loopback addresses, as Telegram delivers from several
#: (149.154.160.0/20, 91.108.4.0/22): from one, kadr's per-address flood limit (2,000 posts a
#: second, api/telegram_webhook.py) capped them, and they measured the limit, not the webhook.
SOURCES = tuple(f"127.0.0.{host}" for host in range(2, 10))
HEADERS = {"Content-Type": "application/json", SECRET_HEADER: TEST_SECRET}
#: Telegram opens at most `max_connections` (≤ 100) to one webhook; so does the driver.
CONNECTIONS = 100
REQUEST_TIMEOUT = 30.0
#: Seconds between deliveries of one update that was not answered 2xx: ten deliveries a
#: second apart, enough for the short faults of the workloads.
EVERY_SECOND = (1.0,) * 9
#: As Telegram spaces them (1, 2, 4, … 32 s): a minute of redeliveries, for longer outages.
DOUBLING = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


@dataclass(frozen=True, slots=True)
class Post:
    update: Update
    due: float
    """Wall-clock time (epoch seconds) the post was scheduled for."""
    latency: float
    """Seconds from `due` to the (last) answer; NaN when none came."""
    status: int | None
    tries: int = 1
    """Deliveries it took (more than one: the webhook answered 5xx or nothing before)."""

    @property
    def ok(self) -> bool:
        return self.status == 200


def _session(connections: int, source: str | None = None) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=connections, force_close=False, local_addr=(source, 0) if source else None
    )
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    return aiohttp.ClientSession(connector=connector, timeout=timeout)


async def _post(
    session: aiohttp.ClientSession,
    url: str,
    update: Update,
    due_wall: float,
    due_mono: float,
    replies_to: str | None = None,
) -> Post:
    try:
        async with session.post(url, data=update.body, headers=HEADERS) as response:
            answer = await response.read()
            status: int | None = response.status
    except (aiohttp.ClientError, TimeoutError):
        return Post(update, due_wall, float("nan"), None)
    post = Post(update, due_wall, time.monotonic() - due_mono, status)
    if replies_to is not None and post.ok and answer.startswith(b'{"method"'):
        await _run_reply(session, replies_to, json.loads(answer))
    return post


async def _run_reply(session: aiohttp.ClientSession, bot_api: str, call: dict[str, Any]) -> None:
    """As Telegram does with a webhook answer's method call: run it, tell no one how it went."""
    method = call.pop("method")
    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
        async with session.post(f"{bot_api}/{method}", json=call) as response:
            await response.read()


async def _deliver(
    session: aiohttp.ClientSession,
    url: str,
    update: Update,
    due: tuple[float, float],
    pauses: Sequence[float],
    replies_to: str | None,
) -> Post:
    """Post, and post again after each pause while the answer is not 2xx, as Telegram does.
    `due`: the wall-clock and monotonic moments the first post was due."""
    post = await _post(session, url, update, *due, replies_to)
    for attempt, pause in enumerate(pauses, start=2):
        if post.status is not None and 200 <= post.status < 300:
            break
        await asyncio.sleep(pause)
        post = await _post(session, url, update, *due, replies_to)
        post = Post(post.update, post.due, post.latency, post.status, attempt)
    return post


async def open_loop(
    url: str,
    schedule: Sequence[tuple[float, Update]],
    *,
    connections: int = CONNECTIONS,
    deadline: float | None = None,
    pauses: Sequence[float] = EVERY_SECOND,
    replies_to: str | None = None,
) -> list[Post]:
    """Post each update at its offset (seconds from now); returns one Post per update."""
    last = max((offset for offset, _ in schedule), default=0.0)
    limit = deadline if deadline is not None else last + REQUEST_TIMEOUT + 5
    limit += sum(pauses)
    async with _session(connections) as session:
        start_mono, start_wall = time.monotonic(), time.time()
        tasks: list[asyncio.Task[Post]] = []
        for offset, update in sorted(schedule, key=lambda item: item[0]):
            delay = start_mono + offset - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            due = (start_wall + offset, start_mono + offset)
            delivery = _deliver(session, url, update, due, pauses, replies_to)
            tasks.append(asyncio.create_task(delivery))
        remaining = max(1.0, start_mono + limit - time.monotonic())
        done, pending = await asyncio.wait(tasks, timeout=remaining)
        for task in pending:
            task.cancel()
    return [task.result() for task in tasks if task in done]


async def closed_loop(
    url: str, updates: Sequence[Update], *, concurrency: int, duration: float
) -> tuple[list[Post], float]:
    """`concurrency` senders post back to back until `duration` passes or updates run out;
    returns the posts and the seconds actually spent."""
    queue = iter(updates)
    stop_at = time.monotonic() + duration

    async def sender(session: aiohttp.ClientSession, posts: list[Post]) -> None:
        for update in queue:
            if time.monotonic() >= stop_at:
                return
            posts.append(await _post(session, url, update, time.time(), time.monotonic()))

    posts: list[Post] = []
    async with contextlib.AsyncExitStack() as stack:
        share = -(-concurrency // len(SOURCES))
        sessions = [await stack.enter_async_context(_session(share, source)) for source in SOURCES]
        started = time.monotonic()
        await asyncio.wait_for(
            asyncio.gather(
                *(sender(sessions[i % len(sessions)], posts) for i in range(concurrency))
            ),
            duration + REQUEST_TIMEOUT,
        )
        elapsed = time.monotonic() - started
    return posts, elapsed


def at_rate(updates: Sequence[Update], rate: float) -> list[tuple[float, Update]]:
    """Evenly spaced: update i at i/rate seconds."""
    return [(index / rate, update) for index, update in enumerate(updates)]
