"""Concurrent calls of one script against a real Redis: each caller gets its own answer or
its own error, as if it had called alone."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from core.infra.script_batch import ScriptBatch

# Appends ARGV[1] to the list KEYS[1] and returns its new length; a non-number fails.
APPEND = "return redis.call('RPUSH', KEYS[1], tonumber(ARGV[1]) or error('not a number'))"


async def test_concurrent_calls_each_get_their_own_answer(redis: Redis) -> None:
    append = ScriptBatch(redis, APPEND)
    answers = await asyncio.gather(*(append(["batch:test"], [n]) for n in range(50)))
    assert sorted(answers) == list(range(1, 51))
    assert [int(v) for v in await redis.lrange("batch:test", 0, -1)] == list(range(50))  # type: ignore[misc]


async def test_a_call_that_fails_fails_alone(redis: Redis) -> None:
    append = ScriptBatch(redis, APPEND)
    good, bad, also_good = await asyncio.gather(
        append(["batch:test"], [1]),
        append(["batch:test"], ["x"]),
        append(["batch:test"], [2]),
        return_exceptions=True,
    )
    assert (good, also_good) == (1, 2)
    assert isinstance(bad, ResponseError)


async def test_every_caller_hears_that_redis_is_down() -> None:
    down = Redis(port=1, socket_connect_timeout=0.2)
    append = ScriptBatch(down, APPEND)
    answers = await asyncio.gather(
        *(append(["batch:test"], [n]) for n in range(3)), return_exceptions=True
    )
    assert all(isinstance(a, RedisConnectionError) for a in answers)
    await down.aclose()
