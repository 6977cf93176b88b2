"""Credits in the conversation, in process: the real Dispatcher and handlers, the Bot API
faked at the transport (tests/fake_bot_api.py), a migrated SQLite database and a real Redis.
/buy sends a Stars invoice, a pre-checkout query is answered, a payment repeated by
Telegram credits once, /balance starts with the balance, and a prompt that cannot be paid
for is refused with the price, the balance and a 💳 button, making no job."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.types import Update
from alembic import command
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import launch
from bot.dispatcher import build_dispatcher
from core import catalog as catalog_module
from core.config import Settings
from core.credits import Allowance
from core.db import alembic_config, create_engine, session_factory
from core.models import Job
from core.resources import create_redis
from core.telegram_pacing import handling
from sandbox.redis_server import PrivateRedis
from tests.fake_bot_api import FakeSession, message

_users = itertools.count(7301)
_update_ids = itertools.count(1)


class Chat:
    """One user talking to the bot: feeds updates, reads what the bot called."""

    def __init__(
        self, dispatcher: Dispatcher, sessions: async_sessionmaker[AsyncSession], user_id: int
    ) -> None:
        self.user_id = user_id
        self.session = FakeSession()
        self.bot = Bot("42:TEST", session=self.session)
        self.dispatcher = dispatcher
        self.sessions = sessions

    async def feed(self, body: dict[str, Any]) -> None:
        update = Update.model_validate(body, context={"bot": self.bot})
        with handling(update.update_id, first_run=True):
            await self.dispatcher.feed_update(self.bot, update)

    async def say(self, text: str) -> None:
        await self.feed(message(next(_update_ids), self.user_id, text))

    async def pay(self, charge_id: str, payload: str = "pack:small:50") -> None:
        body = message(next(_update_ids), self.user_id)
        del body["message"]["text"]
        body["message"]["successful_payment"] = {
            "currency": "XTR",
            "total_amount": 50,
            "invoice_payload": payload,
            "telegram_payment_charge_id": charge_id,
            "provider_payment_charge_id": "",
        }
        await self.feed(body)

    async def pre_checkout(self, payload: str, total_amount: int = 50) -> None:
        query = {
            "id": f"q{next(_update_ids)}",
            "from": {"id": self.user_id, "is_bot": False, "first_name": "Ann"},
            "currency": "XTR",
            "total_amount": total_amount,
            "invoice_payload": payload,
        }
        await self.feed({"update_id": next(_update_ids), "pre_checkout_query": query})

    def calls(self, name: str) -> list[Any]:
        return [r for r in self.session.requests if r.__api_method__ == name]

    def texts(self) -> list[str]:
        return [r.text for r in self.calls("sendMessage")]

    async def jobs(self) -> int:
        async with self.sessions() as session:
            count = select(func.count()).select_from(Job).where(Job.user_id == self.user_id)
            return int(await session.scalar(count) or 0)

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
                    "chat": {"id": self.user_id, "type": "private"},
                    "text": "offer",
                },
            },
        }


@dataclass
class World:
    dispatcher: Dispatcher
    sessions: async_sessionmaker[AsyncSession]


@pytest.fixture(scope="module")
async def world(
    tmp_path_factory: pytest.TempPathFactory, own_redis: PrivateRedis
) -> AsyncIterator[World]:
    """One Dispatcher for the module: aiogram attaches the routers to one parent only."""
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('payments')}/kadr.db"
    await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
    engine = create_engine(url)
    redis = create_redis(own_redis.url)
    sessions = session_factory(engine)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    resources = SimpleNamespace(redis=redis, sessions=sessions, settings=settings)
    yield World(build_dispatcher(resources), sessions)  # type: ignore[arg-type]
    await redis.aclose()
    await engine.dispose()


def _chat(world: World, free: int) -> Chat:
    """A new user, with `free` credits a day."""
    allowance = Allowance(free_per_day=free)
    world.dispatcher["allowance"] = allowance
    world.dispatcher["launcher"] = replace(world.dispatcher["launcher"], allowance=allowance)
    return Chat(world.dispatcher, world.sessions, next(_users))


@pytest.fixture
def chat(world: World) -> Chat:
    return _chat(world, free=10)


@pytest.fixture
def broke(world: World) -> Chat:
    """A chat with no daily allowance."""
    return _chat(world, free=0)


@pytest.fixture
def one_pack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    text = catalog_module.DEFAULT_PATH.read_text()
    text = (
        text[: text.index("\n[[packs]]")]
        + "\n"
        + '[[packs]]\nid = "only"\ncredits = 20\nstars = 25\n'
    )
    (tmp_path / "catalog.toml").write_text(text)
    monkeypatch.setenv("KADR_CATALOG", str(tmp_path / "catalog.toml"))
    catalog_module.catalog.cache_clear()
    yield
    catalog_module.catalog.cache_clear()


def _first_number(text: str) -> int:
    found = re.search(r"\d+", text)
    assert found is not None, text
    return int(found.group())


async def test_buy_with_several_packs_offers_buttons_whose_tap_sends_a_stars_invoice(
    chat: Chat,
) -> None:
    await chat.say("/buy")
    [offer] = chat.calls("sendMessage")
    buttons = [row[0] for row in offer.reply_markup.inline_keyboard]
    assert [b.text for b in buttons] == ["50 credits · 50 ⭐", "300 credits · 250 ⭐"]
    assert chat.calls("sendInvoice") == []

    await chat.feed(chat.tap(buttons[1].callback_data))
    [invoice] = chat.calls("sendInvoice")
    assert (invoice.chat_id, invoice.currency, invoice.provider_token) == (chat.user_id, "XTR", "")
    assert [(p.amount) for p in invoice.prices] == [250]
    assert invoice.payload == "pack:large:300" and len(invoice.payload.encode()) <= 128
    assert invoice.title == "300 credits"


async def test_buy_with_one_pack_sends_its_invoice_at_once(one_pack: None, chat: Chat) -> None:
    await chat.say("/buy")
    assert chat.calls("sendMessage") == []
    [invoice] = chat.calls("sendInvoice")
    assert (invoice.currency, invoice.payload, [p.amount for p in invoice.prices]) == (
        "XTR",
        "pack:only:20",
        [25],
    )


async def test_pre_checkout_is_answered_ok_for_a_pack_on_sale_and_refused_otherwise(
    chat: Chat,
) -> None:
    await chat.pre_checkout("pack:small:50")
    await chat.pre_checkout("pack:gone:50")
    await chat.pre_checkout("pack:small:50", total_amount=1)
    answers = [(a.ok, a.error_message) for a in chat.calls("answerPreCheckoutQuery")]
    refusal = "This pack is no longer on sale. Please open /buy again."
    assert answers == [(True, None), (False, refusal), (False, refusal)]
    assert "pre_checkout_query" in chat.dispatcher.resolve_used_update_types()


async def test_a_payment_delivered_twice_credits_once(broke: Chat) -> None:
    await broke.pay("stx-1")
    await broke.pay("stx-1")
    assert broke.texts() == ["✅ 50 credits added. Balance: 50."]
    await broke.say("/balance")
    assert _first_number(broke.texts()[-1]) == 50
    assert broke.texts()[-1].startswith("💰 50 credits\nFree: 0 · Bought: 50")


async def test_balance_starts_with_the_spendable_number_and_lists_movements(chat: Chat) -> None:
    await chat.say("/balance")
    assert chat.texts()[-1].startswith("💰 10 credits\n")
    await chat.say("a lighthouse")  # 1 credit (FLUX schnell, one image)
    await chat.say("/balance")
    statement = chat.texts()[-1]
    assert _first_number(statement) == 9
    assert "−1 · job" in statement and "+10 · daily free credits" in statement


async def test_a_prompt_without_credits_is_refused_with_price_balance_and_a_buy_button(
    broke: Chat,
) -> None:
    await broke.say("a lighthouse at dawn")
    [refusal] = broke.calls("sendMessage")
    assert refusal.text.startswith("💳 Not enough credits: this costs 1, you have 0.")
    [[button]] = refusal.reply_markup.inline_keyboard
    assert button.text == "💳 Buy credits"
    assert await broke.jobs() == 0

    await broke.feed(broke.tap(button.callback_data))
    assert broke.texts()[-1].startswith("💳 Choose a pack")

    await broke.pay("stx-2")
    await broke.say("a lighthouse at dawn")
    assert await broke.jobs() == 1


async def test_russian_balance_agrees_with_the_number(chat: Chat) -> None:
    body = message(next(_update_ids), chat.user_id, "/balance")
    body["message"]["from"]["language_code"] = "ru"
    await chat.feed(body)
    assert chat.texts()[-1].startswith("💰 10 кредитов\nБесплатных: 10 · Купленных: 0")


async def test_a_prompt_that_lost_the_race_for_the_last_credits_turns_its_status_into_the_refusal(
    broke: Chat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two prompts can both pass the check before either reserves; the one whose reservation
    finds the credits gone has already posted its status message, which becomes the refusal."""

    async def passed(*_: object) -> int:
        return 1

    monkeypatch.setattr(launch, "check_credits", passed)
    await broke.say("a lighthouse at dawn")
    [status] = broke.calls("sendMessage")
    assert status.text.startswith("⏳ In the queue…")
    [edit] = broke.calls("editMessageText")
    assert edit.text.startswith("💳 Not enough credits: this costs 1, you have 0.")
    assert edit.reply_markup.inline_keyboard[0][0].text == "💳 Buy credits"
    assert await broke.jobs() == 0
