"""Albums: several photos sent at once make one job (core/telegram/albums.py has the rule).

Each photo of an album is only recorded (no reply: the album is not complete yet); the
update that says the album settled reads them all and goes on as one photo would: with a
caption (Telegram puts it on one photo, usually the first), an edit of them all; without,
the edit / retouch / animate choice, once. A photo that comes after its album was taken is
in none of that: the user is told, once per photo, to send it again.
"""

from __future__ import annotations

from typing import Any

from aiogram import Bot, Router
from aiogram.filters import Filter
from aiogram.fsm.context import FSMContext
from aiogram.types import Message, Update
from arq.connections import ArqRedis

from bot.filters import addressed
from bot.i18n import _
from bot.launch import Launcher
from bot.routers.photos import offer_or_start, photo_of
from core.domain.catalog import MAX_ALBUM
from core.domain.models import User
from core.jobs.queue import enqueue_album
from core.telegram.albums import Albums, Piece, is_settled_update

router = Router(name="albums")


class AlbumPhoto(Filter):
    """A photo or image file of an album; hands the handler `media_group_id`."""

    async def __call__(self, message: Message) -> bool | dict[str, Any]:
        if message.media_group_id is None or (message.photo is None and message.document is None):
            return False
        return {"media_group_id": message.media_group_id}


class Settled(Filter):
    """The update kadr adds once an album's photos stopped coming."""

    async def __call__(self, message: Message, event_update: Update) -> bool:
        return is_settled_update(event_update.update_id)


@router.message(AlbumPhoto(), Settled())
async def on_album(
    message: Message,
    media_group_id: str,
    bot: Bot,
    user: User,
    launcher: Launcher,
    state: FSMContext,
    redis: ArqRedis,
    event_update: Update,
) -> None:
    albums = Albums(redis)
    pieces = (await albums.pieces(message.chat.id, media_group_id))[:MAX_ALBUM]
    captions = [piece.caption for piece in pieces if piece.caption]
    caption = await addressed(message, bot, captions[0] if captions else "")
    if caption is None or not pieces:
        return  # in a group, an album not meant for the bot
    await albums.take(message.chat.id, media_group_id)
    photos = [piece.photo for piece in pieces]
    await offer_or_start(
        message, user, launcher, state, caption or None, photos, event_update.update_id
    )


@router.message(AlbumPhoto())
async def on_album_photo(message: Message, media_group_id: str, redis: ArqRedis) -> None:
    piece = Piece(
        message_id=message.message_id,
        photo=photo_of(message),
        caption=message.caption,
        message=message.model_dump(mode="json", by_alias=True, exclude_none=True),
    )
    if await Albums(redis).record(message.chat.id, media_group_id, piece):
        await message.reply(_("album_photo_late"))
        return
    await enqueue_album(redis, message.chat.id, media_group_id)
