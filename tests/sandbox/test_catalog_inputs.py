"""Every input kadr can send fal is one fal takes: each catalog model with every option a user
can choose (aspect ratio, number of images, a Regenerate's seed, the photo) goes to the fal
stand-in, which checks it against the model's published schema (sandbox/fal/schemas.json)."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from core.domain.catalog import ASPECT_RATIOS, MAX_IMAGES, PHOTO_MODES, ModelSpec, catalog

#: Submits are only checked here: a long latency keeps the stand-in from running them.
FAL_LATENCY = 600


@pytest.fixture(scope="module")
async def fal(local_fal: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the module's fal stand-in."""
    async with httpx.AsyncClient(base_url=local_fal, headers={"Authorization": "Key test"}) as c:
        yield c
        await c.post("/_sandbox/reset")


def user_options(model: ModelSpec) -> list[dict[str, Any]]:
    """Every choice a user can make for this model's mode, as the bot stores it on a job."""
    photo = {"image_url": "https://v3.fal.media/files/user/photo.jpg"}
    return [
        {
            "aspect_ratio": ratio,
            "num_images": count,
            **({"seed": seed} if seed is not None else {}),
            **(photo if model.mode in PHOTO_MODES else {}),
        }
        for ratio, count, seed in itertools.product(
            ASPECT_RATIOS, range(1, MAX_IMAGES + 1), (None, 2**31 - 1)
        )
    ]


async def test_every_catalog_model_takes_every_user_option(fal: httpx.AsyncClient) -> None:
    refused = []
    for model in catalog().models:
        sent = {
            json.dumps(model.arguments("a lantern", options), sort_keys=True)
            for options in user_options(model)
        }
        for arguments in sorted(sent):
            response = await fal.post(f"/{model.id}", json=json.loads(arguments))
            if response.status_code != 200:
                refused.append((model.id, response.status_code, response.json()["detail"]))
    assert refused == []
