"""What worker tasks need beyond the shared clients: the fal client, the result sender and
its receipts, built once per process on top of `Resources`."""

from __future__ import annotations

from dataclasses import dataclass

from core.fal.client import FalClient
from core.infra.url_guard import UrlGuard
from core.resources import Resources
from core.telegram.receipts import Receipts
from core.telegram.sender import ResultSender


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
            run_url=config.FAL_RUN_URL,
        )
        guard = UrlGuard.for_fal([config.FAL_QUEUE_URL, config.FAL_REST_URL])
        sender = ResultSender(resources.outbox, resources.http, guard)
        return cls(resources=resources, fal=fal, sender=sender, receipts=Receipts(resources.redis))
