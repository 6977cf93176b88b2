"""The catalog operators edit: the shipped one is valid, mistakes are named in one line (a
model's fal cost and the Star's value included), and user options map onto each model's own
input keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.domain.catalog import DEFAULT_PATH, MODES, CatalogError, load_catalog


def test_the_shipped_catalog_offers_every_mode() -> None:
    catalog = load_catalog()
    assert {mode: catalog.offered(mode)[0].id for mode in MODES} == {
        "text_to_image": "fal-ai/flux/schnell",
        "edit": "fal-ai/flux-pro/kontext",
        "retouch": "fal-ai/retoucher",
        "text_to_video": "fal-ai/kling-video/v2.5-turbo/pro/text-to-video",
        "image_to_video": "fal-ai/kling-video/v2.1/standard/image-to-video",
    }


@pytest.mark.parametrize(
    ("model_id", "options", "expected"),
    [
        (
            "fal-ai/flux/schnell",
            {"aspect_ratio": "16:9", "num_images": 3},
            {"image_size": "landscape_16_9", "num_images": 3, "prompt": "p"},
        ),
        (
            "fal-ai/flux-pro/kontext",
            {"aspect_ratio": "9:16", "image_url": "u"},
            {"aspect_ratio": "9:16", "image_url": "u", "prompt": "p"},
        ),
        (
            "fal-ai/nano-banana/edit",
            {"image_url": "u", "num_images": 2},
            {"image_urls": ["u"], "num_images": 2, "prompt": "p"},
        ),
        ("fal-ai/retoucher", {"image_url": "u", "aspect_ratio": "1:1"}, {"image_url": "u"}),
        (
            "fal-ai/veo3.1/fast",
            {"aspect_ratio": "3:4", "seed": 7},
            {"aspect_ratio": "9:16", "seed": 7, "prompt": "p", "duration": "4s"},
        ),
    ],
)
def test_options_map_to_each_models_keys(model_id: str, options: dict, expected: dict) -> None:
    model = load_catalog().find(model_id)
    assert model is not None
    arguments = model.arguments("p", options)
    assert {key: arguments[key] for key in expected} == expected
    assert set(arguments) - set(expected) <= set(model.defaults)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda text: text.replace("price = 2", "price = -1", 1), "price"),
        (
            lambda text: text.replace('image_key = "image_url"\n# fal', "# fal", 1),
            "mode retouch needs an image_key",
        ),
        (lambda text: text.replace("[modes.retouch]", "[modes.retouche]"), "modes.retouche"),
        (lambda text: text + "\n[[models]\n", "catalog"),
        (
            lambda text: text.replace(
                'id = "fal-ai/retoucher"', 'id = "fal-ai/retoucher"\nper_image = true'
            ),
            "per_image needs a num_images_key",
        ),
        (lambda text: text.replace('id = "large"', 'id = "small"'), "packs listed twice"),
        (lambda text: text[: text.index("\n[[packs]]")], "packs"),
        (lambda text: text.replace("fal_cost = { dollars = 0.003, ", "fal_cost = {"), "dollars"),
        (
            lambda text: text.replace('per = "request" }', 'per = "request", with_audio = 1 }'),
            "with_audio is a price per second",
        ),
        (
            lambda text: text.replace('defaults = { duration = "5" }', "", 1),
            "a cost per second needs a duration",
        ),
        (lambda text: text.replace("[stars]", "[moons]"), "stars"),
    ],
    ids=[
        "negative-price",
        "missing-image-key",
        "unknown-mode",
        "bad-toml",
        "per-image-without-images",
        "duplicate-pack",
        "no-packs",
        "cost-without-dollars",
        "audio-not-per-second",
        "seconds-without-duration",
        "no-star-value",
    ],
)
def test_mistakes_are_named(tmp_path: Path, edit, message: str) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text(edit(DEFAULT_PATH.read_text()))
    with pytest.raises(CatalogError, match=message):
        load_catalog(path)


@pytest.mark.parametrize(
    ("model_id", "options", "cost"),
    [
        ("fal-ai/flux/schnell", {}, 1),
        ("fal-ai/flux/schnell", {"num_images": 3}, 3),
        ("fal-ai/flux/dev", {"num_images": 9}, 12),  # capped at 4 images, as fal is asked
        ("fal-ai/retoucher", {"num_images": 3}, 2),  # one result whatever the option
        ("fal-ai/veo3.1/fast", {"num_images": 2}, 72),
    ],
)
def test_a_job_costs_the_price_per_image_where_fal_bills_per_image(
    model_id: str, options: dict, cost: int
) -> None:
    model = load_catalog().find(model_id)
    assert model is not None
    assert model.cost(options) == cost


def test_the_shipped_packs_and_their_invoice_payloads() -> None:
    packs = load_catalog().packs
    assert [(p.id, p.credits, p.stars) for p in packs] == [("small", 50, 50), ("large", 300, 250)]
    assert all(len(p.payload.encode()) <= 128 for p in packs)
