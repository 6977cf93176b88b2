"""The pre-checkout check, one for packs and plans: Telegram takes the Stars only after its
yes, so an invoice is said yes to only on the terms still sold — the same pack or plan, the
same credits, the same Stars, in Stars — and each answer is counted."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from prometheus_client import REGISTRY

from core.domain.catalog import Pack, Plan, catalog
from core.domain.payments import checkout_pack
from core.domain.subscriptions import checkout_plan

Check = Callable[[str, str, int], Pack | Plan | None]


def answers(outcome: str) -> float:
    return REGISTRY.get_sample_value("kadr_payments_total", {"outcome": outcome}) or 0.0


@pytest.mark.parametrize(
    ("kind", "check", "sold"),
    [
        ("pack", checkout_pack, lambda: catalog().packs[0]),
        ("plan", checkout_plan, lambda: catalog().plans[0]),
    ],
    ids=["pack", "plan"],
)
def test_an_invoice_is_said_yes_to_only_on_the_terms_still_sold(
    kind: str, check: Check, sold: Callable[[], Pack | Plan]
) -> None:
    offer = sold()
    refused_before, ok_before = answers("pre_checkout_refused"), answers("pre_checkout_ok")
    assert check(offer.payload, "XTR", offer.stars) == offer
    refused = [
        (f"{kind}:{offer.id}:{offer.credits + 1}", "XTR", offer.stars),  # credits changed since
        (offer.payload, "XTR", offer.stars + 1),  # the price changed since
        (offer.payload, "USD", offer.stars),
        (f"{kind}:gone:{offer.credits}", "XTR", offer.stars),
        (f"{kind}:{offer.id}", "XTR", offer.stars),
    ]
    assert [check(*query) for query in refused] == [None] * len(refused)
    assert answers("pre_checkout_ok") == ok_before + 1
    assert answers("pre_checkout_refused") == refused_before + len(refused)
