"""A user's choices (/settings, /styles): model per mode, aspect ratio, number of images,
the prompt helper (off by default) and a style.

Stored as JSON on the user row; anything unreadable or no longer offered falls back to the
default, so an operator can change the catalog without migrating users.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.domain.catalog import ASPECT_RATIOS, MAX_IMAGES, Mode, ModelSpec, catalog
from core.domain.models import User


class Preferences(BaseModel):
    models: dict[str, str] = {}
    aspect_ratio: str = "1:1"
    num_images: int = Field(1, ge=1, le=MAX_IMAGES)
    improve_prompts: bool = False
    style: str | None = None

    def model_for(self, mode: Mode) -> ModelSpec:
        return catalog().choose(mode, self.models.get(mode))

    def job_options(self) -> dict[str, Any]:
        ratio = self.aspect_ratio if self.aspect_ratio in ASPECT_RATIOS else "1:1"
        return {
            "aspect_ratio": ratio,
            "num_images": self.num_images,
            "improve": self.improve_prompts,
            "style": self.style,
        }


def preferences_of(user: User) -> Preferences:
    try:
        return Preferences.model_validate(user.preferences or {})
    except ValidationError:
        return Preferences()


async def change_preferences(
    session: AsyncSession, user_id: int, change: Callable[[Preferences], None]
) -> Preferences:
    """Read, change and write in one transaction with the row locked (PostgreSQL), so two
    quick taps on different choices both stick."""
    user = await session.scalar(select(User).where(User.id == user_id).with_for_update())
    if user is None:
        raise LookupError(user_id)
    preferences = preferences_of(user)
    change(preferences)
    await session.execute(
        update(User).where(User.id == user_id).values(preferences=preferences.model_dump())
    )
    await session.commit()
    return preferences
