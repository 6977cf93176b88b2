"""Concurrent calls of one Redis script, sent to Redis together in one pipeline.

The Telegram webhook stores each update with one script call (core/telegram/inbox.py), and
under load dozens are in flight at once. A round trip each cost the api more than the script itself
does: the connection pool's lock, a write and a read per call, a wake-up of the event loop
per answer. Calls made within one turn of the event loop now go out as one pipeline; each
caller still gets its own answer or its own error, as if it had called alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.typing import EncodableT, KeyT

_Call = tuple[Sequence[KeyT], Sequence[EncodableT], "asyncio.Future[Any]"]


class ScriptBatch:
    def __init__(self, redis: Redis, script: str) -> None:
        self._redis = redis
        self._script = redis.register_script(script)
        self._waiting: list[_Call] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def __call__(self, keys: Sequence[KeyT], args: Sequence[EncodableT]) -> Any:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Any] = loop.create_future()
        self._waiting.append((keys, args, answer))
        if len(self._waiting) == 1:
            loop.call_soon(self._send)
        return await answer

    def _send(self) -> None:
        calls, self._waiting = self._waiting, []
        task = asyncio.create_task(self._run(calls))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _run(self, calls: list[_Call]) -> None:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for keys, args, _ in calls:
                    await self._script(keys=keys, args=args, client=pipe)
                results = await pipe.execute(raise_on_error=False)
        except Exception as exc:
            for _, _, answer in calls:
                if not answer.done():
                    answer.set_exception(exc)
            return
        for (_, _, answer), result in zip(calls, results, strict=True):
            if answer.done():
                continue  # its caller went away (a client that disconnected)
            if isinstance(result, Exception):
                answer.set_exception(result)
            else:
                answer.set_result(result)
