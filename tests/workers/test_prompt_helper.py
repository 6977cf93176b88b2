"""The prompt helper's call, bounded: its rewrite when the LLM answers in time, the user's
words (None) when it is slow, refuses or answers nothing usable."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from core.domain.catalog import catalog
from core.fal.client import FalFinalError, FalRetryableError
from workers.prompt_helper import improved_prompt

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
