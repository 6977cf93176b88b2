"""The ``/_sandbox`` API tests drive: simulated people, fault injection, inspection, reset."""

import asyncio
import json
import secrets
import time
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
from .methods.inline import menu_button
from .methods.media import ALBUM_MAX, ALBUM_MIN
from .params import Upload, read_params
from .state import Charge, Chat, Fault, Sandbox, StarSubscription, User, Webhook
from .updates import (
    callback_query,
    new_update,
    pre_checkout_query,
    successful_payment,
)
from .views import message_view
from .web_app import init_data, launch_url
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


def _replied(chat: Chat, body: dict[str, Any]) -> dict[str, Any] | None:
    """The message `reply_to_message_id` names, as Telegram puts it in `reply_to_message`:
    whole, but without a `reply_to_message` of its own."""
    message_id = _int(body, "reply_to_message_id", None)
    if message_id is None:
        return None
    replied = chat.messages.get(message_id)
    if replied is None:
        raise ControlError(HTTPStatus.BAD_REQUEST, f"no message {message_id} in chat {chat.id}")
    return {key: value for key, value in replied.items() if key != "reply_to_message"}


async def _user_message(
    sandbox: Sandbox, body: dict[str, Any], user: User, chat: Chat, content: dict[str, Any]
) -> JSONResponse:
    """The person's message, a reply to another when `reply_to_message_id` says so."""
    message = chat.post(user.as_telegram(), {**content, "reply_to_message": _replied(chat, body)})
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


def _delivery_order(body: dict[str, Any], count: int) -> list[int]:
    """``order``: the photos' indexes in the order their updates go out (each at least once,
    any of them again to redeliver it); sent order unless told."""
    text = str(body.get("order") or "")
    try:
        order = [int(part) for part in text.split(",")] if text else list(range(count))
    except ValueError:
        raise ControlError(HTTPStatus.BAD_REQUEST, "order must be indexes like 2,0,1") from None
    if sorted(set(order)) != list(range(count)):
        raise ControlError(HTTPStatus.BAD_REQUEST, f"order must name each of the {count} photos")
    return order


async def send_album(request: Request) -> Response:
    """Several photos sent at once (parts ``photo0``, ``photo1``, …): an album, which Telegram
    posts as one message per photo sharing a ``media_group_id``, the caption on the first,
    each in an update of its own."""
    sandbox = _sandbox(request)
    body, uploads = await _body(request)
    webhook = _webhook(sandbox)
    parts = [
        uploads[name]
        for name in sorted(uploads, key=lambda n: int(n[5:] or 0))
        if name.startswith("photo") and name[5:].isdigit()
    ]
    if not ALBUM_MIN <= len(parts) <= ALBUM_MAX:
        raise ControlError(
            HTTPStatus.BAD_REQUEST, f"an album has {ALBUM_MIN} to {ALBUM_MAX} photos"
        )
    try:
        stored = [
            store_bytes(sandbox.files, "photo", part.data, part.content_type, part.filename)
            for part in parts
        ]
    except ApiError as error:
        raise ControlError(HTTPStatus.BAD_REQUEST, error.description) from None
    user, chat = _sender(sandbox, body)
    group_id = str(secrets.randbelow(10**18))
    updates = []
    for index, file in enumerate(stored):
        caption = (body.get("caption") or None) if index == 0 else None
        content = {
            **message_media(sandbox.files, file, {}),
            "caption": caption,
            "media_group_id": group_id,
        }
        message = chat.post(user.as_telegram(), content)
        updates.append(new_update(sandbox, "message", message))
    order = _delivery_order(body, len(updates))
    results = [await deliver(sandbox, webhook, updates[index]) for index in order]
    deliveries = [delivery for result in results for delivery in result["deliveries"]]
    return JSONResponse({"media_group_id": group_id, "deliveries": deliveries})


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


