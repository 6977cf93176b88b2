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
        "prompt_empty": "✍️ Describe the picture after the command, e.g. <code>/image a lighthouse at dawn</code>.",
        "prompt_too_long": "✂️ That description is too long: {length} characters, the limit is {limit}. Please shorten it.",
        "too_many_requests": "🐢 Slow down a little: you can start {limit} jobs per minute. Try again in a moment.",
        "too_many_jobs": "⏳ You already have {count} jobs in progress. Wait for one to finish, please.",
        "status_queued": "⏳ In the queue…",
        "status_generating": "🎨 Generating…",
        "caption": "{prompt}\n\n<i>{model}</i>",
        "error_content_policy_violation": "🚫 The model refused this request: it was flagged by its content checker. Try rephrasing it.",
        "error_timeout": "⌛ This took too long and was stopped. Please try again.",
        "error_fal_unavailable": "⚠️ The image service is unavailable right now. Please try again in a few minutes.",
        "error_no_media_generated": "🤷 The model returned nothing for this request. Try another description.",
        "error_generic": "⚠️ Something went wrong with this job. Please try again.",
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
        "prompt_empty": "✍️ Опишите картинку после команды, например: <code>/image маяк на рассвете</code>.",
        "prompt_too_long": "✂️ Слишком длинное описание: {length} символов, можно не больше {limit}. Сократите, пожалуйста.",
        "too_many_requests": "🐢 Чуть помедленнее: можно запускать {limit} задач в минуту. Попробуйте через минутку.",
        "too_many_jobs": "⏳ У вас уже {count} задач в работе. Дождитесь, пока одна из них закончится.",
        "status_queued": "⏳ В очереди…",
        "status_generating": "🎨 Рисую…",
        "caption": "{prompt}\n\n<i>{model}</i>",
        "error_content_policy_violation": "🚫 Модель отказалась: запрос не прошёл её проверку содержимого. Попробуйте сформулировать иначе.",
        "error_timeout": "⌛ Задача выполнялась слишком долго и была остановлена. Попробуйте ещё раз.",
        "error_fal_unavailable": "⚠️ Сервис генерации сейчас недоступен. Попробуйте через несколько минут.",
        "error_no_media_generated": "🤷 Модель ничего не вернула на этот запрос. Попробуйте другое описание.",
        "error_generic": "⚠️ С этой задачей что-то пошло не так. Попробуйте ещё раз.",
    },
}

LANGUAGE_NAMES: Final[dict[str, str]] = {"ru": "🇷🇺 Русский", "en": "🇬🇧 English"}


def error_text(language: str, error: str | None) -> str:
    """The user-facing explanation of a job error code; unknown codes get the generic one."""
    key = f"error_{error}"
    return t(language, key if key in TEXTS["en"] else "error_generic")


def t(language: str, key: str, **values: object) -> str:
    """The text `key` in `language` (English when the language is unknown)."""
    catalog = TEXTS.get(language, TEXTS["en"])
    return catalog[key].format(**values) if values else catalog[key]
