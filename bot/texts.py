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
            "• Send a photo with a caption — I'll edit it as the caption says; "
            "without a caption I'll offer to edit, retouch or animate it.\n"
            "• /video &lt;description&gt; — a short video.\n"
            "• /settings — models, aspect ratio, number of images.\n"
            "• /history — your last jobs.\n"
            "• /balance — your credits · /buy — buy more with Telegram Stars.\n"
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
        "error_fal_error": "⚠️ The model could not finish this job. Please try again or change the request.",
        "error_generic": "⚠️ Something went wrong with this job. Please try again.",
        "status_position": "⏳ In the queue, position {position}…",
        "status_cancelled": "✖ Cancelled.",
        "status_details": "{text}\n<i>{model} · {aspect_ratio}</i>",
        "button_cancel": "✖ Cancel",
        "button_regenerate": "🔁 Regenerate",
        "button_edit": "✏️ Edit this",
        "button_animate": "🎬 Animate",
        "button_original": "⬇️ Original",
        "button_retouch": "✨ Retouch",
        "photo_what": "What shall I do with this photo?",
        "photo_ask_instruction": "✏️ What should I change? Describe the edit, e.g. <i>make it winter</i>.",
        "photo_gone": "This photo is no longer here — please send it again.",
        "video_prompt_empty": "✍️ Describe the video after the command, e.g. <code>/video waves rolling onto a beach</code>.",
        "animate_default_prompt": "gentle natural motion, cinematic",
        "job_too_old": "⌛ This result is too old to work with. Send a new request, please.",
        "job_not_yours": "This button belongs to someone else's job.",
        "job_not_done": "This job has not finished yet.",
        "cancel_too_late": "Too late to cancel: the job has already finished.",
        "cancelled_toast": "Cancelled",
        "error_photo_too_big": "📦 That file is too big: the limit is {limit_mb} MB. Please send a smaller one.",
        "error_photo_not_an_image": "🖼 That is not an image I can use. Send a JPEG, PNG or WebP photo.",
        "error_photo_too_large_dimensions": "📐 That picture is too large: each side must be at most {max_side} pixels.",
        "error_photo_too_small_dimensions": "📐 That picture is too small to work with.",
        "error_photo_unreadable": "🖼 I could not read that image. Please send it again, maybe as a photo.",
        "settings_title": "⚙️ <b>Settings</b>\n\n{summary}",
        "settings_summary": "Picture: {text_to_image}\nEdit: {edit}\nRetouch: {retouch}\nVideo: {text_to_video}\nAnimate: {image_to_video}\nAspect ratio: {aspect_ratio} · Images: {num_images}",
        "settings_choose_model": "Choose the model for <b>{mode}</b>:",
        "settings_language": "🌐 Language",
        "settings_back": "← Back",
        "mode_text_to_image": "🎨 Picture",
        "mode_edit": "✏️ Edit",
        "mode_retouch": "✨ Retouch",
        "mode_text_to_video": "🎬 Video",
        "mode_image_to_video": "🎞 Animate",
        "history_empty": "You have no jobs yet. Write a description to make your first picture!",
        "history_title": "🗂 <b>Your last jobs</b>",
        "history_line": "{index}. {icon} {mode} · {status} · {when}\n<i>{prompt}</i>",
        "status_word_queued": "queued",
        "status_word_submitted": "in progress",
        "status_word_completed": "sending",
        "status_word_delivered": "done",
        "status_word_failed": "failed",
        "status_word_cancelled": "cancelled",
        "no_credits": "💳 Not enough credits: this costs {price}, you have {balance}.\nBuy more with /buy or the button below.",
        "no_credits_tomorrow": "💳 Not enough credits: this costs {price}, you have {balance}.\nBuy more with /buy or the button below, or come back tomorrow for {free} free credits.",
        "button_buy": "💳 Buy credits",
        "buy_choose": "💳 Choose a pack of credits (paid with Telegram Stars):",
        "pack_button": "{credits} {word} · {stars} ⭐",
        "invoice_title": "{credits} {word}",
        "invoice_description": "{credits} {word} for pictures and videos in kadr. Bought credits never expire.",
        "pack_unknown": "This pack is no longer on sale. Please open /buy again.",
        "payment_done": "✅ {credits} {word} added. Balance: {balance}.",
        "balance": "💰 {balance} {word}\nFree: {free} · Bought: {paid}",
        "balance_free_daily": "Every day you get up to {free} free credits; they are spent first.",
        "balance_movements": "<b>Last movements</b>",
        "balance_line": "{sign}{amount} · {reason} · {when}",
        "balance_none": "No movements yet.",
        "reason_daily": "daily free credits",
        "reason_reserve": "job",
        "reason_refund": "refund",
        "reason_payment": "purchase",
        "admin_refund_usage": "Usage: <code>/refund &lt;telegram_payment_charge_id&gt;</code>",
        "admin_refund_unknown": "No payment with charge id <code>{charge}</code> was credited.",
        "admin_refund_failed": "Telegram did not refund it: {reason}",
        "admin_refund_done": "↩️ Refunded to user {user}; {taken} credits taken back.",
        "admin_grant_usage": "Usage: <code>/grant &lt;user id&gt; &lt;credits&gt;</code>",
        "admin_grant_done": "🎁 {credits} credits given to user {user}.",
        "admin_unknown_user": "User {user} has never written to the bot.",
        "reason_payment_refund": "payment refunded",
        "reason_grant": "gift",
        "admin_ban_usage": "Usage: <code>/{command} &lt;user id&gt;</code>",
        "admin_banned": "🚫 User {user} is banned: the bot ignores them.",
        "admin_unbanned": "✅ User {user} is no longer banned.",
        "broadcast_started": "📣 Broadcast #{id} started for {users} users. /broadcast shows how it goes.",
        "broadcast_running": "📣 Broadcast #{id} is under way: sent {sent}, skipped {skipped}.",
        "broadcast_done": "📣 Broadcast #{id} done: sent {sent}, skipped {skipped} (blocked the bot).",
        "broadcast_none": "No broadcast yet. Send one with <code>/broadcast &lt;text&gt;</code>.",
        "stats_title": "📊 <b>Today (UTC)</b> · users: {users}",
        "stats_no_jobs": "No jobs yet today.",
        "stats_failures": "Failures: {reasons}",
        "stats_credits": "Credits spent: {spent} · bought: {bought}",
        "stats_backlog": "Queues: {queues} · inbox: {inbox} · dead letters: {dead}",
        "paysupport": (
            "💬 <b>Payment support</b>\n"
            "If a payment went wrong or the credits did not arrive, write here: describe the "
            "problem and give the date and the amount in Stars. We answer within 24 hours and "
            "refund payments whose credits were not spent.\n"
            "Telegram support cannot help with purchases made in this bot."
        ),
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
            "• Пришлите фото с подписью — изменю его, как сказано в подписи; "
            "без подписи предложу изменить, отретушировать или оживить.\n"
            "• /video &lt;описание&gt; — короткое видео.\n"
            "• /settings — модели, формат, число картинок.\n"
            "• /history — последние задачи.\n"
            "• /balance — ваши кредиты · /buy — купить ещё за звёзды Telegram.\n"
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
        "error_fal_error": "⚠️ Модель не смогла выполнить задачу. Попробуйте ещё раз или измените запрос.",
        "error_generic": "⚠️ С этой задачей что-то пошло не так. Попробуйте ещё раз.",
        "status_position": "⏳ В очереди, позиция {position}…",
        "status_cancelled": "✖ Отменено.",
        "status_details": "{text}\n<i>{model} · {aspect_ratio}</i>",
        "button_cancel": "✖ Отменить",
        "button_regenerate": "🔁 Ещё раз",
        "button_edit": "✏️ Изменить",
        "button_animate": "🎬 Оживить",
        "button_original": "⬇️ Оригинал",
        "button_retouch": "✨ Ретушь",
        "photo_what": "Что сделать с этим фото?",
        "photo_ask_instruction": "✏️ Что изменить? Опишите правку, например: <i>сделай зиму</i>.",
        "photo_gone": "Этого фото уже нет — пришлите его ещё раз.",
        "video_prompt_empty": "✍️ Опишите видео после команды, например: <code>/video волны набегают на пляж</code>.",
        "animate_default_prompt": "gentle natural motion, cinematic",
        "job_too_old": "⌛ Этот результат слишком старый. Пришлите новый запрос, пожалуйста.",
        "job_not_yours": "Эта кнопка относится к чужой задаче.",
        "job_not_done": "Эта задача ещё не закончена.",
        "cancel_too_late": "Отменить уже нельзя: задача завершена.",
        "cancelled_toast": "Отменено",
        "error_photo_too_big": "📦 Файл слишком большой: можно не больше {limit_mb} МБ. Пришлите поменьше.",
        "error_photo_not_an_image": "🖼 Это не изображение, с которым я умею работать. Пришлите фото в JPEG, PNG или WebP.",
        "error_photo_too_large_dimensions": "📐 Картинка слишком большая: каждая сторона — не больше {max_side} пикселей.",
        "error_photo_too_small_dimensions": "📐 Картинка слишком маленькая для обработки.",
        "error_photo_unreadable": "🖼 Не получилось прочитать изображение. Пришлите его ещё раз, лучше как фото.",
        "settings_title": "⚙️ <b>Настройки</b>\n\n{summary}",
        "settings_summary": "Картинка: {text_to_image}\nПравка: {edit}\nРетушь: {retouch}\nВидео: {text_to_video}\nОживление: {image_to_video}\nФормат: {aspect_ratio} · Картинок: {num_images}",
        "settings_choose_model": "Выберите модель для режима <b>{mode}</b>:",
        "settings_language": "🌐 Язык",
        "settings_back": "← Назад",
        "mode_text_to_image": "🎨 Картинка",
        "mode_edit": "✏️ Правка",
        "mode_retouch": "✨ Ретушь",
        "mode_text_to_video": "🎬 Видео",
        "mode_image_to_video": "🎞 Оживление",
        "history_empty": "У вас пока нет задач. Напишите описание — и я нарисую первую картинку!",
        "history_title": "🗂 <b>Ваши последние задачи</b>",
        "history_line": "{index}. {icon} {mode} · {status} · {when}\n<i>{prompt}</i>",
        "status_word_queued": "в очереди",
        "status_word_submitted": "в работе",
        "status_word_completed": "отправляется",
        "status_word_delivered": "готово",
        "status_word_failed": "ошибка",
        "status_word_cancelled": "отменено",
        "no_credits": "💳 Не хватает кредитов: это стоит {price}, у вас {balance}.\nКупите ещё командой /buy или кнопкой ниже.",
        "no_credits_tomorrow": "💳 Не хватает кредитов: это стоит {price}, у вас {balance}.\nКупите ещё командой /buy или кнопкой ниже — или приходите завтра за {free} бесплатными кредитами.",
        "button_buy": "💳 Купить кредиты",
        "buy_choose": "💳 Выберите пакет кредитов (оплата звёздами Telegram):",
        "pack_button": "{credits} {word} · {stars} ⭐",
        "invoice_title": "{credits} {word}",
        "invoice_description": "{credits} {word} на картинки и видео в kadr. Купленные кредиты не сгорают.",
        "pack_unknown": "Этот пакет больше не продаётся. Откройте /buy ещё раз.",
        "payment_done": "✅ Начислено: {credits} {word}. Баланс: {balance}.",
        "balance": "💰 {balance} {word}\nБесплатных: {free} · Купленных: {paid}",
        "balance_free_daily": "Каждый день вы получаете до {free} бесплатных кредитов; они тратятся первыми.",
        "balance_movements": "<b>Последние движения</b>",
        "balance_line": "{sign}{amount} · {reason} · {when}",
        "balance_none": "Движений пока нет.",
        "reason_daily": "бесплатные кредиты дня",
        "reason_reserve": "задача",
        "reason_refund": "возврат",
        "reason_payment": "покупка",
        "admin_refund_usage": "Как: <code>/refund &lt;telegram_payment_charge_id&gt;</code>",
        "admin_refund_unknown": "Платёж с charge id <code>{charge}</code> не зачислялся.",
        "admin_refund_failed": "Telegram не вернул платёж: {reason}",
        "admin_refund_done": "↩️ Платёж возвращён пользователю {user}; списано кредитов: {taken}.",
        "admin_grant_usage": "Как: <code>/grant &lt;id пользователя&gt; &lt;кредиты&gt;</code>",
        "admin_grant_done": "🎁 Пользователю {user} начислено кредитов: {credits}.",
        "admin_unknown_user": "Пользователь {user} ещё не писал боту.",
        "reason_payment_refund": "возврат платежа",
        "reason_grant": "подарок",
        "admin_ban_usage": "Как: <code>/{command} &lt;id пользователя&gt;</code>",
        "admin_banned": "🚫 Пользователь {user} заблокирован: бот его не замечает.",
        "admin_unbanned": "✅ Пользователь {user} разблокирован.",
        "broadcast_started": "📣 Рассылка №{id} запущена для {users} пользователей. /broadcast покажет, как идёт.",
        "broadcast_running": "📣 Рассылка №{id} идёт: отправлено {sent}, пропущено {skipped}.",
        "broadcast_done": "📣 Рассылка №{id} закончена: отправлено {sent}, пропущено {skipped} (заблокировали бота).",
        "broadcast_none": "Рассылок ещё не было. Отправьте: <code>/broadcast &lt;текст&gt;</code>.",
        "stats_title": "📊 <b>Сегодня (UTC)</b> · пользователей: {users}",
        "stats_no_jobs": "Сегодня задач ещё не было.",
        "stats_failures": "Ошибки: {reasons}",
        "stats_credits": "Кредитов потрачено: {spent} · куплено: {bought}",
        "stats_backlog": "Очереди: {queues} · входящие: {inbox} · отложенные: {dead}",
        "paysupport": (
            "💬 <b>Поддержка по оплате</b>\n"
            "Если с оплатой что-то не так или кредиты не пришли, напишите сюда: опишите "
            "проблему, укажите дату и сумму в звёздах. Мы отвечаем в течение 24 часов и "
            "возвращаем платежи, кредиты которых не потрачены.\n"
            "Поддержка Telegram не может помочь с покупками в этом боте."
        ),
    },
}

LANGUAGE_NAMES: Final[dict[str, str]] = {"ru": "🇷🇺 Русский", "en": "🇬🇧 English"}


def error_text(language: str, error: str | None, **values: object) -> str:
    """The user-facing explanation of a job error code; unknown codes get the generic one."""
    key = f"error_{error}"
    return t(language, key if key in TEXTS["en"] else "error_generic", **values)


def credits_word(language: str, count: int) -> str:
    """ "credits" agreeing with the number (Russian has three forms)."""
    if language != "ru":
        return "credit" if count == 1 else "credits"
    if count % 10 == 1 and count % 100 != 11:
        return "кредит"
    if 2 <= count % 10 <= 4 and not 12 <= count % 100 <= 14:
        return "кредита"
    return "кредитов"


def t(language: str, key: str, **values: object) -> str:
    """The text `key` in `language` (English when the language is unknown)."""
    catalog = TEXTS.get(language, TEXTS["en"])
    return catalog[key].format(**values) if values else catalog[key]
