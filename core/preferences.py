"""A user's choices (/settings): model per mode, aspect ratio, number of images.

Stored as JSON on the user row; anything unreadable or no longer offered falls back to the
default, so an operator can change the catalog without migrating users.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from core.catalog import ASPECT_RATIOS, MAX_IMAGES, Mode, ModelSpec, catalog
from core.models import User


class Preferences(BaseModel):
    models: dict[str, str] = {}
    aspect_ratio: str = "1:1"
    num_images: int = Field(1, ge=1, le=MAX_IMAGES)

    def model_for(self, mode: Mode) -> ModelSpec:
        return catalog().choose(mode, self.models.get(mode))

    def job_options(self) -> dict[str, Any]:
        ratio = self.aspect_ratio if self.aspect_ratio in ASPECT_RATIOS else "1:1"
        return {"aspect_ratio": ratio, "num_images": self.num_images}


def preferences_of(user: User) -> Preferences:
    try:
        return Preferences.model_validate(user.settings or {})
    except ValidationError:
        return Preferences()


async def save_preferences(session: AsyncSession, user: User, preferences: Preferences) -> None:
    user.settings = preferences.model_dump()
    await session.execute(update(User).where(User.id == user.id).values(settings=user.settings))
    await session.commit()
