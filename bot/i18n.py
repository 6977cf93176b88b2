"""Everything the bot says, through aiogram's i18n (gettext catalogues read with Babel).

The catalogues are `bot/locales/{en,ru}/LC_MESSAGES/messages.po`. Their msgids are keys
(`"start"`, `"balance"`, …): both languages carry every key with a text, so a call site reads
as what it shows and a missing text is a test failure, not English leaking into Russian. The
texts are HTML; their `{placeholders}` are filled with `str.format` after translation.

The .po files are the only form in the tree: they are compiled in memory when this module is
imported (`PoI18n`), so there is no .mo to forget to rebuild.

Which language: in a handler, the middleware (`UserLocaleMiddleware`, after the user
middleware) sets the user's stored language for the whole update, and code just calls
`_("key", **values)`. Outside a handler (worker tasks) the code that knows whose text it is
says so once with `use_locale(job.language)` (bot/job_messages.py, workers/broadcast.py).

Numbers: a key in `PLURALS` is a plural entry (ngettext): the value it names picks the
form (Russian has three: 1 кредит, 2 кредита, 5 кредитов).
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from aiogram.types import TelegramObject
from aiogram.types import User as TelegramUser
from aiogram.utils.i18n import I18n, I18nMiddleware
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from core.domain.users import LANGUAGES, language_from_code

LOCALES_DIR: Final = Path(__file__).resolve().parent / "locales"
DOMAIN: Final = "messages"
DEFAULT_LOCALE: Final = "en"

LANGUAGE_NAMES: Final[dict[str, str]] = {"ru": "🇷🇺 Русский", "en": "🇬🇧 English"}

#: Plural entries: the key and the value whose number picks the form.
PLURALS: Final[dict[str, str]] = {
    "admin_grant_done": "credits",
    "admin_refund_done": "taken",
    "balance": "balance",
    "balance_free_daily": "free",
    "broadcast_started": "users",
    "error_photo_too_large_dimensions": "max_side",
    "invoice_description": "credits",
    "invoice_title": "credits",
    "invited": "credits",
    "no_credits_tomorrow": "free",
    "pack_button": "credits",
    "payment_done": "credits",
    "prompt_too_long": "length",
    "status_ahead": "ahead",
    "subscription_active": "credits",
    "subscription_button": "credits",
    "subscription_cancelled": "credits",
    "subscription_description": "credits",
    "subscription_renewed": "credits",
    "subscription_started": "credits",
    "subscription_title": "credits",
    "too_many_jobs": "count",
    "too_many_requests": "limit",
}


def catalogue_path(locale: str) -> Path:
    return LOCALES_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_catalogue(locale: str) -> Catalog:
    with catalogue_path(locale).open("rb") as fp:
        return read_po(fp, locale=locale, domain=DOMAIN)


def compile_catalogue(catalog: Catalog) -> gettext.GNUTranslations:
    """The catalogue as gettext reads it: compiled to .mo bytes in memory."""
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


class PoI18n(I18n):
    """aiogram's I18n, fed from the .po files (aiogram's own loader wants compiled .mo)."""

    def find_locales(self) -> dict[str, gettext.GNUTranslations]:
        return {
            locale: compile_catalogue(read_catalogue(locale))
            for locale in LANGUAGES
            if catalogue_path(locale).exists()
        }


i18n: Final = PoI18n(path=LOCALES_DIR, default_locale=DEFAULT_LOCALE, domain=DOMAIN)

#: Every key the catalogues have (the English one; the tests prove Russian has the same).
#: Every msgid; a plural entry's id is the (singular, plural) pair, both the key.
KEYS: Final = frozenset(
    message.id[0] if isinstance(message.id, tuple) else str(message.id)
    for message in read_catalogue("en")
    if message.id
)


def _(key: str, **values: object) -> str:
    """The text `key` in the current language (the update's user, or `use_locale`)."""
    count_name = PLURALS.get(key)
    if count_name is None:
        text = i18n.gettext(key)
    else:
        count = values[count_name]
        assert isinstance(count, int), f"{key}: {count_name} must be a number"
        text = i18n.gettext(key, key, count)
    return text.format(**values) if values else text


def error_text(error: str | None, **values: object) -> str:
    """The user-facing explanation of a job error code; unknown codes get the generic one."""
    key = f"error_{error}"
    return _(key if key in KEYS else "error_generic", **values)


@contextmanager
def use_locale(language: str) -> Iterator[None]:
    """Texts in `language` inside the block: for code that runs outside a handler."""
    with i18n.use_locale(language if language in LANGUAGES else DEFAULT_LOCALE):
        yield


class UserLocaleMiddleware(I18nMiddleware):
    """The update's language: the user's stored choice (set by the user middleware, which
    runs first), else Telegram's language_code, else English."""

    def __init__(self) -> None:
        super().__init__(i18n)

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        user = data.get("user")
        if user is not None and user.language in LANGUAGES:
            return str(user.language)
        sender: TelegramUser | None = data.get("event_from_user")
        if sender is not None and sender.language_code:
            return language_from_code(sender.language_code)
        return DEFAULT_LOCALE
