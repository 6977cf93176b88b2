"""Telegram Stars: invoices and invoice links (subscriptions among them), pre-checkout
answers, refunds, and the bot's cancelling or re-enabling of a user's subscription."""

import secrets
from typing import Any

from ..errors import bad_request
from ..state import InvoiceLink
from .bot import QUERY_TOO_OLD
from .content import inline_markup
from .registry import Call, bot_method

PAYLOAD_LIMIT = 128
#: The only subscription period Telegram accepts (30 days), and the most a period may cost.
SUBSCRIPTION_PERIOD = 2592000
SUBSCRIPTION_MAX_STARS = 10000
STARS = "XTR"


def _invoice(call: Call, *, start_parameter: str) -> tuple[str, dict[str, Any]]:
    """An invoice's payload (checked against Telegram's limit) and what the user is shown."""
    payload = str(call.require("payload"))
    if len(payload.encode()) > PAYLOAD_LIMIT:
        raise bad_request("INVOICE_PAYLOAD_INVALID")
    invoice = {
        "title": call.require("title"),
        "description": call.require("description"),
        "start_parameter": start_parameter,
        "currency": call.require("currency"),
        "total_amount": _total(call.require("prices")),
    }
    return payload, invoice


@bot_method("sendInvoice", is_message=True)
async def send_invoice(call: Call) -> dict[str, Any]:
    chat = call.chat()
    payload, invoice = _invoice(call, start_parameter=call.get("start_parameter") or "")
    markup = inline_markup(call.get("reply_markup"))
    message = chat.post(call.bot, {"invoice": invoice, "reply_markup": markup})
    chat.invoices[message["message_id"]] = payload
    return message


@bot_method("createInvoiceLink")
async def create_invoice_link(call: Call) -> str:
    """A link anyone can pay; with `subscription_period`, a Stars subscription that
    Telegram renews every period until it is cancelled."""
    payload, invoice = _invoice(call, start_parameter="")
    period = call.get("subscription_period")
    if period is not None:
        if period != SUBSCRIPTION_PERIOD:
            raise bad_request("SUBSCRIPTION_PERIOD_INVALID")
        if invoice["currency"] != STARS:
            raise bad_request("CURRENCY_INVALID")
        if invoice["total_amount"] > SUBSCRIPTION_MAX_STARS:
            raise bad_request("STARS_AMOUNT_INVALID")
    slug = secrets.token_urlsafe(12)
    call.world.invoice_links[slug] = InvoiceLink(invoice, payload, period)
    return f"https://t.me/${slug}"


@bot_method("editUserStarSubscription")
async def edit_user_star_subscription(call: Call) -> bool:
    """Cancel (or re-enable) the renewal of a user's subscription, named by a charge id of
    it; the period paid for stays."""
    charge = call.world.charges.get(str(call.require("telegram_payment_charge_id")))
    if charge is None or charge.subscription is None:
        raise bad_request("CHARGE_ID_INVALID")
    if charge.user_id != call.integer("user_id", "USER_ID_INVALID"):
        raise bad_request("USER_ID_INVALID")
    canceled = call.get("is_canceled")
    if not isinstance(canceled, bool):
        raise bad_request("is_canceled is empty")
    call.world.subscriptions[charge.subscription].canceled = canceled
    return True


def _total(prices: Any) -> int:
    if not isinstance(prices, list) or not prices:
        raise bad_request("can't parse prices JSON object")
    amounts = [price.get("amount") if isinstance(price, dict) else None for price in prices]
    valid = [amount for amount in amounts if isinstance(amount, int) and amount > 0]
    if len(valid) != len(amounts):
        raise bad_request("can't parse prices JSON object")
    return sum(valid)


@bot_method("answerPreCheckoutQuery")
async def answer_pre_checkout_query(call: Call) -> bool:
    pending = call.world.pre_checkouts.pop(str(call.get("pre_checkout_query_id")), None)
    if pending is None or pending.done():
        raise bad_request(QUERY_TOO_OLD)
    ok = call.get("ok") is True
    error_message = call.get("error_message")
    if not ok and not error_message:
        raise bad_request("error_message is empty")
    pending.set_result((ok, error_message))
    return True


@bot_method("refundStarPayment")
async def refund_star_payment(call: Call) -> bool:
    charge = call.world.charges.get(str(call.require("telegram_payment_charge_id")))
    if charge is None:
        raise bad_request("CHARGE_NOT_FOUND")
    if charge.user_id != call.integer("user_id", "USER_ID_INVALID"):
        raise bad_request("USER_ID_INVALID")
    if charge.refunded:
        raise bad_request("CHARGE_ALREADY_REFUNDED")
    charge.refunded = True
    return True
