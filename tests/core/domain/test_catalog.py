"""The catalog operators edit: the shipped one is valid, mistakes are named in one line (a
model's fal cost and the Star's value included), and user options map onto each model's own
input keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.domain.catalog import DEFAULT_PATH, MODES, CatalogError, catalog, load_catalog


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
        (
            lambda text: text.replace(
                'id = "fal-ai/retoucher"', 'id = "fal-ai/retoucher"\nmax_images = 2'
            ),
            "max_images above 1 needs image_key image_urls",
        ),
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
        "several-photos-into-one-url",
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


def test_an_album_goes_to_the_first_model_that_takes_its_photos() -> None:
    shipped = catalog()
    assert shipped.for_photos("edit", 3).id == "fal-ai/nano-banana/edit"
    assert shipped.for_photos("retouch", 3).id == "fal-ai/retoucher"  # none takes more
    kontext = shipped.find("fal-ai/flux-pro/kontext")
    nano = shipped.find("fal-ai/nano-banana/edit")
    assert kontext is not None and nano is not None
    album = {"image_urls": ["a", "b", "c"]}
    assert kontext.arguments("p", album)["image_url"] == "a"
    assert nano.arguments("p", album)["image_urls"] == ["a", "b", "c"]


STYLE = """
[[styles]]
id = "noir"
title = { en = "Noir", ru = "Нуар" }
template = "{prompt}, film noir"
"""


@pytest.mark.parametrize(
    ("style", "message"),
    [
        (STYLE.replace("{prompt}, film noir", "film noir"), r"style noir: template must hold"),
        (STYLE.replace("{prompt}", "{promt}"), r"style noir: template must hold.*promt"),
        (STYLE.replace("{prompt}, film noir", "{prompt} {"), r"style noir: template: "),
        (STYLE.replace(', ru = "Нуар"', ""), r"style noir: title needs ru"),
        (STYLE + 'model = "fal-ai/flux/ultra"\n', r"model fal-ai/flux/ultra is not in"),
        (STYLE + 'model = "fal-ai/veo3.1/fast"\n', r"is a text_to_video model"),
        (STYLE + 'defaults = { aspect_ratio = "2:1" }\n', r"unknown aspect ratio '2:1'"),
        (STYLE + STYLE, r"styles listed twice: \['noir'\]"),
        (STYLE.replace('"noir"', '"No Ir"'), r"styles\.6\.id"),
    ],
    ids=[
        "no-prompt",
        "misspelt-field",
        "broken-template",
        "title-missing-a-language",
        "unknown-model",
        "video-model",
        "unknown-ratio",
        "twice",
        "bad-id",
    ],
)
def test_a_bad_style_stops_start_up_with_one_line(tmp_path: Path, style: str, message: str) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text(DEFAULT_PATH.read_text() + style)
    with pytest.raises(CatalogError, match=message) as refused:
        load_catalog(path)
    assert "\n" not in str(refused.value)


def test_an_operator_adds_a_style_by_editing_the_catalog(tmp_path: Path) -> None:
    path = tmp_path / "catalog.toml"
    style = STYLE + 'model = "fal-ai/flux/dev"\ndefaults = { aspect_ratio = "9:16" }\n'
    path.write_text(DEFAULT_PATH.read_text() + style)
    noir = load_catalog(path).style("noir")
    assert noir is not None
    assert noir.render("кот в шляпе") == "кот в шляпе, film noir"
    assert noir.title_in("ru") == "Нуар"
    assert (noir.model, noir.defaults.aspect_ratio) == ("fal-ai/flux/dev", "9:16")


def test_the_shipped_catalog_has_styles_and_a_prompt_helper() -> None:
    catalog = load_catalog()
    assert 4 <= len(catalog.styles) <= 6
    helper = catalog.prompt_helper
    assert helper.endpoint == "openrouter/router"
    assert 0 < helper.timeout_seconds <= 5
    assert helper.helps("кот в шляпе")
    assert not helper.helps(" ".join(["a detailed english prompt about a cat"] * 3))
