"""Everything the stand-in remembers, in memory.

``Sandbox`` holds what survives ``/_sandbox/reset`` (bot settings, files, id counters);
``World`` holds what a reset throws away (people, chats, the request log, faults, flood counters).
"""

import asyncio
import itertools
import json
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from .errors import ApiError, error_for_status
from .feed import Feed
from .files import FileStore
from .limits import FloodControl

MAX_RECORDED = 200_000
BOT_FIRST_NAME = "kadr"
BOT_USERNAME = "kadr_bot"
DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})


@dataclass(slots=True)
class User:
    id: int
    first_name: str
    username: str | None = None
    language_code: str = "en"

    def as_telegram(self) -> dict[str, Any]:
        user: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.username:
            user["username"] = self.username
        user["language_code"] = self.language_code
        return user


@dataclass(slots=True)
class Chat:
    """Every change to the chat's messages goes through here, so open chat pages see it."""

    id: int
    feed: Feed
    owner: User | None = None
    title: str | None = None
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[int, str] = field(default_factory=dict)
    last_message_id: int = 0

    def as_telegram(self) -> dict[str, Any]:
        if self.id > 0:
            chat: dict[str, Any] = {"id": self.id, "type": "private"}
            chat["first_name"] = self.owner.first_name if self.owner else f"User {self.id}"
            if self.owner and self.owner.username:
                chat["username"] = self.owner.username
            return chat
        kind = "supergroup" if str(self.id).startswith("-100") else "group"
        return {"id": self.id, "type": kind, "title": self.title or f"Group {-self.id}"}

    def post(self, sender: dict[str, Any], content: dict[str, Any]) -> dict[str, Any]:
        """Stores a new message in the chat; message ids rise per chat, shared by both sides."""
        self.last_message_id += 1
        message = {
            "message_id": self.last_message_id,
            "from": sender,
            "chat": self.as_telegram(),
            "date": int(time.time()),
            **{key: value for key, value in content.items() if value is not None},
        }
        self.messages[self.last_message_id] = message
        self.changed(self.last_message_id)
        return message

    def know(self, message: dict[str, Any]) -> None:
        """A message the user sent that reached the bot without the stand-in (`/messages`)."""
        self.messages[message["message_id"]] = message
        self.last_message_id = max(self.last_message_id, message["message_id"])

    def changed(self, message_id: int) -> None:
        self.feed.publish(self.id, "message", message_id=message_id)

    def delete(self, message_id: int) -> bool:
        if self.messages.pop(message_id, None) is None:
            return False
        self.feed.publish(self.id, "delete", message_id=message_id)
        return True


@dataclass(slots=True)
class Recorded:
    seq: int
    t: float
    method: str
    token: str
    params: dict[str, Any]
    files: dict[str, Any]
    status: int
    response: bytes

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "t": self.t,
            "method": self.method,
            "token": self.token,
            "params": self.params,
            "files": self.files,
            "status": self.status,
            "response": json.loads(self.response),
        }


@dataclass(slots=True)
class Fault:
    method: str | None
    chat_id: int | None
    times: int
    status: int | None
    retry_after: int | None
    description: str | None
    delay: float
    after_handling: bool = False
    """The method runs first (the message is in the chat: Telegram did it), then its answer
    is held `delay` seconds, or replaced by the error when `status` is set: a bot whose
    process dies or whose next step fails meanwhile has sent what it cannot know was sent."""

    def matches(self, method: str, is_message: bool, chat_id: object) -> bool:
        if self.method is None and not is_message:
            return False
        if self.method is not None and self.method != method:
            return False
        return self.chat_id is None or self.chat_id == chat_id

    def error(self) -> ApiError | None:
        if self.status is None:
            return None
        error = error_for_status(self.status, self.retry_after)
        if self.description:
            error.description = self.description
        return error

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "chat_id": self.chat_id,
            "times": self.times,
            "status": self.status,
            "retry_after": self.retry_after,
            "description": self.description,
            "delay": self.delay,
            "after_handling": self.after_handling,
        }


#: What a paid broadcast message costs, in tenths of a Star (0.1 Star).
PAID_SEND_TENTHS = 1


@dataclass(slots=True)
class Stars:
    """The bot's pretend Stars balance (in tenths: a paid message costs 0.1) and the paid
    broadcast messages it paid for (an album's every message), counted per second of the wall
    clock."""

    tenths: int = 0
    per_second: dict[int, int] = field(default_factory=dict)

    def paid(self, messages: int) -> None:
        second = int(time.time())
        self.per_second[second] = self.per_second.get(second, 0) + messages
        self.tenths -= PAID_SEND_TENTHS * messages

    def as_json(self) -> dict[str, Any]:
        return {
            "balance": self.tenths / 10,
            "paid_sends": sum(self.per_second.values()),
            "peak_paid_per_second": max(self.per_second.values(), default=0),
        }


@dataclass(slots=True)
class Prepared:
    """A message a bot prepared for its Mini App to share (savePreparedInlineMessage)."""

    user_id: int
    result: dict[str, Any]
    chat_types: frozenset[str]
    expires_at: int


