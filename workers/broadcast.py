"""Sending an admin's broadcast: every user that is not banned, one at a time, each send
paced like any other message (the shared limiter keeps the whole bot under Telegram's
limits, and results that are waiting go first) and claimed in the database before it goes,
so a worker killed mid-way goes on where it was without sending anyone the message twice
(`core/domain/broadcasts.py`). A user who
blocked the bot is skipped and counted. When everyone has had their turn the admin gets the
count, once.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.i18n import _, use_locale
from core.domain import broadcasts
from core.infra.retry import RetryLater
from core.telegram.outbox import Outbox
from core.telegram.sender import Undeliverable, telegram_errors

log = logging.getLogger(__name__)

#: One run sends for at most this long, then queues its continuation: a run stays well
#: inside its arq timeout (after which a dead worker's run is taken up again) and gives its
#: slot back now and then.
RUN_SECONDS = 30.0


async def run_broadcast(
    sessions: async_sessionmaker[AsyncSession], outbox: Outbox, broadcast_id: int, *, attempt: int
) -> None:
    broadcast = await broadcasts.get(sessions, broadcast_id)
    if broadcast is None or broadcast.status != broadcasts.RUNNING:
        return
    started = time.monotonic()
    while (claim := await broadcasts.claim_next(sessions, broadcast)) is not None:
        before, user_id = claim
        try:
            with telegram_errors(attempt):
                await outbox.broadcast.send_message(user_id, broadcast.text, parse_mode=None)
        except RetryLater:
            await broadcasts.give_back(sessions, broadcast, user_id, before)
            raise
        except Undeliverable as exc:
            log.info("broadcast %s skips user %s: %s", broadcast.id, user_id, exc)
            await broadcasts.count(sessions, broadcast, sent=False)
            continue
        await broadcasts.count(sessions, broadcast, sent=True)
        if time.monotonic() - started > RUN_SECONDS:
            raise RetryLater(0.1, "broadcast continues")
    if await broadcasts.finish(sessions, broadcast):
        done = await broadcasts.get(sessions, broadcast_id)
        assert done is not None
        with use_locale(done.language):  # the admin's, stored with the broadcast
            text = _("broadcast_done", id=done.id, sent=done.sent, skipped=done.skipped)
        await outbox.notice.send_message(done.admin_chat_id, text)
