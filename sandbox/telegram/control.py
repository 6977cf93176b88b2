"""The ``/_sandbox`` API tests drive: simulated people, fault injection, inspection, reset."""

import asyncio
import json
import secrets
from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .bot_api import file_response
from .errors import ApiError
from .files import message_media
from .formatting import command_entities
from .inputs import store_bytes
from .methods import lookup
from .params import Upload, read_params
from .state import Charge, Chat, Fault, Sandbox, User, Webhook
from .updates import (
    callback_query,
    new_update,
    pre_checkout_query,
    successful_payment,
)
from .views import message_view
from .webhook import deliver

PAYMENT_TIMEOUT = 10  # seconds Telegram gives the bot to answer a pre-checkout query
MISSING = object()


class ControlError(Exception):
    """A control call the stand-in cannot carry out; answered as ``{"error": ...}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def control_error_handler(request: Request, error: Exception) -> Response:
    assert isinstance(error, ControlError)
    return JSONResponse({"error": error.message}, error.status)


def _sandbox(request: Request) -> Sandbox:
    return request.app.state.sandbox


async def _body(request: Request) -> tuple[dict[str, Any], dict[str, Upload]]:
    try:
        return await read_params(request)
    except ApiError as error:
        raise ControlError(HTTPStatus.BAD_REQUEST, error.description) from None


def _int(body: dict[str, Any], name: str, default: Any = MISSING) -> Any:
    value = body.get(name)
    if value is None or value == "":
        if default is MISSING:
            raise ControlError(HTTPStatus.BAD_REQUEST, f"{name} is required")
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ControlError(HTTPStatus.BAD_REQUEST, f"{name} must be an integer") from None


def _webhook(sandbox: Sandbox) -> Webhook:
    if sandbox.webhook is None:
        raise ControlError(
            HTTPStatus.CONFLICT, "no webhook is registered: the bot must call setWebhook first"
        )
    return sandbox.webhook


def _sender(sandbox: Sandbox, body: dict[str, Any]) -> tuple[User, Chat]:
    """The simulated person and the chat they act in (their private chat unless told)."""
    world = sandbox.world
    user_id = _int(body, "user_id")
    user = world.user(
        user_id,
        first_name=body.get("first_name") or None,
        username=body.get("username") or None,
        language_code=body.get("language_code") or None,
    )
    chat = world.chat(_int(body, "chat_id", user_id))
    if chat.id > 0:
        chat.owner = user
    elif body.get("title"):
        chat.title = body["title"]
    return user, chat


async def _deliver(sandbox: Sandbox, body: dict[str, Any], update: Any) -> dict[str, Any]:
    repeat = _int(body, "repeat", 1)
    return await deliver(sandbox, _webhook(sandbox), update, max(1, repeat))


async def _user_message(
    sandbox: Sandbox, body: dict[str, Any], user: User, chat: Chat, content: dict[str, Any]
) -> JSONResponse:
    message = chat.post(user.as_telegram(), content)
    return JSONResponse(await _deliver(sandbox, body, new_update(sandbox, "message", message)))


async def send_message(request: Request) -> Response:
    sandbox = _sandbox(request)
    body, _ = await _body(request)
    _webhook(sandbox)
    text = body.get("text")
    if not isinstance(text, str) or not text:
        raise ControlError(HTTPStatus.BAD_REQUEST, "text is required")
    user, chat = _sender(sandbox, body)
    content = {"text": text, "entities": command_entities(text) or None}
    return await _user_message(sandbox, body, user, chat, content)


async def _send_file(request: Request, field: str) -> Response:
    """A user's photo arrives as PhotoSizes, or as a document when sent "without compression"."""
    sandbox = _sandbox(request)
    body, uploads = await _body(request)
    _webhook(sandbox)
    upload = uploads.get(field)
    if upload is None:
        raise ControlError(HTTPStatus.BAD_REQUEST, f"a file part named {field!r} is required")
    as_document = field == "document" or str(body.get("as_document", "")).lower() in ("1", "true")
    kind = "document" if as_document else "photo"
    try:
        stored = store_bytes(sandbox.files, kind, upload.data, upload.content_type, upload.filename)
    except ApiError as error:
        raise ControlError(HTTPStatus.BAD_REQUEST, error.description) from None
    user, chat = _sender(sandbox, body)
    content = {**message_media(sandbox.files, stored, {}), "caption": body.get("caption") or None}
    return await _user_message(sandbox, body, user, chat, content)