@dataclass(slots=True)
class Charge:
    user_id: int
    refunded: bool = False
    #: The first charge id of the subscription this charge paid a period of, if any.
    subscription: str | None = None


@dataclass(slots=True)
class InvoiceLink:
    """What createInvoiceLink made: the invoice as a chat would show it, its payload, and
    the subscription period in seconds (None: a one-off payment)."""

    invoice: dict[str, Any]
    payload: str
    subscription_period: int | None


@dataclass(slots=True)
class StarSubscription:
    """A user's subscription to the bot: renewed every `period` seconds until cancelled
    (by the bot's editUserStarSubscription here)."""

    user_id: int
    link: InvoiceLink
    expires_at: int
    canceled: bool = False


@dataclass(slots=True)
class Webhook:
    url: str
    token: str
    secret_token: str | None
    max_connections: int
    allowed_updates: list[str] | None
    last_error_date: int | None = None
    last_error_message: str | None = None

    def accepts(self, update_type: str | None) -> bool:
        if update_type is None:
            return True
        if self.allowed_updates:
            return update_type in self.allowed_updates
        return update_type not in DEFAULT_EXCLUDED_UPDATES

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self.url,
            "has_custom_certificate": False,
            "pending_update_count": 0,
            "max_connections": self.max_connections,
        }
        if self.allowed_updates is not None:
            info["allowed_updates"] = self.allowed_updates
        if self.last_error_date is not None:
            info["last_error_date"] = self.last_error_date
            info["last_error_message"] = self.last_error_message
        return info


@dataclass
class World:
    limiter: FloodControl | None
    feed: Feed
    users: dict[int, User] = field(default_factory=dict)
    chats: dict[int, Chat] = field(default_factory=dict)
    blocked: set[int] = field(default_factory=set)
    requests: deque[Recorded] = field(default_factory=lambda: deque(maxlen=MAX_RECORDED))
    faults: list[Fault] = field(default_factory=list)
    callback_queries: dict[str, int] = field(default_factory=dict)
    """Open callback query ids and the chat each was pressed in."""
    flood_wait_until: float = 0.0
    """After a 429 (an injected one too) Telegram refuses the bot's messages until its
    `retry_after` has passed (time.monotonic()); a bot that does not wait gets 429 again."""
    pre_checkouts: dict[str, asyncio.Future[tuple[bool, str | None]]] = field(default_factory=dict)
    charges: dict[str, Charge] = field(default_factory=dict)
    stars: Stars = field(default_factory=Stars)
    invoice_links: dict[str, InvoiceLink] = field(default_factory=dict)
    """Invoice links by their slug (the part after `t.me/$`)."""
    subscriptions: dict[str, StarSubscription] = field(default_factory=dict)
    """Star subscriptions by the charge id of their first payment."""
    inline_queries: dict[str, int] = field(default_factory=dict)
    """Open inline query ids and the user who typed each."""
    prepared: dict[str, Prepared] = field(default_factory=dict)

    def user(self, user_id: int, **profile: Any) -> User:
        """Creates the person on first sight; later calls may update the profile."""
        user = self.users.get(user_id)
        if user is None:
            user = self.users[user_id] = User(user_id, f"User {user_id}")
        for name, value in profile.items():
            if value is not None:
                setattr(user, name, value)
        return user

    def chat(self, chat_id: int) -> Chat:
        """Any integer chat exists: the stand-in plays every user as having started the bot."""
        chat = self.chats.get(chat_id)
        if chat is None:
            chat = self.chats[chat_id] = Chat(chat_id, self.feed, owner=self.users.get(chat_id))
        return chat

    def take_fault(self, method: str, is_message: bool, chat_id: object) -> Fault | None:
        for fault in self.faults:
            if fault.matches(method, is_message, chat_id):
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None


class Sandbox:
    def __init__(self, *, fetch_urls: bool, enforce_limits: bool) -> None:
        self.fetch_urls = fetch_urls
        self.enforce_limits = enforce_limits
        self.files = FileStore()
        self.feed = Feed()
        self.webhook: Webhook | None = None
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        #: setChatMenuButton's choices: per chat id, None for the default of every chat.
        self.menu_buttons: dict[int | None, dict[str, Any]] = {}
        self.world = self._new_world()
        self._http: aiohttp.ClientSession | None = None
        self._seq = itertools.count(1)
        # A random start keeps a restarted stand-in from reusing ids the bot still deduplicates.
        self._update_ids = itertools.count(random.randrange(100_000, 1_000_000_000))

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            raise RuntimeError("the stand-in's HTTP client exists only while the app runs")
        return self._http

    @http.setter
    def http(self, client: aiohttp.ClientSession | None) -> None:
        self._http = client

    def reset(self) -> None:
        self.world = self._new_world()
        self.feed.resync_all()

    def next_seq(self) -> int:
        return next(self._seq)

    def next_update_id(self) -> int:
        return next(self._update_ids)

    def bot_user(self, token: str) -> dict[str, Any]:
        return {
            "id": int(token.partition(":")[0]),
            "is_bot": True,
            "first_name": BOT_FIRST_NAME,
            "username": BOT_USERNAME,
        }

    def _new_world(self) -> World:
        return World(limiter=FloodControl() if self.enforce_limits else None, feed=self.feed)
