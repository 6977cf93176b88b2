"""Settling an album: once its photos stop coming, one update says so, through the inbox
(core/telegram/albums.py). Runs at least once per album; the inbox takes that update once."""

from __future__ import annotations

import json

from core.infra.retry import RetryLater
from core.telegram.albums import QUIET, Albums, settled_update_id
from core.telegram.inbox import Inbox, partition_of
from workers.services import Services


async def settle_album(services: Services, chat_id: int, media_group_id: str) -> None:
    resources = services.resources
    albums = Albums(resources.redis)
    wait = QUIET - await albums.quiet_for(chat_id, media_group_id)
    if wait > 0:
        raise RetryLater(wait, "the album's photos are still coming")
    pieces = await albums.pieces(chat_id, media_group_id)
    if not pieces:
        return
    update_id = settled_update_id(chat_id, media_group_id)
    update = {"update_id": update_id, "message": pieces[0].message}
    inbox = Inbox(resources.redis, dedup_ttl=resources.config.UPDATE_DEDUP_TTL)
    await inbox.accept(update_id, partition_of(update, update_id), json.dumps(update).encode())
