"""Whether the catalog's prices cover what fal bills: each model's price, what its credits
bring in dollars and its cost at fal, compared before a process serves anyone.

The operator earns Stars and pays fal in dollars. A credit counts at the pack that sells it
cheapest (the least a spent credit was paid); a model counts at the options that leave it the
smallest margin (the aspect ratio that makes the largest picture, the number of images). A
model below the operator's minimum margin stops `kadr api` and `kadr worker`, and fails its
line in `kadr check`, unless the catalog marks it `loss_leader`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from core.domain.catalog import MAX_IMAGES, Catalog, CatalogError, ModelSpec


@dataclass(frozen=True)
class Margin:
    """One job of a model, at its least profitable options."""

    model: str
    credits: int
    """What the job is sold for."""
    price: float
    """Dollars those credits bring."""
    cost: float
    """Dollars fal bills for the job."""

    @property
    def percent(self) -> float:
        """What is left of the price once fal is paid, in percent of the price."""
        if self.price == 0:
            return -math.inf
        return (self.price - self.cost) / self.price * 100

    def refusal(self, minimum: float) -> str:
        """The line that names this model and both figures."""
        left = f"a margin of {self.percent:.0f} %" if self.price else "nothing left"
        return (
            f"{self.model} sells for {self.credits} credits ({usd(self.price)}) and costs "
            f"{usd(self.cost)} at fal: {left}, under the minimum {minimum:g} % (raise its "
            "price, or mark it loss_leader = true)"
        )


def usd(dollars: float) -> str:
    """Dollars to the cent, or to a tenth of a cent where cents would hide the difference
    between a cheap model's price and its cost."""
    return f"${dollars:.2f}" if round(dollars, 2) == round(dollars, 3) else f"${dollars:.3f}"


def margin(model: ModelSpec, credit_dollars: float) -> Margin:
    """The model's job that leaves the smallest margin among the options a user can pick."""
    jobs = [
        Margin(
            model.id,
            model.cost(options),
            model.cost(options) * credit_dollars,
            model.dollars(options),
        )
        for options in _choices(model)
    ]
    return min(jobs, key=lambda job: (round(job.percent, 6), job.credits))


def helper_margin(catalog: Catalog) -> Margin:
    """The prompt helper's: its price added to a job against what one LLM call costs."""
    helper = catalog.prompt_helper
    return Margin(
        f"prompt helper ({helper.endpoint})",
        helper.price,
        helper.price * catalog.credit_dollars,
        helper.fal_cost.dollars,
    )


def margins(catalog: Catalog) -> list[Margin]:
    """Every model's smallest margin, in catalog order."""
    return [margin(model, catalog.credit_dollars) for model in catalog.models]


def check_margins(catalog: Catalog, minimum: float) -> None:
    """Raise CatalogError naming the first model (of how many) that is sold under `minimum`
    percent of margin and not marked loss_leader."""
    leaders = {model.id for model in catalog.models if model.loss_leader}
    if catalog.prompt_helper.loss_leader:
        leaders.add(helper_margin(catalog).model)
    checked = [*margins(catalog), helper_margin(catalog)]
    under = [m for m in checked if m.model not in leaders and m.percent < minimum]
    if under:
        more = f"; and {len(under) - 1} more" if len(under) > 1 else ""
        raise CatalogError(f"catalog: {under[0].refusal(minimum)}{more}")


def _choices(model: ModelSpec) -> list[dict[str, Any]]:
    """Each combination of the options that change what fal makes and bills: the aspect
    ratios the model maps (or none chosen) and the number of images it can make."""
    ratios = [None, *(model.aspect_ratio.values if model.aspect_ratio else [])]
    counts = range(1, MAX_IMAGES + 1) if model.num_images_key else [1]
    return [{"aspect_ratio": ratio, "num_images": count} for ratio in ratios for count in counts]
