"""The catalogues (bot/locales/*/LC_MESSAGES/messages.po): both languages carry every key
with a text and the same placeholders, plural entries are the ones the code counts with,
every key the code asks for by name exists, Russian numbers agree, and a handler answers in
the user's language with no language passed around."""

from __future__ import annotations

import ast
import io
import string
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po
from sqlalchemy import update

from bot.i18n import PLURALS, _, catalogue_path, error_text, read_catalogue, use_locale
from bot.job_messages import failure_text
from core.domain.models import Job, User
from core.jobs.errors import CODES
from tests.bot.conftest import Chat

ROOT = Path(__file__).resolve().parents[2]
LOCALES = ("en", "ru")


def _texts(catalog: Catalog) -> dict[str, tuple[str, ...]]:
    """key → its text, or its plural forms."""
    found: dict[str, tuple[str, ...]] = {}
    for message in catalog:
        if not message.id:
            continue  # the header
        key = message.id if isinstance(message.id, str) else message.id[0]
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        found[key] = tuple(form or "" for form in forms)
    return found


def _fields(forms: tuple[str, ...]) -> set[str]:
    return {
        name
        for form in forms
        for _text, name, _spec, _conv in string.Formatter().parse(form)
        if name
    }


def catalogue_problems(catalogs: dict[str, Catalog]) -> list[str]:
    """What would show a user a bare key or a broken text; [] when the catalogues are whole."""
    problems: list[str] = []
    texts = {locale: _texts(catalog) for locale, catalog in catalogs.items()}
    keys = set().union(*texts.values())
    for locale, found in texts.items():
        plural_count = catalogs[locale].num_plurals
        for key in sorted(keys):
            forms = found.get(key)
            if forms is None:
                problems.append(f"{locale}: {key} is missing")
            elif not all(forms):
                problems.append(f"{locale}: {key} has an empty text")
            elif key in PLURALS and len(forms) != plural_count:
                problems.append(f"{locale}: {key} needs {plural_count} plural forms")
            elif key not in PLURALS and len(forms) != 1:
                problems.append(f"{locale}: {key} has plural forms but is not in PLURALS")
    for key in sorted(keys):
        fields = {locale: _fields(found.get(key, ())) for locale, found in texts.items()}
        if len({frozenset(names) for names in fields.values()}) > 1:
            problems.append(f"{key}: placeholders differ between languages: {fields}")
    for key, count_name in PLURALS.items():
        if key not in keys:
            problems.append(f"{key} is in PLURALS but in no catalogue")
        elif any(count_name not in _fields(found.get(key, ())) for found in texts.values()):
            problems.append(f"{key}: its count {{{count_name}}} is not in its text")
    return problems


def _catalogues() -> dict[str, Catalog]:
    return {locale: read_catalogue(locale) for locale in LOCALES}


def test_both_catalogues_carry_every_key_with_a_text() -> None:
    catalogs = _catalogues()
    assert len(_texts(catalogs["en"])) >= 100
    assert catalogue_problems(catalogs) == []


def _broken_ru(edit: str, into: str) -> dict[str, Catalog]:
    text = catalogue_path("ru").read_text()
    assert edit in text
    broken = read_po(io.BytesIO(text.replace(edit, into, 1).encode()), locale="ru")
    return {"en": read_catalogue("en"), "ru": broken}


@pytest.mark.parametrize(
    ("edit", "into", "problem"),
    [
        ('msgid "photo_gone"\n', 'msgid "photo_gone_renamed"\n', "ru: photo_gone is missing"),
        ('msgstr "Выберите язык:"', 'msgstr ""', "ru: language_prompt has an empty text"),
        ("позиция {position}", "позиция {positon}", "status_position: placeholders differ"),
        ("msgstr[2]", "msgstr[3]", "ru: prompt_too_long has an empty text"),
    ],
)
def test_a_broken_catalogue_is_caught(edit: str, into: str, problem: str) -> None:
    """The check above can fail: a key removed, a text emptied, a placeholder misspelt, a
    plural form lost in the Russian file."""
    problems = catalogue_problems(_broken_ru(edit, into))
    assert any(problem in found for found in problems), problems


