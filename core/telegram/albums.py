"""Albums: Telegram sends an album as one update per photo, sharing a `media_group_id`, and
never says how many photos it has. kadr makes one job of it all the same.

Each photo's handler records the photo here (a hash per album, one field per message, so a
photo handled twice is recorded once) with the time of the latest, and enqueues the
album's settle task under a fixed arq id (one per album: queued once, however many photos,
workers or redeliveries). Once no photo has come for `QUIET` seconds, the task puts one more
update in the chat's inbox partition: the album "settled", under an update id of its own
(`settled_update_id`, negative: Telegram's are positive), which the inbox's dedup takes
once. Updates of one chat are handled in order, so every photo the webhook took before it has
been recorded when it is handled; it is the one update that starts the job (whose id follows
from the update id) or asks what to do, as any other update, replays and all.

A photo that reaches the webhook after its album settled (a delay of more than `QUIET` after
the photo before it) is recorded but starts nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

#: Seconds without a new photo after which an album is taken as complete. Telegram posts an
#: album's updates one after another (one at a time per chat, each after our answer).
QUIET = 1.5
#: How long an album's photos are kept: long enough for a settle task that waits out an
#: outage, and for its replay.
KEEP_SECONDS = 24 * 3600
_LAST = "last"
PREFIX = "kadr:album"


@dataclass(frozen=True)
class Piece:
    """One photo of an album: its message (as Telegram sent it), the photo and its caption."""

    message_id: int
    photo: dict[str, Any]
    caption: str | None
    message: dict[str, Any]


def album_key(chat_id: int, media_group_id: str) -> str:
    return f"{PREFIX}:{chat_id}:{media_group_id}"


def settled_update_id(chat_id: int, media_group_id: str) -> int:
    """The id of the update that says the album is complete: the same for every photo,
    worker and run, and never a Telegram update's (those are positive)."""
    digest = hashlib.sha256(f"{chat_id}:{media_group_id}".encode()).digest()
    return -(int.from_bytes(digest[:7], "big") + 1)


def is_settled_update(update_id: int) -> bool:
    return update_id < 0


class Albums:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def record(self, chat_id: int, media_group_id: str, piece: Piece) -> None:
        key = album_key(chat_id, media_group_id)
        value = json.dumps(
            {"photo": piece.photo, "caption": piece.caption, "message": piece.message}
        )
        now = await self._now()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, str(piece.message_id), value)
            pipe.hset(key, _LAST, repr(now))
            pipe.expire(key, KEEP_SECONDS)
            await pipe.execute()

    async def pieces(self, chat_id: int, media_group_id: str) -> list[Piece]:
        """The album's photos in the order they were sent (by message id)."""
        fields = await self._redis.hgetall(album_key(chat_id, media_group_id))  # type: ignore[misc]
        pieces = []
        for name, raw in fields.items():
            name = name.decode() if isinstance(name, bytes) else name
            if name == _LAST:
                continue
            data = json.loads(raw)
            pieces.append(Piece(int(name), data["photo"], data["caption"], data["message"]))
        return sorted(pieces, key=lambda piece: piece.message_id)

    async def quiet_for(self, chat_id: int, media_group_id: str) -> float:
        """Seconds since the album's latest photo was recorded (infinite for none)."""
        last = await self._redis.hget(album_key(chat_id, media_group_id), _LAST)  # type: ignore[misc]
        return float("inf") if last is None else await self._now() - float(last)

    async def _now(self) -> float:
        """Redis's clock, the one all workers share."""
        seconds, micros = await self._redis.time()
        return seconds + micros / 1e6
