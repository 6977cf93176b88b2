"""`kadr check` compares the catalog with the input schemas fal publishes, here served by the
fal stand-in from the same data it checks submits with: a key a model does not have, a value
outside its enum and a model fal no longer has are named; a fal out of reach is said, and
fails nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from core.domain.catalog import DEFAULT_PATH, catalog, load_catalog
from core.infra.config import Config
from kadr.check import run_check
from kadr.fal_inputs import FalUnreachable, catalog_mismatches

CHECK = "catalog inputs in fal's schemas"
OPENAPI = "/api/openapi/queue/openapi.json"


def edited(tmp_path: Path, *changes: tuple[str, str]) -> Path:
    text = DEFAULT_PATH.read_text()
    for old, new in changes:
        assert old in text
        text = text.replace(old, new, 1)
    path = tmp_path / "catalog.toml"
    path.write_text(text)
    return path


async def test_the_shipped_catalog_matches_fals_schemas(local_fal: str) -> None:
    outcome = await run_check(CHECK, Config(FAL_OPENAPI_URL=local_fal + OPENAPI))
    assert outcome.line() == f"ok   {CHECK}: ok"


async def test_what_fal_does_not_have_is_named(local_fal: str, tmp_path: Path) -> None:
    stale = edited(
        tmp_path,
        ("fidelity = 0.5, upscale_factor = 2", "fidelity = 0.5, upscaling = 2"),
        ('defaults = { safety_tolerance = "2" }', "defaults = { enable_safety_checker = true }"),
        ('id = "fal-ai/veo3.1/fast"', 'id = "fal-ai/veo3/fast"'),
        ('"1:1" = "1:1", "16:9" = "16:9", "9:16" = "9:16", "4:3" = "16:9"', '"1:1" = "square"'),
        ('endpoint = "openrouter/router"', 'endpoint = "fal-ai/any-llm"'),
    )
    async with httpx.AsyncClient() as http:
        problems = await catalog_mismatches(http, local_fal + OPENAPI, load_catalog(stale))
    assert problems == [
        "fal-ai/flux-pro/v1.1 has no input 'enable_safety_checker'",
        "fal-ai/codeformer has no input 'upscaling'",
        'fal-ai/kling-video/v2.5-turbo/pro/text-to-video: aspect_ratio takes none of "square"',
        "fal publishes no schema for fal-ai/veo3/fast: retired or misspelled?",
        "fal publishes no schema for fal-ai/any-llm: retired or misspelled?",
    ]


@pytest.mark.parametrize(
    "unreachable",
    [
        lambda local_fal: "http://127.0.0.1:9" + OPENAPI,
        lambda local_fal: local_fal + "/api/openapi/down",
    ],
    ids=["no connection", "not a schema service"],
)
async def test_a_fal_out_of_reach_is_said_and_fails_nothing(
    local_fal: str, unreachable: Callable[[str], str]
) -> None:
    url = unreachable(local_fal)
    async with httpx.AsyncClient() as http:
        with pytest.raises(FalUnreachable):
            await catalog_mismatches(http, url, catalog())
    outcome = await run_check(CHECK, Config(FAL_OPENAPI_URL=url))
    assert outcome.problem is None
    assert outcome.line().startswith(f"skip {CHECK}: could not reach fal's published schemas")
