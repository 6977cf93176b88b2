"""The prompt helper: an LLM on fal rewrites the user's words into a detailed English prompt
just before the job goes to fal (`workers/submission.py`).

It is a courtesy that must never cost the job: the call is synchronous (fal.run) and bounded
by the catalog's `timeout_seconds`; when fal refuses, fails, answers nothing usable or takes
longer, the user's own words go.
"""

from __future__ import annotations

import asyncio
import logging

from core.domain.catalog import PromptHelper
from core.fal.client import FalClient, FalError
from core.infra.metrics import FAL_CALLS
from core.jobs.start import MAX_PROMPT

log = logging.getLogger(__name__)


async def improved_prompt(fal: FalClient, helper: PromptHelper, words: str) -> str | None:
    """The helper's rewrite of `words`, or None: then the words go as they are."""
    arguments = helper.arguments(words)
    try:
        async with asyncio.timeout(helper.timeout_seconds):
            answer = await fal.run(helper.endpoint, arguments, http_timeout=helper.timeout_seconds)
    except TimeoutError:
        FAL_CALLS.labels("prompt_helper", "slow").inc()
        log.info("prompt helper took over %ss; the user's words go", helper.timeout_seconds)
        return None
    except FalError as exc:
        FAL_CALLS.labels("prompt_helper", "error").inc()
        log.info("prompt helper failed (%s); the user's words go", exc)
        return None
    output = answer.get("output")
    if answer.get("error") or not isinstance(output, str) or not output.strip():
        FAL_CALLS.labels("prompt_helper", "empty").inc()
        return None
    FAL_CALLS.labels("prompt_helper", "ok").inc()
    return " ".join(output.split())[:MAX_PROMPT]
