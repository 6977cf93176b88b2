"""Inline mode: `@bot words` in any chat lists the user's own results whose prompt holds the
words, as Telegram's copies of the files (nothing is generated or sent again), and offers a
button into the private chat with the words as a ready prompt.

An inline query only reads the database: it never waits for a generation. The answer is
personal (`is_personal`) and cached briefly, so a new result shows up within seconds.
"""

from __future__ import annotations

import base64
import binascii
from html import escape

from aiogram import F, Router
from aiogram.filters import CommandObject, CommandStart
from aiogram.types import (
    InlineQuery,
    InlineQueryResultsButton,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.i18n import _
from bot.shared_results import shared_results
from core.domain.models import User
from core.jobs.queries import results_of

router = Router(name="inline")

#: Telegram shows at most 50 results per answer.
MAX_RESULTS = 50
#: Jobs read per query: a job has up to four files, the newest are what a person looks for.
JOBS_PER_QUERY = 20
MAX_WORDS = 8
#: Seconds Telegram may reuse an answer for this user: short, so a new result shows soon.
CACHE_SECONDS = 10
#: A start parameter is 1-64 characters of A-Z a-z 0-9 _ -: "p_" and base64url of the
#: prompt's first 46 bytes (62 characters) fit.
PROMPT_PREFIX = "p_"
PROMPT_BYTES = 46
#: The parameter of the button when there are no words: /start's plain greeting.
NO_PROMPT = "inline"


def prompt_parameter(prompt: str) -> str:
    """The start parameter that carries `prompt` (cut to fit, never mid-character)."""
    data = prompt.encode()[:PROMPT_BYTES].decode(errors="ignore").encode()
    return PROMPT_PREFIX + base64.urlsafe_b64encode(data).decode().rstrip("=")


def prompt_of(parameter: str) -> str | None:
    """The prompt a start parameter carries, or None when it carries none."""
    encoded = parameter.removeprefix(PROMPT_PREFIX)
    try:
        prompt = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, ValueError):
        return None
    return prompt.strip() or None


@router.inline_query()
async def inline_query(
    query: InlineQuery, user: User, sessions: async_sessionmaker[AsyncSession]
) -> None:
    words = query.query.split()[:MAX_WORDS]
    async with sessions() as session:
        jobs = await results_of(session, user.id, limit=JOBS_PER_QUERY, words=words)
    results = [result for job in jobs for result in shared_results(job)][:MAX_RESULTS]
    prompt = " ".join(words)
    button = InlineQueryResultsButton(
        text=_("inline_make", prompt=prompt) if prompt else _("inline_open"),
        start_parameter=prompt_parameter(prompt) if prompt else NO_PROMPT,
    )
    await query.answer(results, cache_time=CACHE_SECONDS, is_personal=True, button=button)


@router.message(CommandStart(deep_link=True, magic=F.args.startswith(PROMPT_PREFIX)))
async def start_with_prompt(message: Message, command: CommandObject) -> None:
    """The inline button's way in: the words wait on a button; one tap sends them as a
    prompt, through the normal path (checked and charged like any other)."""
    prompt = prompt_of(command.args or "")
    if prompt is None:
        await message.answer(_("inline_prompt_lost"))
        return
    keyboard = ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text=prompt)]], resize_keyboard=True, one_time_keyboard=True
    )
    await message.answer(_("inline_prompt_offer", prompt=escape(prompt)), reply_markup=keyboard)
