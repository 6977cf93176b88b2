"""Pushing updates to the bot's webhook the way Telegram does, and noting how it went."""

import json
import time
from typing import Any

import aiohttp

from .bot_api import answer, encode
from .params import Upload, coerce
from .state import Sandbox, Webhook
from .updates import update_type

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
WEBHOOK_TIMEOUT = aiohttp.ClientTimeout(total=60)


async def deliver(
    sandbox: Sandbox, webhook: Webhook, update: Any, repeat: int = 1
) -> dict[str, Any]:
    """Sends the update ``repeat`` times, one after another, unless allowed_updates filters it."""
    kind = update_type(update)
    if not webhook.accepts(kind):
        return {"update": update, "deliveries": [], "skipped": f"{kind} is not in allowed_updates"}
    deliveries = [await _post(sandbox, webhook, update) for _ in range(repeat)]
    return {"update": update, "deliveries": deliveries}


async def _post(sandbox: Sandbox, webhook: Webhook, update: Any) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    if webhook.secret_token:
        headers[SECRET_HEADER] = webhook.secret_token
    started = time.perf_counter()
    try:
        async with sandbox.http.post(
            webhook.url, data=encode(update), headers=headers, timeout=WEBHOOK_TIMEOUT
        ) as response:
            body = await response.text()
    except (aiohttp.ClientError, TimeoutError) as error:
        reason = _network_error(error)
        _note_error(webhook, reason)
        return {"status": None, "body": reason, "elapsed_ms": _ms_since(started)}
    elapsed_ms = _ms_since(started)
    if response.ok:
        if response.content_type == "application/json":
            await _run_reply(sandbox, webhook, body)
    else:
        _note_error(
            webhook, f"Wrong response from the webhook: {response.status} {response.reason}"
        )
    return {"status": response.status, "body": body, "elapsed_ms": elapsed_ms}


async def _run_reply(sandbox: Sandbox, webhook: Webhook, body: str) -> None:
    """A webhook may answer with a method call in its body; Telegram executes it."""
    try:
        reply = json.loads(body)
    except ValueError:
        return
    if not isinstance(reply, dict) or not isinstance(reply.get("method"), str):
        return
    fields = {key: value for key, value in reply.items() if key != "method"}

    async def load() -> tuple[dict[str, Any], dict[str, Upload]]:
        return {key: coerce(key, value) for key, value in fields.items()}, {}

    await answer(sandbox, webhook.token, reply["method"], load)


def _network_error(error: Exception) -> str:
    if isinstance(error, aiohttp.ClientConnectorError):
        return "Connection refused"
    if isinstance(error, TimeoutError):
        return "Read timeout expired"
    return f"{type(error).__name__}: {error}"


def _note_error(webhook: Webhook, message: str) -> None:
    webhook.last_error_date = int(time.time())
    webhook.last_error_message = message


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
