"""Telegram's flood control as token buckets: ~30 messages/s per bot, ~1/s per private chat with a
short burst, 20/min per group. Only requests that pass take a token, like Telegram.

A send with allow_paid_broadcast (Bot API 7.11) that the bot's 30/s cannot take goes within a
bucket of 1,000/s instead, billed 0.1 Star (Telegram bills "requests that exceeded regular
limits"); the chat's own limit holds all the same."""

import math
import time
from dataclasses import dataclass, field

GLOBAL_RATE = 30.0
PAID_RATE = 1000.0
PRIVATE_BURST = 3.0
PRIVATE_RATE = 1.0
GROUP_BURST = 20.0
GROUP_RATE = 20.0 / 60.0


@dataclass(slots=True)
class Bucket:
    capacity: float
    rate: float
    tokens: float = field(init=False)
    stamp: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = self.capacity

    def wait(self, now: float) -> float:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


@dataclass(frozen=True, slots=True)
class Admission:
    """Flood control's answer: `retry_after` to answer 429 with, or None (the request goes);
    `billed`: it went past the free limit as a paid broadcast."""

    retry_after: int | None = None
    billed: bool = False


class FloodControl:
    def __init__(self) -> None:
        self._global = Bucket(GLOBAL_RATE, GLOBAL_RATE)
        self._paid = Bucket(PAID_RATE, PAID_RATE)
        self._chats: dict[int, Bucket] = {}

    def acquire(self, chat_id: object, *, paid: bool = False) -> Admission:
        """Takes a token from every bucket involved, or answers the retry_after."""
        now = time.monotonic()
        chat = []
        if isinstance(chat_id, int):
            chat.append(self._chats.get(chat_id) or self._chat_bucket(chat_id))
        buckets = [self._global, *chat]
        billed = paid and self._global.wait(now) > 0
        if billed:
            buckets = [self._paid, *chat]
        wait = max(bucket.wait(now) for bucket in buckets)
        if wait > 0:
            return Admission(retry_after=max(1, math.ceil(wait)))
        for bucket in buckets:
            bucket.tokens -= 1
        return Admission(billed=billed)

    def _chat_bucket(self, chat_id: int) -> Bucket:
        bucket = (
            Bucket(PRIVATE_BURST, PRIVATE_RATE) if chat_id > 0 else Bucket(GROUP_BURST, GROUP_RATE)
        )
        self._chats[chat_id] = bucket
        return bucket
