"""The durable inbox of Telegram updates, in Redis, between the webhook's 200 and a handler.

Telegram never resends an update it got a 200 for, so from that answer on the update must
live somewhere that survives any one process: here. Updates are spread over `PARTITIONS`
lists by chat; a consumer leases a partition (a key with a TTL it keeps renewing), handles
its updates strictly in order and pops each one only after its handler has finished, so
every chat's updates run one at a time, in the order they came, whichever process runs them.
A consumer that dies leaves its lease to run out (`LEASE_SECONDS`); the next one takes the
partition and handles the update at its head again (handlers are safe to run twice).

Each Lua script below is one atomic step: accept (dedup + append), claim, ack, dead-letter.
Dedup and append being one step matters: done apart, a crash between them would leave the
update marked seen but never stored, and Telegram's redelivery would be dropped as a copy.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from core.infra.script_batch import ScriptBatch

#: Lists the updates are spread over. Order holds within a partition, so more partitions
#: mean less waiting behind other chats; changing it while updates wait would break the
#: order of the chats that move, so it is a constant, not a setting.
PARTITIONS = 128
ScriptArg = str | bytes | int | float
LEASE_SECONDS = 10.0
PREFIX = "kadr:inbox"
DEAD = f"{PREFIX}:dead"
TRIES = f"{PREFIX}:tries"

# KEYS: dedup key, partition list. ARGV: dedup TTL (s), entry.
_ACCEPT = """
if redis.call('SET', KEYS[1], 1, 'NX', 'EX', ARGV[1]) then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  return 1
end
return 0
"""

# ARGV: prefix, partitions, owner, lease ms, how many to take, where to start.
# Returns the partitions that have updates and no holder, now leased to `owner`.
_CLAIM = """
local taken = {}
local count = tonumber(ARGV[2])
local want = tonumber(ARGV[5])
for i = 0, count - 1 do
  local p = (tonumber(ARGV[6]) + i) % count
  local list = ARGV[1] .. ':' .. p
  if redis.call('LLEN', list) > 0 then
    if redis.call('SET', list .. ':lease', ARGV[3], 'NX', 'PX', ARGV[4]) then
      taken[#taken + 1] = p
      if #taken >= want then break end
    end
  end
end
return taken
"""

# KEYS: partition list, its lease, tries hash, the update's replayable sends.
# ARGV: owner, entry, update id, lease ms. Pops the entry only if the caller still holds the
# partition and the entry is still at its head: a consumer that lost its lease pops nothing.
_ACK = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
if redis.call('LINDEX', KEYS[1], 0) ~= ARGV[2] then return 0 end
redis.call('LPOP', KEYS[1])
redis.call('HDEL', KEYS[3], ARGV[3])
redis.call('DEL', KEYS[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1
"""

# KEYS: partition list, its lease, tries hash, dead-letter hash.
# ARGV: owner, entry, update id, lease ms, the dead letter's record. The update's replayable
# sends stay (they expire on their own): a dead letter requeued after a fix replays them.
_DEAD_LETTER = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
if redis.call('LINDEX', KEYS[1], 0) ~= ARGV[2] then return 0 end
redis.call('LPOP', KEYS[1])
redis.call('HDEL', KEYS[3], ARGV[3])
redis.call('HSET', KEYS[4], ARGV[3], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1
"""

# KEYS: leases. ARGV: owner, lease ms. Returns 1/0 per lease: still ours (renewed) or lost.
_RENEW = """
local held = {}
for i, lease in ipairs(KEYS) do
  if redis.call('GET', lease) == ARGV[1] then
    redis.call('PEXPIRE', lease, ARGV[2])
    held[i] = 1
  else
    held[i] = 0
  end
end
return held
"""

# KEYS: lease. ARGV: owner.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class InvalidUpdate(ValueError):
    """The body is not a Telegram update; the reason is safe to show to the caller."""


def update_id_of(body: Any) -> int:
    if not isinstance(body, dict):
        raise InvalidUpdate("body must be a JSON object")
    update_id = body.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        raise InvalidUpdate("update_id must be an integer")
    return update_id


def chat_of(body: dict[str, Any]) -> int | None:
    """The chat an update belongs to, read from the raw update without building aiogram's
    models (the webhook's cost): the chat of a message, of a button's message, or the sender."""
    for key, event in body.items():
        if key == "update_id" or not isinstance(event, dict):
            continue
        for holder in (event, event.get("message")):
            chat = holder.get("chat") if isinstance(holder, dict) else None
            if isinstance(chat, dict) and isinstance(chat.get("id"), int):
                return int(chat["id"])
        for field in ("from", "user"):
            sender = event.get(field)
            if isinstance(sender, dict) and isinstance(sender.get("id"), int):
                return int(sender["id"])
    return None


#: Updates that must be answered at once and depend on nothing before them: they get a
#: partition of their own instead of waiting behind their chat's backlog (Telegram gives a
#: pre-checkout query 10 s).
UNORDERED = frozenset({"pre_checkout_query"})


def partition_of(body: dict[str, Any], update_id: int) -> int:
    chat = None if UNORDERED & body.keys() else chat_of(body)
    return (chat if chat is not None else update_id) % PARTITIONS


@dataclass(frozen=True)
class Entry:
    """One update waiting in a partition, exactly as stored (the ack compares the bytes)."""

    raw: bytes

    @property
    def accepted_at(self) -> float:
        return int(self.raw.split(b" ", 1)[0]) / 1000

    @property
    def update(self) -> bytes:
        return self.raw.split(b" ", 1)[1]

    @classmethod
    def of(cls, update: bytes, accepted_at: float) -> Entry:
        return cls(b"%d %s" % (int(accepted_at * 1000), update))


@dataclass(frozen=True)
class InboxStats:
    depth: int
    oldest_age: float
    dead: int


def _list(partition: int) -> str:
    return f"{PREFIX}:{partition}"


def _lease(partition: int) -> str:
    return f"{PREFIX}:{partition}:lease"


def sent_key(update_id: int) -> str:
    """Where the Bot API answers of an update's handler are kept until the update is acked,
    so a handler run again gets them back instead of sending again (core.telegram.outbox)."""
    return f"{PREFIX}:sent:{update_id}"


class Inbox:
    def __init__(self, redis: Redis, *, dedup_ttl: int) -> None:
        self._redis = redis
        self._dedup_ttl = dedup_ttl
        self._accept = ScriptBatch(redis, _ACCEPT)
        self._claim = redis.register_script(_CLAIM)
        self._ack = redis.register_script(_ACK)
        self._dead_letter = redis.register_script(_DEAD_LETTER)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self._lease_ms = int(LEASE_SECONDS * 1000)

    async def accept(self, update_id: int, partition: int, update: bytes) -> bool:
        """Store the update unless its id was seen before; False for a copy. Concurrent
        accepts go to Redis together (core/infra/script_batch.py)."""
        entry = Entry.of(update, time.time())
        keys = [f"kadr:tg-update:{update_id}", _list(partition)]
        return bool(await self._accept(keys, [self._dedup_ttl, entry.raw]))

    async def claim(self, owner: str, count: int, start: int) -> list[int]:
        args: list[ScriptArg] = [PREFIX, PARTITIONS, owner, self._lease_ms, count, start]
        return [int(p) for p in await self._claim(args=args)]

    async def head(self, partition: int) -> Entry | None:
        raw = await self._redis.lindex(_list(partition), 0)  # type: ignore[misc]
        return Entry(raw) if raw is not None else None

    async def begin(self, update_id: int) -> int:
        """Count a try of this update; the count survives the consumer that made it."""
        return int(await self._redis.hincrby(TRIES, str(update_id), 1))  # type: ignore[misc]

    async def ack(self, partition: int, owner: str, entry: Entry, update_id: int) -> bool:
        keys = [_list(partition), _lease(partition), TRIES, sent_key(update_id)]
        args: list[ScriptArg] = [owner, entry.raw, update_id, self._lease_ms]
        return bool(await self._ack(keys=keys, args=args))

    async def dead_letter(
        self, partition: int, owner: str, entry: Entry, update_id: int, reason: str, tries: int
    ) -> bool:
        record = json.dumps(
            {
                "update": entry.update.decode(errors="replace"),
                "reason": reason,
                "tries": tries,
                "accepted_at": entry.accepted_at,
                "dead_at": time.time(),
                "partition": partition,
            }
        )
        keys = [_list(partition), _lease(partition), TRIES, DEAD]
        args: list[ScriptArg] = [owner, entry.raw, update_id, self._lease_ms, record]
        return bool(await self._dead_letter(keys=keys, args=args))

    async def renew(self, owner: str, partitions: Iterable[int]) -> set[int]:
        """Extend the leases still held; returns the partitions that were lost."""
        held = list(partitions)
        if not held:
            return set()
        flags = await self._renew(keys=[_lease(p) for p in held], args=[owner, self._lease_ms])
        return {p for p, flag in zip(held, flags, strict=True) if not int(flag)}

    async def release(self, partition: int, owner: str) -> None:
        await self._release(keys=[_lease(partition)], args=[owner])

    async def stats(self) -> InboxStats:
        async with self._redis.pipeline(transaction=False) as pipe:
            for partition in range(PARTITIONS):
                pipe.llen(_list(partition))
                pipe.lindex(_list(partition), 0)
            pipe.hlen(DEAD)
            replies = await pipe.execute()
        depth = sum(replies[0:-1:2])
        heads = [Entry(raw).accepted_at for raw in replies[1:-1:2] if raw is not None]
        oldest = max(time.time() - min(heads), 0.0) if heads else 0.0
        return InboxStats(depth=depth, oldest_age=oldest, dead=int(replies[-1]))

    async def dead_letters(self) -> dict[int, dict[str, Any]]:
        records = await self._redis.hgetall(DEAD)  # type: ignore[misc]
        return {int(key): json.loads(value) for key, value in records.items()}

    async def requeue_dead(self, only: int | None = None) -> int:
        """Put every dead letter (or only update `only`) back at the end of its partition,
        for another try after a fix; the update keeps its id, so its job (if one was made)
        is not made again."""
        moved = 0
        for update_id, record in (await self.dead_letters()).items():
            if only is not None and update_id != only:
                continue
            update = record["update"].encode()
            entry = Entry.of(update, time.time())
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.rpush(_list(int(record["partition"])), entry.raw)
                pipe.hdel(DEAD, str(update_id))
                # Counted as run once: its next run replays what it sent before.
                pipe.hset(TRIES, str(update_id), "1")
                await pipe.execute()
            moved += 1
        return moved


async def inspect_inbox(redis_url: str, *, requeue: bool, replay: int | None = None) -> str:
    """What `kadr inbox` prints: the inbox's size and every dead letter, one line each;
    `requeue` puts every dead letter back, `replay` only that update."""
    redis = Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=2)
    requeue = requeue or replay is not None
    try:
        inbox = Inbox(redis, dedup_ttl=0)
        requeued = await inbox.requeue_dead(replay) if requeue else 0
        stats = await inbox.stats()
        lines = [
            f"waiting updates:      {stats.depth}",
            f"oldest waiting:       {stats.oldest_age:.1f} s",
            f"dead letters:         {stats.dead}",
        ]
        if requeue:
            lines.append(f"requeued:             {requeued}")
        for update_id, record in sorted((await inbox.dead_letters()).items()):
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(record["dead_at"]))
            lines.append(
                f"  update {update_id}  {when}  tries {record['tries']}  {record['reason']}"
            )
        return "\n".join(lines)
    finally:
        await redis.aclose()
