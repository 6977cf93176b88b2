"""Every Bot API call of a process passes here: messages are paced under Telegram's limits
(the shared limiter, across all processes), a 429 pauses every sender, and a handler that
runs again for the same update gets its earlier answers back instead of sending twice.

What a send does is chosen where it is made, by the Bot it is made with: `Outbox` hands out
one Bot per send policy, sharing the process's one session, and the session's middleware
(`SendPacer`) reads the policy off the Bot it is called with.

- `outbox.reply(update_id, first_run=…, received_at=…)`: a handler's calls while it handles
  one update. Waits for its moment however long it takes, behind the results in line; a 429
  is waited out; when the update runs again its calls are answered from what the run before
  sent.
- `status_bot(reply_bot)`: a new job's status message, within the handler's run (replayed
  alike), but it keeps the place in line it takes: the launcher sends one only when that
  place is a moment away (bot/launch.py). Behind the results, as the handler's other calls
  are, it waited out a whole peak while its handler held the chat's updates.
- `outbox.result`: a job's result. Waits up to `MAX_INLINE_WAIT`, then RetryLater (the task
  goes back to its queue, and comes back for the moment held for it); a 429 is handed back.
- `outbox.follow_up`: the buttons after an album that is already out: up to `FOLLOW_UP_WAIT`.
- `outbox.notice`: a worker's status and failure notices, an admin's report, and a worker's
  calls that are no messages (getFile, deleteMessage): as `result`.
- `outbox.broadcast`: an admin's broadcast: as `result`, but behind the results in line.
- `outbox.progress`: progress edits: only if a moment is free now, else SendSkipped.

Results and broadcasts may go as paid broadcasts (`allow_paid_broadcast`, 0.1 Star each) when
the operator allows it and the line of results is long (core/telegram/limits.py); the pacer
sets the parameter on the call when the limiter hands out a paid moment.

This is what makes the inbox the handlers' outbox: a handler's reply that cannot leave yet
waits here while its update stays in the durable inbox, in order per chat (the partition is
held); if the process dies, the update is handled again and the replies already sent are
replayed from Redis, not sent again. The replay matches calls by their number within the
run, so a handler run again must make the same calls in the same order (bot/routers/).
Answers to buttons and payments (answerCallbackQuery, …) are not messages: never paced.
Results go first: a handler's reply or a broadcast lets results that are waiting leave first.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramRetryAfter,
)
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import User
from redis.asyncio import Redis

from core.infra.metrics import (
    OUTBOX_OLDEST_WAIT,
    OUTBOX_WAITING,
    TELEGRAM_CALLS,
    TELEGRAM_PAID,
    TELEGRAM_PAID_STARS_TODAY,
    TELEGRAM_THROTTLED,
)
from core.infra.retry import RetryLater
from core.telegram.inbox import sent_key
from core.telegram.limits import MAX_INLINE_WAIT, STARS_PER_PAID_SEND, TelegramLimiter

log = logging.getLogger(__name__)

#: Methods that put something in a chat: Telegram's limits count them (edits included).
PACED_PREFIXES = ("send", "edit", "copy", "forward")
#: Answers whose failure must not fail the handler: a button's toast that comes too late
#: ("query is too old", after a backlog) matters less than what the button does.
COURTESIES = frozenset({"answerCallbackQuery"})
#: A handler's send waits for its moment however far away it is (its update waits too).
UNBOUNDED = 24 * 3600.0
#: In Telegram's answer to a paid broadcast the bot's Stars balance cannot pay for: the answer
#: is undocumented; this is MTProto's error name, what the stand-in answers.
BALANCE_TOO_LOW = "BALANCE_TOO_LOW"
#: How long a replayable answer is kept if its update is never acked (a dead letter).
SENT_TTL = 24 * 3600
#: The buttons after an album wait longer in place than a result: the album is out, so
#: their delivery is not handed back to the queue (it would send the album again); past
#: this wait they are dropped (core/telegram/sender.py).
FOLLOW_UP_WAIT = 10.0


class SendSkipped(Exception):
    """An optional send found no free moment and was not made."""


@dataclass(frozen=True)
class SendPolicy:
    """How a call waits for its moment to go (core/telegram/limits.py)."""

    name: str
    #: The longest wait in place. A bounded send raises RetryLater past it, and hands a 429
    #: back (TelegramRetryAfter) instead of waiting it out: its task goes back to the queue.
    max_wait: float
    #: Results waiting in line go first (core/telegram/limits.py).
    yielding: bool = False
    #: Goes only if a moment is free now, else SendSkipped.
    optional: bool = False
    #: May go as a paid broadcast while the line of results is long.
    paid: bool = False


REPLY = SendPolicy("reply", max_wait=UNBOUNDED, yielding=True)
STATUS = SendPolicy("status", max_wait=UNBOUNDED)
RESULT = SendPolicy("result", max_wait=MAX_INLINE_WAIT, paid=True)
FOLLOW_UP = SendPolicy("follow_up", max_wait=FOLLOW_UP_WAIT)
NOTICE = SendPolicy("notice", max_wait=MAX_INLINE_WAIT)
BROADCAST = SendPolicy("broadcast", max_wait=MAX_INLINE_WAIT, yielding=True, paid=True)
PROGRESS = SendPolicy("progress", max_wait=0.0, optional=True)


@dataclass
class Replay:
    """A handler's run for one update: its calls are numbered, their answers kept, and a run
    again gets them back by number. `first_run`: nobody ran this update before, so there is
    nothing to replay (a Redis read per call saved)."""

    update_id: int
    first_run: bool
    received_at: float | None = None
    """When the webhook stored the update (epoch seconds), when known."""
    calls: int = 0


@dataclass
class _Account:
    """The bot's own account, asked of Telegram once per process for all its Bots."""

    me: User | None = None


