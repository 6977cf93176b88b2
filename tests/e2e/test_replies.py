"""Reply to change it, end to end: a text reply to a result edits that result at fal and shows
its step, and ↩️ Undo shows the version before again from its Telegram file id, once, with no
job and no charge."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.i18n import i18n
from core.domain.models import LedgerEntry
from sandbox.control import FalSandbox, TelegramSandbox
from tests.e2e.test_modes import buttons, job_count, message_id

USER = 7401


async def ledger_rows(db: AsyncEngine, user_id: int) -> int:
    async with db.connect() as connection:
        count = select(func.count()).select_from(LedgerEntry).where(LedgerEntry.user_id == user_id)
        return int(await connection.scalar(count) or 0)


async def test_a_reply_to_a_result_edits_it_and_undo_brings_the_version_before_back(
    telegram: TelegramSandbox, fal: FalSandbox, db: AsyncEngine
) -> None:
    telegram.send_message(USER, "a lighthouse at dawn")
    [first] = telegram.wait_for("sendPhoto", chat_id=USER)
    [made] = fal.wait_for("submit")

    telegram.send_message(USER, "add fog", reply_to_message_id=message_id(first))
    second = telegram.wait_for("sendPhoto", chat_id=USER, count=2)[1]
    edit = fal.wait_for("submit", count=2)[1]
    assert edit["model_id"] == "fal-ai/flux-pro/kontext"
    assert edit["body"]["prompt"] == "add fog"
    assert edit["body"]["image_url"] == fal.job(made["request_id"])["output"]["images"][0]["url"]
    assert second["params"]["caption"].startswith("add fog")
    assert "v2" in second["params"]["caption"]

    jobs, ledger = await job_count(db, USER), await ledger_rows(db, USER)
    undo = buttons(second)["↩️ Undo"]
    telegram.press_button(USER, message_id(second), undo)
    telegram.press_button(USER, message_id(second), undo)  # a second tap shows nothing more
    answers = telegram.wait_for("answerCallbackQuery", count=2)

    photos = telegram.wait_for("sendPhoto", chat_id=USER, count=3)
    assert len(photos) == 3
    assert photos[2]["params"]["photo"] == first["response"]["result"]["photo"][-1]["file_id"]
    assert photos[2]["params"]["caption"] == first["params"]["caption"]
    assert answers[1]["params"]["text"] == i18n.gettext("undo_done", locale="en")
    assert (await job_count(db, USER), await ledger_rows(db, USER)) == (jobs, ledger)
