"""The prompt helper's call, bounded: its rewrite when the LLM answers in time, the user's
words (None) when it is slow, refuses or answers nothing usable; and then, in the submit
task, the helper's price goes back, once."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from core.domain import credits
from core.domain.catalog import catalog
from core.domain.models import Job, LedgerEntry, Reason
from core.domain.users import touch_user
from core.fal.client import FalFinalError, FalRetryableError
from core.infra.retry import RetryLater
from core.jobs import lifecycle
from tests.builders import a_job
from tests.workers.harness import Behaviour, FakeFal, Worker, refusing_connection
from workers.prompt_helper import improved_prompt
from workers.submission import submit_job

HELPER = catalog().prompt_helper.model_copy(update={"timeout_seconds": 0.2})


class FakeLLM:
    """fal.run as the helper sees it: `answer` after `delay` seconds, or `error` raised."""

    def __init__(
        self,
        answer: dict[str, Any] | None = None,
        *,
        delay: float = 0,
        error: Exception | None = None,
    ) -> None:
        self.answer, self.delay, self.error = answer or {}, delay, error
        self.asked: list[tuple[str, dict[str, Any]]] = []

    async def run(
        self, model_id: str, arguments: dict[str, Any], *, http_timeout: float
    ) -> dict[str, Any]:
        self.asked.append((model_id, arguments))
        await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return self.answer


async def rewrite(llm: FakeLLM, words: str = "кот в шляпе") -> str | None:
    return await improved_prompt(llm, HELPER, words)  # type: ignore[arg-type]


async def test_the_rewrite_is_the_llms_answer_on_one_line() -> None:
    llm = FakeLLM({"output": "  A cat\n wearing a   hat ", "usage": {"cost": 0.0004}})
    assert await rewrite(llm) == "A cat wearing a hat"
    [(endpoint, arguments)] = llm.asked
    assert endpoint == "openrouter/router"
    assert arguments == HELPER.arguments("кот в шляпе")


@pytest.mark.parametrize(
    "llm",
    [
        FakeLLM({"output": "too late"}, delay=30),
        FakeLLM(error=FalRetryableError("fal run: HTTP 503", status=503)),
        FakeLLM(error=FalFinalError("fal run: HTTP 422", status=422)),
        FakeLLM({"output": "", "error": None}),
        FakeLLM({"output": "half", "error": "provider returned an error"}),
    ],
    ids=["slow", "unavailable", "refused", "empty", "error"],
)
async def test_the_users_words_go_when_the_llm_does_not_help(llm: FakeLLM) -> None:
    async with asyncio.timeout(5):  # the helper's own bound ends the slow one, not this
        assert await rewrite(llm) is None


def test_the_shipped_bound_is_a_few_seconds() -> None:
    assert catalog().prompt_helper.timeout_seconds <= 5


async def _hanging(fal: FakeFal, request: httpx.Request) -> httpx.Response:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def _failing(fal: FakeFal, request: httpx.Request) -> httpx.Response:
    return httpx.Response(500, json={"detail": "Internal server error"})


def _submitting(sent: list[dict[str, Any]]) -> Behaviour:
    """fal takes the submit; its body is kept in `sent`."""

    async def behave(fal: FakeFal, request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return fal.accept(request)

    return behave


async def _helped_job(worker: Worker, user_id: int) -> tuple[Job, int]:
    """A queued job with the helper on, reserved as the bot does; and the image's price."""
    async with worker.sessions() as session:
        await touch_user(
            session, user_id=user_id, username=None, first_name=None, language_code="ru"
        )
    model = catalog().find("fal-ai/flux/schnell")
    assert model is not None
    job = a_job(user_id, prompt="кот в шляпе", model=model)
    job.options = {"improve": True}
    price = credits.Allowance(free_per_day=10).price(user_id, model, job.options)
    assert price == model.cost(job.options) + catalog().prompt_helper.price > model.cost({})
    assert await lifecycle.accept(worker.sessions, job, price=price, free_per_day=10)
    return job, model.cost(job.options)


async def _ledger(worker: Worker, job: Job) -> list[tuple[str, int]]:
    async with worker.sessions() as session:
        entries = await session.scalars(
            select(LedgerEntry).where(LedgerEntry.ref == job.id).order_by(LedgerEntry.id)
        )
        return [(entry.reason, entry.amount) for entry in entries]


async def _balance(worker: Worker, user_id: int) -> int:
    async with worker.sessions() as session:
        return (await credits.balance_of(session, user_id)).total


@pytest.mark.parametrize("llm", [_hanging, _failing], ids=["timing out", "failing"])
async def test_when_the_helper_does_not_help_its_price_goes_back_once(
    worker: Worker, llm: Behaviour
) -> None:
    """The user's words go, and the user pays for the picture alone, though the submit task
    runs twice (fal refused the connection the first time)."""
    job, image_price = await _helped_job(worker, 31)
    sent: list[dict[str, Any]] = []
    worker.fal.next += [llm, refusing_connection(), _submitting(sent)]
    with pytest.raises(RetryLater):
        await submit_job(worker.services, job.id, attempt=1)
    await submit_job(worker.services, job.id, attempt=2)

    [body] = sent
    assert body["prompt"] == "кот в шляпе"
    helper = catalog().prompt_helper.price
    assert await _ledger(worker, job) == [
        (Reason.RESERVE, -(image_price + helper)),
        (Reason.HELPER_REFUND, helper),
    ]
    assert await _balance(worker, 31) == 10 - image_price
    stored = await worker.reload(job)
    assert stored.options["prompt_sent"] == "кот в шляпе"
    assert "improved_prompt" not in stored.options

    # The job failing later gives back the rest of what it took, not the helper's part again.
    assert await lifecycle.fail(worker.sessions, stored, "fal_unavailable")
    assert await _balance(worker, 31) == 10


async def test_a_job_cancelled_while_the_helper_thinks_is_refunded_whole_once(
    worker: Worker,
) -> None:
    job, image_price = await _helped_job(worker, 32)

    async def cancelled_meanwhile(fal: FakeFal, request: httpx.Request) -> httpx.Response:
        assert await lifecycle.cancel(worker.sessions, job, unsent=True)
        return httpx.Response(500, json={"detail": "Internal server error"})

    worker.fal.next.append(cancelled_meanwhile)
    await submit_job(worker.services, job.id, attempt=1)

    helper = catalog().prompt_helper.price
    assert await _ledger(worker, job) == [
        (Reason.RESERVE, -(image_price + helper)),
        (Reason.REFUND, image_price + helper),
    ]
    assert await _balance(worker, 32) == 10
    assert worker.fal.accepted == []
