"""Updates as Telegram builds them when a simulated person does something."""

import secrets
from typing import Any

from .state import Chat, Sandbox, User


def new_update(sandbox: Sandbox, kind: str, payload: Any) -> dict[str, Any]:
    return {"update_id": sandbox.next_update_id(), kind: payload}


def update_type(update: Any) -> str | None:
    """The update's kind is its one field besides update_id; garbage has none."""
    if not isinstance(update, dict):
        return None
    return next((key for key in update if key != "update_id"), None)


def chat_instance(chat: Chat) -> str:
    """Stable per chat, opaque like Telegram's."""
    return str((chat.id * 2654435761) & (2**63 - 1))


def callback_query(
    sandbox: Sandbox, user: User, chat: Chat, message: dict[str, Any], data: str
) -> dict[str, Any]:
    query_id = str(secrets.randbits(63))
    sandbox.world.callback_queries[query_id] = chat.id
    return {
        "id": query_id,
        "from": user.as_telegram(),
        "message": message,
        "chat_instance": chat_instance(chat),
        "data": data,
    }


def pre_checkout_query(user: User, invoice: dict[str, Any], payload: str) -> dict[str, Any]:
    return {
        "id": str(secrets.randbits(63)),
        "from": user.as_telegram(),
        "currency": invoice["currency"],
        "total_amount": invoice["total_amount"],
        "invoice_payload": payload,
    }


def successful_payment(
    invoice: dict[str, Any],
    payload: str,
    charge_id: str,
    *,
    expires_at: int | None = None,
    first: bool = False,
) -> dict[str, Any]:
    """With `expires_at`, a subscription's payment (`first`: the one that started it)."""
    paid: dict[str, Any] = {
        "currency": invoice["currency"],
        "total_amount": invoice["total_amount"],
        "invoice_payload": payload,
        "telegram_payment_charge_id": charge_id,
        "provider_payment_charge_id": "",
    }
    if expires_at is not None:
        paid["subscription_expiration_date"] = expires_at
        paid["is_recurring"] = True
        if first:
            paid["is_first_recurring"] = True
    return paid
