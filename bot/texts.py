"""Everything the bot says, in Russian and English. Keys are shared; a missing key is a bug
caught by tests, not a blank message."""

from __future__ import annotations

from typing import Final

TEXTS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "start": (
            "👋 Hi, {name}! I'm <b>kadr</b>: I make pictures and videos with AI.\n\n"
            "Just write what you want to see, for example:\n"
            "<i>a red fox in a snowy forest, golden hour</i>\n\n"
            "/help — what I can do · /language — change language"
        ),
        "help": (
            "<b>What I can do</b>\n"
            "• Write a description — I'll draw it.\n"
            "• /image &lt;description&gt; — the same, explicitly.\n"
            "• /language — switch between English and Russian.\n\n"
            "Results usually arrive within a minute."
        ),
        "language_prompt": "Choose your language:",
        "language_set": "✅ Language: English",
    },
    "ru": {
        "start": (
            "👋 Привет, {name}! Я <b>kadr</b>: делаю картинки и видео с помощью ИИ.\n\n"
            "Просто напишите, что хотите увидеть, например:\n"
            "<i>рыжая лиса в заснеженном лесу, золотой час</i>\n\n"
            "/help — что я умею · /language — сменить язык"
        ),
        "help": (
            "<b>Что я умею</b>\n"
            "• Напишите описание — я нарисую.\n"
            "• /image &lt;описание&gt; — то же самое, явно.\n"
            "• /language — переключить русский и английский.\n\n"
            "Результат обычно приходит в течение минуты."
        ),
        "language_prompt": "Выберите язык:",
        "language_set": "✅ Язык: русский",
    },
}

LANGUAGE_NAMES: Final[dict[str, str]] = {"ru": "🇷🇺 Русский", "en": "🇬🇧 English"}


def t(language: str, key: str, **values: object) -> str:
    """The text `key` in `language` (English when the language is unknown)."""
    catalog = TEXTS.get(language, TEXTS["en"])
    return catalog[key].format(**values) if values else catalog[key]
