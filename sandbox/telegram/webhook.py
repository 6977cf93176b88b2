"""Pushing updates to the bot's webhook the way Telegram does, and noting how it went."""

import time
from http import HTTPStatus
from typing import Any

import httpx

from .bot_api import answer, encode
from .params import Upload, coerce
from .state import Sandbox, Webhook
from .updates import update_type

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
WEBHOOK_TIMEOUT = 60.0


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
        response = await sandbox.http.post(
            webhook.url, content=encode(update), headers=headers, timeout=WEBHOOK_TIMEOUT
        )
    except httpx.HTTPError as error:
        reason = _network_error(error)
        _note_error(webhook, reason)
        return {"status": None, "body": reason, "elapsed_ms": _ms_since(started)}
    elapsed_ms = _ms_since(started)
    if response.is_success:
        await _run_reply(sandbox, webhook, response)
    else:
        _note_error(webhook, f"Wrong response from the webhook: {_status_line(response)}")
    return {"status": response.status_code, "body": response.text, "elapsed_ms": elapsed_ms}


async def _run_reply(sandbox: Sandbox, webhook: Webhook, response: httpx.Response) -> None:
    """A webhook may answer with a method call in its body; Telegram executes it."""
    if not response.headers.get("content-type", "").startswith("application/json"):
        return
    try:
        body = response.json()
    except ValueError:
        return
    if not isinstance(body, dict) or not isinstance(body.get("method"), str):
        return
    fields = {key: value for key, value in body.items() if key != "method"}

    async def load() -> tuple[dict[str, Any], dict[str, Upload]]:
        return {key: coerce(key, value) for key, value in fields.items()}, {}

    await answer(sandbox, webhook.token, body["method"], load)


def _network_error(error: httpx.HTTPError) -> str:
    if isinstance(error, httpx.ConnectError):
        return "Connection refused"
    if isinstance(error, httpx.TimeoutException):
        return "Read timeout expired"
    return f"{type(error).__name__}: {error}"


def _status_line(response: httpx.Response) -> str:
    try:
        return f"{response.status_code} {HTTPStatus(response.status_code).phrase}"
    except ValueError:
        return str(response.status_code)


def _note_error(webhook: Webhook, message: str) -> None:
    webhook.last_error_date = int(time.time())
    webhook.last_error_message = message


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