async def send_photo(request: Request) -> Response:
    return await _send_file(request, "photo")


async def send_document(request: Request) -> Response:
    return await _send_file(request, "document")


def _bot_message(chat: Chat, message_id: int) -> dict[str, Any]:
    message = chat.messages.get(message_id)
    if message is None or not message["from"].get("is_bot"):
        raise ControlError(HTTPStatus.NOT_FOUND, f"no bot message {message_id} in chat {chat.id}")
    return message


def _has_button(message: dict[str, Any], data: str) -> bool:
    rows = message.get("reply_markup", {}).get("inline_keyboard", [])
    return any(button.get("callback_data") == data for row in rows for button in row)


async def press_button(request: Request) -> Response:
    sandbox = _sandbox(request)
    body, _ = await _body(request)
    _webhook(sandbox)
    user, chat = _sender(sandbox, body)
    message = _bot_message(chat, _int(body, "message_id"))
    data = str(body.get("callback_data", ""))
    if not _has_button(message, data):
        raise ControlError(
            HTTPStatus.BAD_REQUEST,
            f"message {message['message_id']} has no button with callback_data {data!r}",
        )
    query = callback_query(sandbox, user, chat, message, data)
    return JSONResponse(await _deliver(sandbox, body, new_update(sandbox, "callback_query", query)))


async def raw_update(request: Request) -> Response:
    """Any JSON is pushed as given (update_id added to objects without one): odd kinds, garbage."""
    sandbox = _sandbox(request)
    webhook = _webhook(sandbox)
    try:
        update = json.loads(await request.body())
    except ValueError:
        raise ControlError(HTTPStatus.BAD_REQUEST, "the body must be JSON") from None
    if isinstance(update, dict) and "update_id" not in update:
        update = {"update_id": sandbox.next_update_id(), **update}
    repeat = _int(dict(request.query_params), "repeat", 1)
    return JSONResponse(await deliver(sandbox, webhook, update, max(1, repeat)))


async def pay(request: Request) -> Response:
    """The user pays an invoice: pre_checkout_query, then successful_payment if the bot said ok."""
    sandbox = _sandbox(request)
    body, _ = await _body(request)
    webhook = _webhook(sandbox)
    user, chat = _sender(sandbox, body)
    message = _bot_message(chat, _int(body, "message_id"))
    if "invoice" not in message:
        raise ControlError(HTTPStatus.BAD_REQUEST, f"message {message['message_id']} is no invoice")
    invoice, payload = message["invoice"], chat.invoices[message["message_id"]]
    query = pre_checkout_query(user, invoice, payload)
    answered = asyncio.get_running_loop().create_future()
    sandbox.world.pre_checkouts[query["id"]] = answered
    checkout = await deliver(sandbox, webhook, new_update(sandbox, "pre_checkout_query", query))
    result: dict[str, Any] = {
        "pre_checkout_query": checkout,
        "answer": None,
        "successful_payment": None,
    }
    try:
        ok, error_message = await asyncio.wait_for(answered, _int(body, "timeout", PAYMENT_TIMEOUT))
    except TimeoutError:
        sandbox.world.pre_checkouts.pop(query["id"], None)
        return JSONResponse(result)
    result["answer"] = {"ok": ok, "error_message": error_message}
    if ok:
        charge_id = f"stxsandbox{secrets.token_hex(12)}"
        sandbox.world.charges[charge_id] = Charge(user.id)
        paid = successful_payment(invoice, payload, charge_id)
        update = new_update(
            sandbox, "message", chat.post(user.as_telegram(), {"successful_payment": paid})
        )
        result["successful_payment"] = await deliver(sandbox, webhook, update)
    return JSONResponse(result)


async def block(request: Request) -> Response:
    _sandbox(request).world.blocked.add(_int(dict(request.path_params), "user_id"))
    return JSONResponse({"ok": True})


async def unblock(request: Request) -> Response:
    _sandbox(request).world.blocked.discard(_int(dict(request.path_params), "user_id"))
    return JSONResponse({"ok": True})


