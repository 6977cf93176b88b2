"""Admin commands (users in ADMIN_IDS): `/refund <charge id>` gives a payment's Stars back
(refundStarPayment) and takes its credits back; `/grant <user id> <credits>` gives credits;
`/ban` and `/unban <user id>`; `/stats`; `/broadcast <text>` (without text: how the last
one is doing).
Anyone else gets no answer: the commands do not exist for them.

A refund is asked of Telegram before the ledger moves: a handler run again for the same
update gets Telegram's first answer replayed (core/telegram/outbox.py) instead of a second
refund, then records the take-back, which the ledger allows once per charge. A grant is
keyed by its update, so a command handled twice grants once.
"""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject, Filter
from aiogram.types import Message, Update
from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.i18n import _
from core.domain import broadcasts
from core.domain.bans import ban
from core.domain.credits import Allowance
from core.domain.models import User
from core.domain.payments import grant, paid_by, take_back
from core.infra.config import Config
from core.jobs.queue import enqueue_broadcast
from core.jobs.stats import Stats, gather_stats

router = Router(name="admin")


class Admin(Filter):
    async def __call__(self, message: Message, allowance: Allowance) -> bool:
        return message.from_user is not None and message.from_user.id in allowance.admins


@router.message(Command("refund"), Admin())
async def refund(
    message: Message,
    command: CommandObject,
    bot: Bot,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    charge_id = (command.args or "").strip()
    if not charge_id:
        await message.answer(_("admin_refund_usage"))
        return
    paid = await paid_by(sessions, charge_id)
    if paid is None:
        await message.answer(_("admin_refund_unknown", charge=charge_id))
        return
    try:
        await bot.refund_star_payment(user_id=paid.user_id, telegram_payment_charge_id=charge_id)
    except TelegramBadRequest as exc:
        await message.answer(_("admin_refund_failed", reason=exc.message))
        return
    taken = await take_back(sessions, paid)
    await message.answer(_("admin_refund_done", user=paid.user_id, taken=taken))


@router.message(Command("grant"), Admin())
async def grant_credits(
    message: Message,
    command: CommandObject,
    event_update: Update,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    parts = (command.args or "").split()
    if len(parts) != 2 or not parts[0].isdigit() or not parts[1].isdigit() or parts[1] == "0":
        await message.answer(_("admin_grant_usage"))
        return
    user_id, amount = int(parts[0]), int(parts[1])
    ref = f"grant:{event_update.update_id}"
    if await grant(sessions, user_id=user_id, amount=amount, ref=ref):
        await message.answer(_("admin_grant_done", user=user_id, credits=amount))
    else:
        await message.answer(_("admin_unknown_user", user=user_id))


@router.message(Command("ban", "unban"), Admin())
async def ban_user(
    message: Message,
    command: CommandObject,
    sessions: async_sessionmaker[AsyncSession],
    redis: ArqRedis,
) -> None:
    target = (command.args or "").strip()
    if not target.isdigit():
        await message.answer(_("admin_ban_usage", command=command.command))
        return
    banned = command.command == "ban"
    if await ban(sessions, redis, int(target), banned):
        await message.answer(_("admin_banned" if banned else "admin_unbanned", user=target))
    else:
        await message.answer(_("admin_unknown_user", user=target))


@router.message(Command("stats"), Admin())
async def stats(
    message: Message,
    sessions: async_sessionmaker[AsyncSession],
    redis: ArqRedis,
    config: Config,
) -> None:
    found = await gather_stats(sessions, redis, config.UPDATE_DEDUP_TTL)
    await message.answer(stats_text(found))


def stats_text(stats: Stats) -> str:
    modes: dict[str, dict[str, int]] = {}
    for (mode, status), count in sorted(stats.jobs.items()):
        modes.setdefault(mode, {})[status] = count
    lines = [_("stats_title", users=stats.users)]
    for mode, statuses in modes.items():
        outcomes = ", ".join(f"{_(f'status_word_{s}')} {n}" for s, n in statuses.items())
        lines.append(f"{_(f'mode_{mode}')}: {outcomes}")
    if not modes:
        lines.append(_("stats_no_jobs"))
    if stats.failures:
        reasons = ", ".join(f"{error} {n}" for error, n in sorted(stats.failures.items()))
        lines.append(_("stats_failures", reasons=reasons))
    lines.append(_("stats_credits", spent=stats.spent, bought=stats.bought))
    queues = ", ".join(f"{name} {depth}" for name, depth in stats.queues.items())
    lines.append(_("stats_backlog", queues=queues, inbox=stats.inbox, dead=stats.dead_letters))
    return "\n".join(lines)


@router.message(Command("broadcast"), Admin())
async def broadcast(
    message: Message,
    command: CommandObject,
    user: User,
    sessions: async_sessionmaker[AsyncSession],
    redis: ArqRedis,
    event_update: Update,
) -> None:
    text = (command.args or "").strip()
    if not text:
        last = await broadcasts.latest(sessions)
        if last is None:
            await message.answer(_("broadcast_none"))
            return
        values = {"id": last.id, "sent": last.sent, "skipped": last.skipped}
        key = "broadcast_running" if last.status == broadcasts.RUNNING else "broadcast_done"
        await message.answer(_(key, **values))
        return
    started, audience = await broadcasts.create(
        sessions, text, message.chat.id, user.language, update_id=event_update.update_id
    )
    await enqueue_broadcast(redis, started.id)
    await message.answer(_("broadcast_started", id=started.id, users=audience))
