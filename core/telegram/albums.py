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

The settled update's handler marks the album taken once it goes on with it (an album in a
group not meant for the bot is not). A photo of a taken album handled after that (it reached
the webhook more than `QUIET` after the photo before it) is late: it is in no job, and its
handler tells the user so. Whether a photo is late is decided when it is first recorded and
kept, so its handler run again decides the same (the replay rule, bot/routers/__init__.py).
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
_TAKEN = "taken"
_LATE = "late:"
PREFIX = "kadr:album"

# KEYS: the album's hash. ARGV: the photo's message id, the piece, now, seconds to keep.
# Returns 1 for a late photo: recorded (first) after the album was taken; only marked.
_RECORD = f"""
local late = '{_LATE}' .. ARGV[1]
if redis.call('HEXISTS', KEYS[1], late) == 1 then
    return 1
end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0
        and redis.call('HEXISTS', KEYS[1], '{_TAKEN}') == 1 then
    redis.call('HSET', KEYS[1], late, '1')
    redis.call('EXPIRE', KEYS[1], ARGV[4])
    return 1
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2], '{_LAST}', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 0
"""


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

    async def record(self, chat_id: int, media_group_id: str, piece: Piece) -> bool:
        """Record a photo of the album (once however often it comes); whether it is late:
        the album was taken before it came, without it."""
        value = json.dumps(
            {"photo": piece.photo, "caption": piece.caption, "message": piece.message}
        )
        key = album_key(chat_id, media_group_id)
        now = await self._now()
        late = await self._redis.eval(  # type: ignore[misc]
            _RECORD, 1, key, str(piece.message_id), value, repr(now), str(KEEP_SECONDS)
        )
        return bool(late)

    async def take(self, chat_id: int, media_group_id: str) -> None:
        """The album's photos so far are taken (one job, or the question what to do): any
        photo of it recorded from now on is late."""
        key = album_key(chat_id, media_group_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, _TAKEN, "1")
            pipe.expire(key, KEEP_SECONDS)
            await pipe.execute()

    async def pieces(self, chat_id: int, media_group_id: str) -> list[Piece]:
        """The album's photos in the order they were sent (by message id)."""
        fields = await self._redis.hgetall(album_key(chat_id, media_group_id))  # type: ignore[misc]
        pieces = []
        for name, raw in fields.items():
            name = name.decode() if isinstance(name, bytes) else name
            if not name.isdigit():  # the latest time, the taken mark, a late photo
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
