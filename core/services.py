"""What worker tasks and the fal webhook need beyond the shared clients: the fal client and
the Telegram send limiter, built once per process on top of `Resources`."""

from __future__ import annotations

from dataclasses import dataclass

from core.fal_client import FalClient
from core.resources import Resources
from core.telegram_limits import LimitSettings, TelegramLimiter
from core.telegram_send import ResultSender


@dataclass
class Services:
    resources: Resources
    fal: FalClient
    limiter: TelegramLimiter
    sender: ResultSender

    @classmethod
    def build(cls, resources: Resources) -> Services:
        settings = resources.settings
        fal = FalClient(
            resources.http,
            key=settings.FAL_KEY,
            queue_url=settings.FAL_QUEUE_URL,
            rest_url=settings.FAL_REST_URL,
        )
        limiter = TelegramLimiter(
            resources.redis, LimitSettings(total_per_second=settings.TELEGRAM_SENDS_PER_SECOND)
        )
        sender = ResultSender(resources.bot, limiter, resources.http)
        return cls(resources=resources, fal=fal, limiter=limiter, sender=sender)
