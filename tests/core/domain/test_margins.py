"""Prices against fal's costs: a job's cost follows the input kadr sends, a credit counts at
the pack that sells it cheapest, the shipped catalog clears the default margin, a model under
it is named with its price and cost in one line unless it is a loss leader, and the README's
table of models shows the catalog's figures."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from core.domain.catalog import DEFAULT_PATH, Catalog, CatalogError, load_catalog
from core.domain.margins import Margin, check_margins, margins, usd
from core.infra.config import Config
from tests.builders import catalog_with_todays_veo

README = Path(__file__).resolve().parents[3] / "README.md"
VEO = "fal-ai/veo3.1/fast"


def catalog_of(tmp_path: Path, text: str) -> Catalog:
    path = tmp_path / "catalog.toml"
    path.write_text(text)
    return load_catalog(path)


@pytest.mark.parametrize(
    ("model_id", "defaults", "options", "dollars"),
    [
        (VEO, None, {}, 0.60),  # 4 s with sound at $0.15
        (VEO, {"duration": "8s", "generate_audio": False}, {}, 0.80),  # $0.10 silent
        (VEO, {"duration": "8s"}, {}, 1.20),  # fal's default has sound
        ("fal-ai/kling-video/v2.5-turbo/pro/text-to-video", {"duration": "10"}, {}, 0.70),
        ("fal-ai/flux/dev", None, {"aspect_ratio": "16:9", "num_images": 3}, 0.075),
        ("fal-ai/flux/dev", {"image_size": {"width": 2048, "height": 1024}}, {}, 0.05),
        ("fal-ai/flux-pro/kontext", None, {"num_images": 2}, 0.08),
        ("fal-ai/clarity-upscaler", None, {}, 0.72),  # 2500 a side, twice: 24 megapixels
        ("fal-ai/retoucher", None, {"num_images": 3}, 0.01),
    ],
)
def test_a_jobs_cost_follows_the_input_kadr_sends(
    model_id: str, defaults: dict[str, Any] | None, options: dict[str, Any], dollars: float
) -> None:
    model = load_catalog().find(model_id)
    assert model is not None
    if defaults is not None:
        model = model.model_copy(update={"defaults": defaults})
    assert model.dollars(options) == pytest.approx(dollars)


def test_a_credit_counts_at_the_pack_that_sells_it_cheapest() -> None:
    catalog = load_catalog()
    assert [(p.credits, p.stars) for p in catalog.packs] == [(50, 50), (300, 250)]
    assert catalog.credit_dollars == pytest.approx(250 / 300 * 0.013)


def test_the_shipped_catalog_clears_the_default_margin() -> None:
    minimum = Config.model_fields["MIN_MARGIN_PERCENT"].default
    assert minimum == 20
    check_margins(load_catalog(), minimum)
    assert not any(model.loss_leader for model in load_catalog().models)


def test_a_model_under_the_margin_is_named_with_its_price_and_cost(tmp_path: Path) -> None:
    catalog = catalog_of(tmp_path, catalog_with_todays_veo())
    with pytest.raises(CatalogError) as refused:
        check_margins(catalog, 20)
    assert str(refused.value) == (
        "catalog: fal-ai/veo3.1/fast sells for 60 credits ($0.65) and costs $1.20 at fal: "
        "a margin of -85 %, under the minimum 20 % (raise its price, or mark it "
        "loss_leader = true)"
    )


def test_a_cheap_models_figures_keep_their_tenths_of_a_cent(tmp_path: Path) -> None:
    text = DEFAULT_PATH.read_text().replace(
        'title = "Nano Banana"\nprice = 5', 'title = "Nano Banana"\nprice = 4'
    )
    with pytest.raises(
        CatalogError,
        match=re.escape(
            "fal-ai/nano-banana/edit sells for 4 credits ($0.043) and costs $0.039 at fal: "
            "a margin of 10 %"
        ),
    ):
        check_margins(catalog_of(tmp_path, text), 20)


def test_a_loss_leader_is_let_through(tmp_path: Path) -> None:
    text = catalog_with_todays_veo()
    text = text.replace(f'id = "{VEO}"\n', f'id = "{VEO}"\nloss_leader = true\n')
    check_margins(catalog_of(tmp_path, text), 20)


def test_the_operators_minimum_decides() -> None:
    check_margins(load_catalog(), 0)
    with pytest.raises(CatalogError, match=r"fal-ai/flux/dev sells for 3 credits.*; and \d more"):
        check_margins(load_catalog(), 25)


def test_a_model_given_away_leaves_nothing(tmp_path: Path) -> None:
    text = DEFAULT_PATH.read_text().replace("price = 72\n", "price = 0\n")
    with pytest.raises(CatalogError, match=r"sells for 0 credits .* nothing left, under"):
        check_margins(catalog_of(tmp_path, text), 0)


def readme_row(margin: Margin, catalog: Catalog) -> str:
    model = catalog.find(margin.model)
    assert model is not None
    cost = model.fal_cost
    audio = f", {usd(cost.with_audio)} with sound" if cost.with_audio else ""
    return (
        f"| {model.title} | `{model.id}` | {usd(cost.dollars)} per {cost.per}{audio} | "
        f"{margin.credits} ({usd(margin.price)}) | {usd(margin.cost)} | {margin.percent:.0f} % |"
    )


def test_the_readme_shows_each_models_price_cost_and_margin() -> None:
    catalog = load_catalog()
    lines = README.read_text().splitlines()
    rows = [readme_row(margin, catalog) for margin in margins(catalog)]
    assert [row for row in rows if row not in lines] == []
