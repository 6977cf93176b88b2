"""Domain objects as the tests need them, built one way."""

from __future__ import annotations

from core.domain.catalog import DEFAULT_PATH, ModelSpec, catalog
from core.domain.models import Job, new_job_id
from core.jobs.queries import new_job


def a_job(user_id: int, *, prompt: str = "a cat", model: ModelSpec | None = None) -> Job:
    """A new (not yet stored) job of a private chat's prompt, with the catalog's first model
    unless told otherwise."""
    return new_job(
        job_id=new_job_id(),
        update_id=None,
        user_id=user_id,
        chat_id=user_id,
        language="en",
        model=model or catalog().models[0],
        prompt=prompt,
        options={},
    )


def catalog_with_todays_veo() -> str:
    """The shipped catalog's text with Veo sold as it was before costs were known: fal's
    default 8-second clip with sound ($1.20 at fal) for 60 credits."""
    text = DEFAULT_PATH.read_text()
    text = text.replace('duration = "4s", generate_audio = true', 'duration = "8s"')
    return text.replace("price = 72\n", "price = 60\n")
