"""Telegram's flood control as token buckets: ~30 messages/s per bot, ~1/s per private chat with a
short burst, 20/min per group. Only requests that pass take a token, like Telegram."""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

GLOBAL_RATE = 30.0
PRIVATE_BURST = 3.0
PRIVATE_RATE = 1.0
GROUP_BURST = 20.0
GROUP_RATE = 20.0 / 60.0


@dataclass(slots=True)
class Bucket:
    capacity: float
    rate: float
    stamp: float
    tokens: float = 0.0

    def __post_init__(self) -> None:
        self.tokens = self.capacity

    def wait(self, now: float) -> float:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


class FloodControl:
    """`clock` is the stand-in's time; a test passes its own to show the limits without
    depending on how fast its requests happen to be."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._global = Bucket(GLOBAL_RATE, GLOBAL_RATE, clock())
        self._chats: dict[int, Bucket] = {}

    def acquire(self, chat_id: object) -> int | None:
        """Takes a token from every bucket involved, or returns the retry_after to answer."""
        now = self._clock()
        buckets = [self._global]
        if isinstance(chat_id, int):
            buckets.append(self._chats.get(chat_id) or self._chat_bucket(chat_id, now))
        wait = max(bucket.wait(now) for bucket in buckets)
        if wait > 0:
            return max(1, math.ceil(wait))
        for bucket in buckets:
            bucket.tokens -= 1
        return None

    def _chat_bucket(self, chat_id: int, now: float) -> Bucket:
        bucket = (
            Bucket(PRIVATE_BURST, PRIVATE_RATE, now)
            if chat_id > 0
            else Bucket(GROUP_BURST, GROUP_RATE, now)
        )
        self._chats[chat_id] = bucket
        return bucket