async def list_requests(request: Request) -> Response:
    """Recorded Bot API calls in order, filtered by method (repeatable), chat_id and seq > since."""
    sandbox = _sandbox(request)
    query = request.query_params
    methods = {_canonical(name) for name in query.getlist("method")}
    chat_id = _int(dict(query), "chat_id", None)
    since = _int(dict(query), "since", 0)
    return JSONResponse(
        [
            recorded.as_json()
            for recorded in sandbox.world.requests
            if recorded.seq > since
            and (not methods or recorded.method in methods)
            and (chat_id is None or recorded.params.get("chat_id") == chat_id)
        ]
    )


def _canonical(name: str) -> str:
    method = lookup(name)
    return method.name if method else name


async def stars(request: Request) -> Response:
    """The bot's pretend Stars balance and its paid broadcasts; POST {"balance": n} sets it."""
    world = _sandbox(request).world
    if request.method == "POST":
        body, _ = await _body(request)
        try:
            world.stars.tenths = round(float(body["balance"]) * 10)
        except (KeyError, TypeError, ValueError):
            raise ControlError(HTTPStatus.BAD_REQUEST, "balance must be a number") from None
    return JSONResponse(world.stars.as_json())


async def reset(request: Request) -> Response:
    _sandbox(request).reset()
    return JSONResponse({"ok": True})


async def add_fault(request: Request) -> Response:
    sandbox = _sandbox(request)
    body, _ = await _body(request)
    fault = _fault(body)
    sandbox.world.faults.append(fault)
    return JSONResponse(fault.as_json())


def _fault(body: dict[str, Any]) -> Fault:
    method = body.get("method")
    if method is not None and lookup(method) is None:
        raise ControlError(HTTPStatus.BAD_REQUEST, f"unknown Bot API method {method!r}")
    status = _int(body, "status", None) if "status" in body else HTTPStatus.TOO_MANY_REQUESTS
    if status is not None and status not in HTTPStatus.__members__.values():
        raise ControlError(HTTPStatus.BAD_REQUEST, f"status {status} is not an HTTP status")
    default_retry = 3 if status == HTTPStatus.TOO_MANY_REQUESTS else None
    return Fault(
        method=_canonical(method) if method else None,
        chat_id=_int(body, "chat_id", None),
        times=max(1, _int(body, "times", 1)),
        status=status,
        retry_after=_int(body, "retry_after", default_retry),
        description=body.get("description") or None,
        delay=float(body.get("delay") or 0.0),
        after_handling=str(body.get("after_handling", "")).lower() in ("1", "true"),
    )


async def clear_faults(request: Request) -> Response:
    _sandbox(request).world.faults.clear()
    return JSONResponse({"ok": True})


async def chat_messages(request: Request) -> Response:
    sandbox = _sandbox(request)
    chat = sandbox.world.chats.get(_int(dict(request.path_params), "chat_id"))
    base_url = str(request.base_url).rstrip("/")
    messages = chat.messages.values() if chat else ()
    return JSONResponse([message_view(message, base_url) for message in messages])


async def file_bytes(request: Request) -> Response:
    sandbox = _sandbox(request)
    stored = sandbox.files.get(request.path_params["file_id"])
    if stored is None:
        raise ControlError(HTTPStatus.NOT_FOUND, "no such file_id")
    response = await file_response(sandbox, stored)
    # A file_id always names the same bytes: the chat page redraws edited messages without
    # fetching their pictures again.
    response.headers["Cache-Control"] = "private, max-age=86400, immutable"
    return response


routes = [
    Route("/requests", list_requests, methods=["GET"]),
    Route("/reset", reset, methods=["POST"]),
    Route("/stars", stars, methods=["GET", "POST"]),
    Route("/faults", add_fault, methods=["POST"]),
    Route("/faults", clear_faults, methods=["DELETE"]),
    Route("/users/{user_id}/block", block, methods=["POST"]),
    Route("/users/{user_id}/unblock", unblock, methods=["POST"]),
    Route("/send_message", send_message, methods=["POST"]),
    Route("/send_photo", send_photo, methods=["POST"]),
    Route("/send_document", send_document, methods=["POST"]),
    Route("/press_button", press_button, methods=["POST"]),
    Route("/pay", pay, methods=["POST"]),
    Route("/updates", raw_update, methods=["POST"]),
    Route("/chats/{chat_id}/messages", chat_messages, methods=["GET"]),
    Route("/files/{file_id}", file_bytes, methods=["GET"]),
]
