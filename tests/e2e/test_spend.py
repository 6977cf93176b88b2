"""The operator's money in the metrics, through the real processes: a Veo video a user asked
for and got adds its estimated cost at fal (4 s with sound: $0.60) to
kadr_fal_spend_dollars_total, as paid with free credits, and a Stars purchase adds its Stars
to kadr_stars_earned_total. fal's webhook lands on the api and payments are handled by the
worker, so both processes' /metrics are read, as Prometheus sums them."""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sandbox.control import FalSandbox, Record, TelegramSandbox, wait_until
from sandbox.stack import Stack, free_port
from tests.e2e.test_modes import buttons, message_id

USER = 8301
VEO = "fal-ai/veo3.1/fast"
Metric = tuple[str, dict[str, str]]
VEO_SPEND: Metric = ("kadr_fal_spend_dollars_total", {"model": VEO, "paid_with": "free"})
STARS: Metric = ("kadr_stars_earned_total", {})


def total(urls: list[str], metric: Metric) -> float:
    """The metric's value summed over the processes (and over the labels not given)."""
    name, labels = metric
    value = 0.0
    for url in urls:
        for family in text_string_to_metric_families(httpx.get(url).text):
            for sample in family.samples:
                if sample.name == name and labels.items() <= sample.labels.items():
                    value += sample.value
    return value


def grows_by(urls: list[str], metric: Metric, since: float) -> float:
    """How much the metric grew once it grew (or after 30 s): a result is counted when its
    webhook is recorded, a payment once it is credited."""
    deadline = time.monotonic() + 30
    while (grown := total(urls, metric) - since) == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    return grown


def answering(url: str) -> None:
    """Once the worker serves its metrics (it starts that with its start-up hook)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(url)
            return
        except httpx.ConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def choose_veo(telegram: TelegramSandbox) -> None:
    """The user picks Veo 3.1 Fast for videos in /settings."""
    telegram.send_message(USER, "/settings")
    [menu] = telegram.wait_for("sendMessage", chat_id=USER)
    telegram.press_button(USER, message_id(menu), buttons(menu)["🎬 Video"])
    models = telegram.wait_for("editMessageText", chat_id=USER)[-1]
    veo = next(data for text, data in buttons(models).items() if "Veo 3.1 Fast" in text)
    telegram.press_button(USER, message_id(menu), veo)
    summary = telegram.wait_for("editMessageText", chat_id=USER, count=2)[-1]
    assert "Video: Veo 3.1 Fast" in summary["params"]["text"]


def buy_the_first_pack(telegram: TelegramSandbox) -> int:
    """/buy, the first pack's button, the invoice paid: the Stars it cost."""

    def offers() -> list[Record]:
        sent = telegram.requests("sendMessage", USER)
        return [r for r in sent if any(d.startswith("buy:") for d in buttons(r).values())]

    telegram.send_message(USER, "/buy")
    [offer] = wait_until(offers, 1, timeout=20)
    pack = next(data for data in buttons(offer).values() if data.startswith("buy:"))
    telegram.press_button(USER, message_id(offer), pack)
    [invoice] = telegram.wait_for("sendInvoice", chat_id=USER)
    paid = telegram.pay(USER, message_id(invoice))
    assert paid["answer"] == {"ok": True, "error_message": None}
    return sum(price["amount"] for price in invoice["params"]["prices"])


@pytest.mark.timeout(300)
def test_a_delivered_veo_job_adds_its_cost_and_a_purchase_its_stars(
    stack: Stack, telegram: TelegramSandbox, fal: FalSandbox
) -> None:
    port = free_port()
    stack.service("worker").stop()  # so this worker, whose metrics are served, does the work
    stack.start_worker("worker-spend", WORKER_METRICS_PORT=str(port))
    try:
        urls = [f"{stack.api_url}/metrics", f"http://127.0.0.1:{port}/metrics"]
        answering(urls[1])
        spent, earned = total(urls, VEO_SPEND), total(urls, STARS)

        choose_veo(telegram)
        telegram.send_message(USER, "/video a lighthouse in a storm")
        assert len(telegram.wait_for("sendVideo", chat_id=USER, timeout=60)) == 1
        [submit] = [r for r in fal.requests("submit") if r["model_id"] == VEO]
        assert (submit["body"]["duration"], submit["body"]["generate_audio"]) == ("4s", True)
        assert grows_by(urls, VEO_SPEND, spent) == pytest.approx(0.60)

        stars = buy_the_first_pack(telegram)
        assert grows_by(urls, STARS, earned) == stars == 50
    finally:
        stack.service("worker-spend").stop()
        stack.restart("worker")
