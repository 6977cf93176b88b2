"""When to try again: the one exception core raises to ask its task runner for a later try."""

from __future__ import annotations

import random


class RetryLater(Exception):
    """Try this task again in `delay` seconds (the worker turns it into arq's Retry)."""

    def __init__(self, delay: float, reason: str = "") -> None:
        super().__init__(f"retry in {delay:.1f}s: {reason}" if reason else f"retry in {delay:.1f}s")
        self.delay = delay


def backoff(attempt: int, *, base: float = 2.0, cap: float = 120.0) -> float:
    """Exponential backoff with full jitter, so many failed jobs do not retry in step."""
    return random.uniform(base / 2, min(cap, base * 2 ** max(attempt - 1, 0)))