def _asked_for() -> set[tuple[str, str]]:
    """(file, key) of every `_("key", …)` in the bot, the workers and the CLI, and of every
    `Refusal("key", …)` (core's refusals are shown by key)."""
    asked = set()
    for package in ("bot", "workers", "kadr", "core"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id in ("_", "Refusal")
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                ):
                    asked.add((path.relative_to(ROOT).as_posix(), node.args[0].value))
    return asked


def test_every_key_asked_for_by_name_exists() -> None:
    asked = _asked_for()
    assert len(asked) > 50, "few _(key) calls found: the test looks in the wrong place"
    assert any(where.startswith("core/") for where, _key in asked), "no Refusal(key) found"
    keys = set(_texts(read_catalogue("en")))
    assert [(where, key) for where, key in sorted(asked) if key not in keys] == []


@pytest.mark.parametrize(
    ("locale", "count", "expected"),
    [
        ("ru", 1, "💰 1 кредит\n"),
        ("ru", 2, "💰 2 кредита\n"),
        ("ru", 5, "💰 5 кредитов\n"),
        ("ru", 11, "💰 11 кредитов\n"),
        ("ru", 12, "💰 12 кредитов\n"),
        ("ru", 21, "💰 21 кредит\n"),
        ("ru", 22, "💰 22 кредита\n"),
        ("en", 1, "💰 1 credit\n"),
        ("en", 2, "💰 2 credits\n"),
        ("en", 0, "💰 0 credits\n"),
    ],
)
def test_numbers_agree_with_their_nouns(locale: str, count: int, expected: str) -> None:
    with use_locale(locale):
        assert _("balance", balance=count, free=count, paid=0).startswith(expected)


@pytest.mark.parametrize("code", sorted(CODES))
def test_an_error_code_with_a_text_of_its_own_gets_it(code: str) -> None:
    """Plural entries included: their catalogue id is a (singular, plural) pair."""
    ids = {m.id[0] if isinstance(m.id, tuple) else m.id for m in read_catalogue("en")}
    with use_locale("en"):
        text = error_text(code, limit_mb=10, max_side=4096)
        expected = _(f"error_{code}" if f"error_{code}" in ids else "error_generic",
                     limit_mb=10, max_side=4096)  # fmt: skip
    assert text == expected


def test_russian_jobs_and_characters_agree_too() -> None:
    with use_locale("ru"):
        assert "уже 1 задача в работе" in _("too_many_jobs", count=1)
        assert "уже 3 задачи в работе" in _("too_many_jobs", count=3)
        assert "можно запускать 5 задач в минуту" in _("too_many_requests", limit=5)
        assert "21 символ," in _("prompt_too_long", length=21, limit=2000)
    with use_locale("en"):
        assert "You already have 1 job in progress" in _("too_many_jobs", count=1)


def test_a_worker_text_is_in_the_jobs_language_whatever_the_context() -> None:
    job = Job(language="ru", error="timeout", mode="text_to_image", model="m", prompt="p")
    with use_locale("en"):
        assert failure_text(job).startswith("⌛ Задача выполнялась слишком долго")
    job.language = "en"
    with use_locale("ru"):
        assert failure_text(job).startswith("⌛ This took too long")


def _sender(chat: Chat, language_code: str) -> dict[str, object]:
    return {
        "id": chat.user_id,
        "is_bot": False,
        "first_name": "Ann",
        "language_code": language_code,
    }


async def test_a_handler_answers_in_the_users_language(chat: Chat, broke: Chat) -> None:
    await chat.say("/help", **{"from": _sender(chat, "ru-RU")})
    await broke.say("/help", **{"from": _sender(broke, "en")})
    [russian] = chat.texts()
    [english] = broke.texts()
    assert russian.startswith("<b>Что я умею</b>")
    assert english.startswith("<b>What I can do</b>")


async def test_the_stored_language_wins_over_telegrams(chat: Chat) -> None:
    await chat.say("/balance", **{"from": _sender(chat, "en")})
    async with chat.sessions() as session:
        await session.execute(update(User).where(User.id == chat.user_id).values(language="ru"))
        await session.commit()
    await chat.say("/balance", **{"from": _sender(chat, "en")})
    english, russian = chat.texts()
    assert english.startswith("💰 10 credits\n"), english
    assert russian.startswith("💰 10 кредитов\n"), russian