async def known_messages(request: Request) -> Response:
    """Messages users sent that reached the bot some other way than the stand-in's webhook
    delivery: a benchmark posts its updates to the bot itself, to time them, and files their
    messages here first, so that what the bot does to them (a reaction, a reply) finds them
    as it would in Telegram."""
    sandbox = _sandbox(request)
    try:
        messages = json.loads(await request.body())["messages"]
        known = [(int(m["chat"]["id"]), m) for m in messages if isinstance(m["message_id"], int)]
    except (ValueError, TypeError, KeyError):
        raise ControlError(
            HTTPStatus.BAD_REQUEST, "the body must be {messages: [Telegram messages]}"
        ) from None
    for chat_id, message in known:
        sandbox.world.chat(chat_id).know(message)
    return JSONResponse({"known": len(known)})


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
    result, charge_id = await _checkout(sandbox, webhook, body, user, invoice, payload)
    if charge_id is not None:
        paid = successful_payment(invoice, payload, charge_id)
        result["successful_payment"] = await _payment(sandbox, webhook, user, chat, paid)
    return JSONResponse(result)


async def pay_link(request: Request) -> Response:
    """The user opens an invoice link (`link`) and pays it, as with /pay. A subscription's
    link starts the subscription: its payment is the first recurring one, and
    `/renew` pays the next periods."""
    sandbox = _sandbox(request)
    body, _ = await _body(request)
    webhook = _webhook(sandbox)
    user, chat = _sender(sandbox, body)
    slug = str(body.get("link", "")).rpartition("/$")[2]
    link = sandbox.world.invoice_links.get(slug)
    if link is None:
        raise ControlError(HTTPStatus.NOT_FOUND, f"no invoice link {body.get('link')!r}")
    result, charge_id = await _checkout(sandbox, webhook, body, user, link.invoice, link.payload)
    if charge_id is None:
        return JSONResponse(result)
    expires_at = None
    if link.subscription_period is not None:
        expires_at = int(time.time()) + link.subscription_period
        subscription = StarSubscription(user.id, link, expires_at)
        sandbox.world.subscriptions[charge_id] = subscription
        sandbox.world.charges[charge_id].subscription = charge_id
    paid = successful_payment(
        link.invoice, link.payload, charge_id, expires_at=expires_at, first=True
    )
    result["charge_id"] = charge_id
    result["successful_payment"] = await _payment(sandbox, webhook, user, chat, paid)
    return JSONResponse(result)


async def renew(request: Request) -> Response:
    """Telegram renews a subscription (named by a charge id of it) for one more period: a new
    charge and its successful_payment, with no pre-checkout query. A subscription the bot
    cancelled is not renewed (409)."""
    sandbox = _sandbox(request)
    body, _ = await _body(request)
    webhook = _webhook(sandbox)
    charge = sandbox.world.charges.get(str(body.get("charge_id", "")))
    if charge is None or charge.subscription is None:
        raise ControlError(
            HTTPStatus.NOT_FOUND, f"no subscription paid by {body.get('charge_id')!r}"
        )
    subscription = sandbox.world.subscriptions[charge.subscription]
    if subscription.canceled:
        raise ControlError(HTTPStatus.CONFLICT, "the subscription is cancelled: it is not renewed")
    period = subscription.link.subscription_period or 0
    subscription.expires_at += period
    charge_id = _new_charge(sandbox, subscription.user_id, charge.subscription)
    user = sandbox.world.user(subscription.user_id)
    link = subscription.link
    paid = successful_payment(
        link.invoice, link.payload, charge_id, expires_at=subscription.expires_at
    )
    chat = sandbox.world.chat(user.id)
    delivered = await _payment(sandbox, webhook, user, chat, paid)
    return JSONResponse({"charge_id": charge_id, "successful_payment": delivered})


def _new_charge(sandbox: Sandbox, user_id: int, subscription: str | None = None) -> str:
    charge_id = f"stxsandbox{secrets.token_hex(12)}"
    sandbox.world.charges[charge_id] = Charge(user_id, subscription=subscription)
    return charge_id


async def _checkout(
    sandbox: Sandbox,
    webhook: Webhook,
    body: dict[str, Any],
    user: User,
    invoice: dict[str, Any],
    payload: str,
) -> tuple[dict[str, Any], str | None]:
    """The pre-checkout query and the bot's answer: the result so far, and the new charge's
    id when the bot said ok (None: no payment)."""
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
        return result, None
    result["answer"] = {"ok": ok, "error_message": error_message}
    return result, _new_charge(sandbox, user.id) if ok else None


