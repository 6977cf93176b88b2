"""What worker tasks need beyond the shared clients: the fal client and the result sender,
built once per process on top of `Resources`."""

from __future__ import annotations

from dataclasses import dataclass

from core.fal_client import FalClient
from core.resources import Resources
from core.telegram_send import ResultSender
from core.url_guard import UrlGuard


@dataclass
class Services:
    resources: Resources
    fal: FalClient
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
        guard = UrlGuard.for_fal([settings.FAL_QUEUE_URL, settings.FAL_REST_URL])
        sender = ResultSender(resources.bot, resources.http, guard)
        return cls(resources=resources, fal=fal, sender=sender)
