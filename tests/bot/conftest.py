"""The conversation in process: the real Dispatcher and handlers, the Bot API faked at the
transport (tests/fake_bot_api.py), a migrated SQLite database and a Redis of its own.

One Dispatcher for the whole run: aiogram attaches the routers (module globals) to one
parent only. Each test talks as a new user; `chat`/`broke` set the daily allowance."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.types import Update
from alembic import command
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.dispatcher import build_dispatcher
from core.domain.credits import Allowance
from core.domain.models import Job
from core.infra.config import Config
from core.infra.db import alembic_config, create_engine, session_factory
from core.resources import create_redis
from core.telegram.limits import TelegramLimiter
from core.telegram.outbox import Outbox
from sandbox.redis_server import PrivateRedis
from tests.fake_bot_api import FakeSession, message

_users = itertools.count(7301)
_update_ids = itertools.count(1)


class Chat:
    """One user talking to the bot (in their private chat, or in `chat_id`): feeds updates,
    reads what the bot called."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        sessions: async_sessionmaker[AsyncSession],
        user_id: int,
        chat_id: int | None = None,
    ) -> None:
        self.user_id = user_id
        self.chat_id = chat_id or user_id
        self.session = FakeSession()
        self.outbox = Outbox(Bot("42:TEST", session=self.session))
        self.dispatcher = dispatcher
        self.sessions = sessions

    def in_group(self, chat_id: int) -> Chat:
        return Chat(self.dispatcher, self.sessions, self.user_id, chat_id)

    def message(self, **fields: Any) -> dict[str, Any]:
        body = message(next(_update_ids), self.user_id)
        del body["message"]["text"]
        body["message"]["from"]["id"] = self.user_id
        if self.chat_id != self.user_id:
            body["message"]["chat"] = {"id": self.chat_id, "type": "supergroup", "title": "G"}
        body["message"].update(fields)
        return body

    async def feed(
        self, body: dict[str, Any], *, first_run: bool = True, received_at: float | None = None
    ) -> None:
        """As the update consumer does (workers/updates.py); `first_run` False: the update
        is handled again, as after a crash; `received_at`: when the webhook stored it."""
        bot = self.outbox.reply(body["update_id"], first_run=first_run, received_at=received_at)
        update = Update.model_validate(body, context={"bot": bot})
        await self.dispatcher.feed_update(bot, update)

    async def say(self, text: str, **fields: Any) -> None:
        await self.feed(self.message(text=text, **fields))

    async def pay(self, charge_id: str, payload: str = "pack:small:50") -> None:
        paid = {
            "currency": "XTR",
            "total_amount": 50,
            "invoice_payload": payload,
            "telegram_payment_charge_id": charge_id,
            "provider_payment_charge_id": "",
        }
        await self.feed(self.message(successful_payment=paid))

    async def pre_checkout(self, payload: str, total_amount: int = 50) -> None:
        query = {
            "id": f"q{next(_update_ids)}",
            "from": {"id": self.user_id, "is_bot": False, "first_name": "Ann"},
            "currency": "XTR",
            "total_amount": total_amount,
            "invoice_payload": payload,
        }
        await self.feed({"update_id": next(_update_ids), "pre_checkout_query": query})

    def tap(self, callback_data: str) -> dict[str, Any]:
        """The user presses a button under a message of the bot."""
        return {
            "update_id": next(_update_ids),
            "callback_query": {
                "id": f"cb{next(_update_ids)}",
                "from": {"id": self.user_id, "is_bot": False, "first_name": "Ann"},
                "chat_instance": "1",
                "data": callback_data,
                "message": {
                    "message_id": 1000,
                    "date": 1_700_000_000,
                    "chat": {"id": self.chat_id, "type": "private"},
                    "text": "offer",
                },
            },
        }

    def calls(self, name: str) -> list[Any]:
        return [r for r in self.session.requests if r.__api_method__ == name]

    def texts(self) -> list[str]:
        return [r.text for r in self.calls("sendMessage")]

    async def jobs(self) -> list[Job]:
        async with self.sessions() as session:
            found = await session.scalars(select(Job).where(Job.user_id == self.user_id))
            return list(found)

    async def job_count(self) -> int:
        async with self.sessions() as session:
            count = select(func.count()).select_from(Job).where(Job.user_id == self.user_id)
            return int(await session.scalar(count) or 0)


@dataclass
class World:
    dispatcher: Dispatcher
    sessions: async_sessionmaker[AsyncSession]


@pytest.fixture(scope="session")
def bot_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path_factory.mktemp("bot-redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def world(
    tmp_path_factory: pytest.TempPathFactory, bot_redis: PrivateRedis
) -> AsyncIterator[World]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('bot')}/kadr.db"
    await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
    engine = create_engine(url)
    redis = create_redis(bot_redis.url)
    sessions = session_factory(engine)
    config = Config(_env_file=None)  # type: ignore[call-arg]
    resources = SimpleNamespace(
        redis=redis, sessions=sessions, config=config, limiter=TelegramLimiter(redis)
    )
    yield World(build_dispatcher(resources), sessions)  # type: ignore[arg-type]
    await redis.aclose()
    await engine.dispose()


def _chat(world: World, free: int, *, admin: bool = False) -> Chat:
    """A new user, with `free` credits a day (the only admin when `admin`)."""
    user_id = next(_users)
    allowance = Allowance(free_per_day=free, admins=frozenset({user_id} if admin else ()))
    world.dispatcher["allowance"] = allowance
    world.dispatcher["launcher"] = replace(world.dispatcher["launcher"], allowance=allowance)
    return Chat(world.dispatcher, world.sessions, user_id)


@pytest.fixture
def chat(world: World) -> Chat:
    return _chat(world, free=10)


@pytest.fixture
def broke(world: World) -> Chat:
    """A chat with no daily allowance."""
    return _chat(world, free=0)


@pytest.fixture
def admin(world: World) -> Chat:
    """An admin's chat; the users a test makes next are not admins."""
    return _chat(world, free=0, admin=True)
