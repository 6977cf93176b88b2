"""What fal bills kadr's operator, estimated from the catalog, in the metrics beside the Stars
users pay: the two sides of the operator's money, which Prometheus adds up per day.

fal bills a result it made, never an error or a request it did not run (its docs: "you pay
only for successful outputs"). So a job's cost is counted once, when fal's result is recorded
(the job's move to completed, which happens once): whether kadr then delivers it or fails to,
fal's bill is the same. It is split by what paid the job's credits, so that the free daily
allowance's cost can be told from the cost of what was sold.
"""

from __future__ import annotations

import logging
from typing import Any

from core.domain.catalog import catalog
from core.domain.credits import Balance
from core.infra.metrics import FAL_SPEND, STAR_DOLLARS

log = logging.getLogger(__name__)

# Read at each scrape, so the dashboard can put the Stars earned in dollars beside the spend.
STAR_DOLLARS.set_function(lambda: catalog().stars.dollars)


def count_result(model_id: str, options: dict[str, Any], paid: Balance) -> None:
    """fal made the job's result: its estimated cost, by model and by what paid for it (in
    proportion to the free and bought credits its reservation took)."""
    model = catalog().find(model_id)
    if model is None:
        log.warning("model %s is no longer in the catalog: its cost is not counted", model_id)
        return
    dollars = model.dollars(options)
    for paid_with, share in _shares(paid):
        FAL_SPEND.labels(model_id, paid_with).inc(dollars * share)


def _shares(paid: Balance) -> list[tuple[str, float]]:
    if paid.total == 0:
        return [("none", 1.0)]
    parts = (("free", paid.free), ("paid", paid.paid))
    return [(kind, part / paid.total) for kind, part in parts if part]
