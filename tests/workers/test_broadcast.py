"""A broadcast on a real (SQLite, migrated) database with the Bot API faked at the
transport: every user that is not banned gets it once, even when the worker dies mid-send
and the task runs again; a user who blocked the bot is skipped and counted; a send that
could not leave yet is made by the next run; the admin gets the count once."""

from __future__ import annotations

from typing import Any

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramForbiddenError, TelegramRetryAfter
from aiogram.methods import SendMessage, TelegramMethod

from core.domain import broadcasts
from core.domain.bans import ban
from core.domain.users import touch_user
from core.infra.retry import RetryLater
from core.telegram.outbox import Outbox
from tests.conftest import Sessions
from tests.fake_bot_api import FakeSession
from workers.broadcast import run_broadcast

ADMIN = 1
USERS = list(range(100, 130))


class Failing(FakeSession):
    """Fails the send to the users in `fail` with what they map to, once each."""

    def __init__(self, fail: dict[int, type[Exception]]) -> None:
        super().__init__()
        self.fail = dict(fail)

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[Any],
        timeout: int | None = None,  # noqa: ASYNC109
    ) -> Any:
        if isinstance(method, SendMessage) and method.chat_id in self.fail:
            self.requests.append(method)
            error = self.fail.pop(method.chat_id)  # type: ignore[arg-type]
            if error is TelegramForbiddenError:
                raise TelegramForbiddenError(method, "Forbidden: bot was blocked by the user")
            if error is TelegramRetryAfter:
                raise TelegramRetryAfter(method, "Too Many Requests", retry_after=3)
            raise error("the worker died here")
        return await super().make_request(bot, method, timeout)

    def got(self, chat_id: int) -> int:
        return sum(1 for r in self.requests if isinstance(r, SendMessage) and r.chat_id == chat_id)


@pytest.fixture(autouse=True)
async def known_users(sessions: Sessions, redis: Any) -> None:
    """The admin, the audience, and a banned user the broadcast must skip."""
    for user_id in [ADMIN, *USERS, 999]:
        async with sessions() as session:
            await touch_user(
                session, user_id=user_id, username=None, first_name=None, language_code="en"
            )
    await ban(sessions, redis, 999, True)


async def _start(sessions: Sessions) -> int:
    started, audience = await broadcasts.create(sessions, "news <b>!</b>", ADMIN, "en", update_id=1)
    assert audience == len(USERS) + 1  # the admin is a user too; the banned one is not
    return started.id


async def test_a_worker_dying_mid_send_sends_nobody_the_message_twice(sessions: Sessions) -> None:
    session = Failing({USERS[9]: RuntimeError})
    outbox = Outbox(Bot("42:TEST", session=session))
    broadcast_id = await _start(sessions)
    with pytest.raises(RuntimeError):
        await run_broadcast(sessions, outbox, broadcast_id, attempt=1)
    await run_broadcast(sessions, outbox, broadcast_id, attempt=2)  # arq runs it again
    await run_broadcast(sessions, outbox, broadcast_id, attempt=3)  # and again: nothing more

    assert all(session.got(user) == 1 for user in USERS)  # the one mid-send too: not resent
    assert session.got(999) == 0
    texts = [r.text for r in session.requests if r.chat_id == ADMIN]  # type: ignore[attr-defined]
    assert texts == ["news <b>!</b>", "📣 Broadcast #1 done: sent 30, skipped 0 (blocked the bot)."]
    news = [r for r in session.requests if getattr(r, "text", None) == "news <b>!</b>"]
    assert len(news) == len(USERS) + 1
    assert {r.parse_mode for r in news} == {None}  # type: ignore[attr-defined]  # as typed


async def test_a_blocked_user_is_skipped_and_a_deferred_send_is_made_next_run(
    sessions: Sessions,
) -> None:
    session = Failing({USERS[3]: TelegramForbiddenError, USERS[5]: TelegramRetryAfter})
    outbox = Outbox(Bot("42:TEST", session=session))
    broadcast_id = await _start(sessions)
    with pytest.raises(RetryLater):
        await run_broadcast(sessions, outbox, broadcast_id, attempt=1)
    await run_broadcast(sessions, outbox, broadcast_id, attempt=2)
    assert session.got(USERS[5]) == 2  # refused once with a 429, then sent
    done = await broadcasts.get(sessions, broadcast_id)
    assert done is not None
    assert (done.status, done.sent, done.skipped) == ("done", 30, 1)
