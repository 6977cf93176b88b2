"""Patch of aiogram (written for aiogram 3.31.0, `core/infra/patches/__init__.py` checks it):
the Bot API's answer classes are built once per process, not after every garbage collection.

It relies on `AiohttpSession.check_response(bot, method, status_code, content)` and on
`Response[method.__returning__]` being the class aiogram validates the answer into;
`tests/core/infra/test_patches.py` fails when either changes. Upstream has no issue for it
(pydantic's cache of generic classes is weak by design); aiogram/aiogram#1513 is the wider
cost of its models. Drop it when aiogram keeps its answer classes.
"""

from __future__ import annotations

from typing import Any, ClassVar

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.methods.base import Response, TelegramMethod


class ResponseKeepingSession(AiohttpSession):
    """aiogram reads every Bot API answer into `Response[T]`, a pydantic generic class that
    pydantic caches by weak reference only: the garbage collector keeps dropping it and the
    next call builds it again, tens of milliseconds each time (docs/benchmark-history.md).
    Holding each one once built is all this adds."""

    _built: ClassVar[set[type]] = set()

    def check_response(
        self, bot: Bot, method: TelegramMethod[Any], status_code: int, content: str
    ) -> Response[Any]:
        self._built.add(Response[method.__returning__])  # type: ignore[name-defined]
        return super().check_response(bot, method, status_code, content)
