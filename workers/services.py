"""What worker tasks need beyond the shared clients: the fal client, the result sender and
its receipts, built once per process on top of `Resources`."""

from __future__ import annotations

from dataclasses import dataclass

from core.fal_client import FalClient
from core.receipts import Receipts
from core.resources import Resources
from core.telegram_send import ResultSender
from core.url_guard import UrlGuard


@dataclass
class Services:
    resources: Resources
    fal: FalClient
    sender: ResultSender
    receipts: Receipts

    @classmethod
    def build(cls, resources: Resources) -> Services:
        config = resources.config
        fal = FalClient(
            resources.http,
            key=config.FAL_KEY,
            queue_url=config.FAL_QUEUE_URL,
            rest_url=config.FAL_REST_URL,
        )
        guard = UrlGuard.for_fal([config.FAL_QUEUE_URL, config.FAL_REST_URL])
        sender = ResultSender(resources.bot, resources.http, guard)
        return cls(resources=resources, fal=fal, sender=sender, receipts=Receipts(resources.redis))