async def _payment(
    sandbox: Sandbox, webhook: Webhook, user: User, chat: Chat, paid: dict[str, Any]
) -> dict[str, Any]:
    """The successful_payment service message in the chat, delivered to the bot."""
    message = chat.post(user.as_telegram(), {"successful_payment": paid})
    return await deliver(sandbox, webhook, new_update(sandbox, "message", message))


async def inline_query(request: Request) -> Response:
    """The user types `@bot <query>` in a chat: an inline_query update, answerable once."""
    sandbox = _sandbox(request)
    body, _ = await _body(request)
    _webhook(sandbox)
    user, _chat = _sender(sandbox, body)
    query_id = str(secrets.randbits(63))
    sandbox.world.inline_queries[query_id] = user.id
    query = {
        "id": query_id,
        "from": user.as_telegram(),
        "query": str(body.get("query") or ""),
        "offset": str(body.get("offset") or ""),
        "chat_type": str(body.get("chat_type") or "sender"),
    }
    delivered = await _deliver(sandbox, body, new_update(sandbox, "inline_query", query))
    return JSONResponse({**delivered, "inline_query_id": query_id})


async def open_web_app(request: Request) -> Response:
    """The user opens a Mini App (`url`, else the chat's menu button): the URL their client
    would load, with initData signed by the bot's token (`auth_date` to make a stale one)."""
    sandbox = _sandbox(request)
    body, _ = await _body(request)
    webhook = _webhook(sandbox)
    user, chat = _sender(sandbox, body)
    url = body.get("url")
    if not url:
        button = menu_button(sandbox.menu_buttons, chat.id)
        if button.get("type") != "web_app":
            raise ControlError(HTTPStatus.CONFLICT, "the bot set no Web App menu button")
        url = button["web_app"]["url"]
    data = init_data(webhook.token, user, auth_date=_int(body, "auth_date", None))
    return JSONResponse({"url": launch_url(str(url), data), "init_data": data})


async def share_prepared(request: Request) -> Response:
    """The user picks a chat in the dialog `WebApp.shareMessage` opened: the prepared message
    is sent there by them, "via" the bot."""
    sandbox = _sandbox(request)
    body, _ = await _body(request)
    user, chat = _sender(sandbox, body)
    prepared = sandbox.world.prepared.get(str(body.get("prepared_id")))
    if prepared is None or prepared.user_id != user.id or prepared.expires_at < time.time():
        raise ControlError(HTTPStatus.NOT_FOUND, "no such prepared message for this user")
    kind = "users" if chat.id > 0 else "groups"
    if kind not in prepared.chat_types:
        raise ControlError(HTTPStatus.BAD_REQUEST, f"the bot did not allow sharing to {kind}")
    content = _shared_content(sandbox, prepared.result)
    bot = sandbox.bot_user(_webhook(sandbox).token)
    message = chat.post(user.as_telegram(), {**content, "via_bot": bot})
    return JSONResponse(message)


def _shared_content(sandbox: Sandbox, result: dict[str, Any]) -> dict[str, Any]:
    field = next(key for key in result if key.endswith("_file_id"))
    stored = sandbox.files.get(result[field])
    if stored is None:
        raise ControlError(HTTPStatus.GONE, "the prepared message's file is gone")
    media = message_media(sandbox.files, sandbox.files.reissue(stored), {})
    return {**media, "caption": result.get("caption") or None}


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
    world = _sandbox(request).world
    world.faults.clear()
    world.flood_wait_until = 0.0  # a flood wait an injected 429 began ends with it
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
    Route("/send_album", send_album, methods=["POST"]),
    Route("/press_button", press_button, methods=["POST"]),
    Route("/pay", pay, methods=["POST"]),
    Route("/pay_link", pay_link, methods=["POST"]),
    Route("/renew", renew, methods=["POST"]),
    Route("/updates", raw_update, methods=["POST"]),
    Route("/messages", known_messages, methods=["POST"]),
    Route("/inline_query", inline_query, methods=["POST"]),
    Route("/web_app", open_web_app, methods=["POST"]),
    Route("/share", share_prepared, methods=["POST"]),
    Route("/chats/{chat_id}/messages", chat_messages, methods=["GET"]),
    Route("/files/{file_id}", file_bytes, methods=["GET"]),
]