class PolicyBot(Bot):
    """The process's Bot (its token, session and defaults) under one send policy."""

    def __init__(
        self, origin: Bot, policy: SendPolicy, account: _Account, replay: Replay | None = None
    ) -> None:
        super().__init__(origin.token, session=origin.session, default=origin.default)
        self.policy = policy
        self.replay = replay
        self._account = account

    def under(self, policy: SendPolicy) -> PolicyBot:
        """This Bot under another policy, within the same run (its calls numbered on)."""
        return PolicyBot(self, policy, self._account, self.replay)

    async def me(self) -> User:
        """aiogram keeps the answer per Bot, and a handler's Bot lives for one update."""
        if self._account.me is None:
            self._account.me = await self.get_me()
        return self._account.me


class Outbox:
    """The Bots of one process, one per send policy (see the module's docstring): whoever
    sends names the policy by the Bot it takes. `bot` is the process's Bot; its session
    carries the `SendPacer` where sends are paced (without it, as in tests, policies are
    inert)."""

    def __init__(self, bot: Bot) -> None:
        self._bot = bot
        self._account = _Account()
        self.result = self._under(RESULT)
        self.follow_up = self._under(FOLLOW_UP)
        self.notice = self._under(NOTICE)
        self.broadcast = self._under(BROADCAST)
        self.progress = self._under(PROGRESS)

    def reply(self, update_id: int, *, first_run: bool, received_at: float | None = None) -> Bot:
        """The Bot a handler answers with while it handles `update_id`: one per run, since
        its calls are numbered from the first for the replay. `received_at`: when the
        webhook stored the update, which tells how far behind the handlers are."""
        replay = Replay(update_id, first_run, received_at)
        return PolicyBot(self._bot, REPLY, self._account, replay)

    def _under(self, policy: SendPolicy) -> Bot:
        return PolicyBot(self._bot, policy, self._account)

    async def close(self) -> None:
        await self._bot.session.close()


def status_bot(bot: Bot) -> Bot:
    """The Bot for a new job's status message from a handler's Bot (see the module's
    docstring): the same run, under the status policy."""
    return _policy_bot(bot).under(STATUS)


def waited(bot: Bot) -> float:
    """Seconds the update a handler's Bot answers waited for a handler, since the webhook
    stored it (0 when unknown, or for a Bot that answers no update)."""
    replay = _policy_bot(bot).replay
    if replay is None or replay.received_at is None:
        return 0.0
    return max(time.time() - replay.received_at, 0.0)


def _policy_bot(bot: Bot) -> PolicyBot:
    if not isinstance(bot, PolicyBot):
        raise TypeError("a Bot API call with no send policy: take the Bot from an Outbox")
    return bot


def _outcome(exc: Exception) -> str:
    return "forbidden" if isinstance(exc, TelegramForbiddenError) else "error"


