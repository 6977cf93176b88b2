"""The table of Bot API methods and what a method handler gets to work with."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from ..errors import BLOCKED, ApiError, bad_request
from ..params import Upload
from ..state import Chat, Sandbox, World


@dataclass
class Call:
    sandbox: Sandbox
    token: str
    params: dict[str, Any]
    uploads: dict[str, Upload]

    @property
    def world(self) -> World:
        return self.sandbox.world

    @property
    def bot(self) -> dict[str, Any]:
        return self.sandbox.bot_user(self.token)

    def get(self, name: str) -> Any:
        """Telegram treats an empty form field as an absent one."""
        value = self.params.get(name)
        return None if value == "" else value

    def require(self, name: str, reason: str | None = None) -> Any:
        value = self.get(name)
        if value is None:
            raise bad_request(reason or f"{name} is empty")
        return value

    def integer(self, name: str, reason: str | None = None) -> int:
        value = self.require(name, reason)
        if not isinstance(value, int) or isinstance(value, bool):
            raise bad_request(reason or f"{name} is invalid")
        return value

    def chat(self, name: str = "chat_id") -> Chat:
        chat_id = self.require(name, f"{name} is empty")
        if not isinstance(chat_id, int) or chat_id == 0:
            raise bad_request("chat not found")
        if chat_id in self.world.blocked:
            raise ApiError(HTTPStatus.FORBIDDEN, BLOCKED)
        return self.world.chat(chat_id)


Handler = Callable[[Call], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Method:
    name: str
    handler: Handler
    is_message: bool
    """Counts against flood limits and is hit by faults that name no method."""


METHODS: dict[str, Method] = {}


def bot_method(name: str, *, is_message: bool = False) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        METHODS[name.lower()] = Method(name, handler, is_message)
        return handler

    return register


def lookup(name: str) -> Method | None:
    """Method names are case-insensitive, as on Telegram."""
    return METHODS.get(name.lower())