@dataclass
class SendPacer(BaseRequestMiddleware):
    redis: Redis
    limiter: TelegramLimiter
    _waiting: dict[int, float] = field(default_factory=dict)
    _tickets: Iterator[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        OUTBOX_OLDEST_WAIT.set_function(self.oldest_wait)

    def oldest_wait(self) -> float:
        return time.monotonic() - min(self._waiting.values()) if self._waiting else 0.0

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Any:
        # aiogram's chain hands back the call's result, not the Response its types name.
        name = method.__api_method__
        answer = Response[method.__returning__]  # type: ignore[name-defined]
        sender = _policy_bot(bot)
        replay = sender.replay
        slot = self._replay_slot(replay, name)
        if slot is not None and replay is not None and not replay.first_run:
            stored = await self.redis.hget(*slot)  # type: ignore[misc]
            if stored is not None:
                TELEGRAM_CALLS.labels(name, "replayed").inc()
                return answer.model_validate_json(stored, context={"bot": bot}).result
        result = await self._send(make_request, bot, method, name, sender.policy)
        if slot is not None:
            record = answer(ok=True, result=result).model_dump_json(exclude_none=True)
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hset(*slot, record)
                pipe.expire(slot[0], SENT_TTL)
                await pipe.execute()
        return result

    @staticmethod
    def _replay_slot(replay: Replay | None, name: str) -> tuple[str, str] | None:
        """Where this call's answer is kept: by the call's number in its run and its method.
        Reads (get*) are asked every time and not numbered."""
        if replay is None or name.startswith("get"):
            return None
        replay.calls += 1
        return sent_key(replay.update_id), f"{replay.calls}:{name}"

    async def _send(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
        name: str,
        policy: SendPolicy,
    ) -> Any:
        chat = getattr(method, "chat_id", None)
        paced = name.startswith(PACED_PREFIXES) and isinstance(chat, int)
        payable = policy.paid and "allow_paid_broadcast" in type(method).model_fields
        media = getattr(method, "media", None)
        messages = len(media) if isinstance(media, list) else 1  # an album pays for each
        while True:
            paid = False
            if paced:
                paid = await self._moment(chat, policy, payable=payable, messages=messages)  # type: ignore[arg-type]
            call = method.model_copy(update={"allow_paid_broadcast": True}) if paid else method
            try:
                response = await make_request(bot, call)
            except TelegramRetryAfter as exc:
                TELEGRAM_CALLS.labels(name, "429").inc()
                TELEGRAM_THROTTLED.labels("telegram").inc()
                await self.limiter.pause(exc.retry_after)
                if policy.max_wait < UNBOUNDED:
                    raise
                if not paced:  # the limiter's pause holds back paced calls only
                    await asyncio.sleep(exc.retry_after)
                continue
            except TelegramBadRequest as exc:
                TELEGRAM_CALLS.labels(name, "bad_request").inc()
                if paid and BALANCE_TOO_LOW in exc.message:
                    log.warning("paid broadcast refused: the bot's Stars balance is short")
                    TELEGRAM_PAID.labels("balance_too_low").inc()
                    await self.limiter.spend_budget()
                    payable = False
                    continue
                if name in COURTESIES:
                    log.info("%s refused (%s); the handler goes on", name, exc.message)
                    return True
                raise
            except Exception as exc:
                TELEGRAM_CALLS.labels(name, _outcome(exc)).inc()
                raise
            TELEGRAM_CALLS.labels(name, "ok").inc()
            return response

    async def _moment(self, chat: int, policy: SendPolicy, *, payable: bool, messages: int) -> bool:
        """Waits for the call's moment; whether it is a paid one."""
        if policy.optional:
            if not await self.limiter.try_acquire(chat):
                raise SendSkipped(f"no free send moment for chat {chat}")
            return False
        ticket = next(self._tickets)
        self._waiting[ticket] = time.monotonic()
        OUTBOX_WAITING.inc()
        try:
            moment = await self.limiter.acquire(
                chat,
                max_wait=policy.max_wait,
                yielding=policy.yielding,
                paid=payable,
                messages=messages,
            )
        except RetryLater:
            TELEGRAM_THROTTLED.labels("limiter").inc()
            raise
        finally:
            OUTBOX_WAITING.dec()
            del self._waiting[ticket]
        if moment.paid or moment.over_budget:
            TELEGRAM_PAID.labels("paid" if moment.paid else "over_budget").inc()
            TELEGRAM_PAID_STARS_TODAY.set(moment.paid_today * STARS_PER_PAID_SEND)
        return moment.paid
