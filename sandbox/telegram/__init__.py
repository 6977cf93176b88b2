"""A Telegram Bot API stand-in that aiogram cannot tell from the real one, plus a control API
(``/_sandbox``) for tests to play users, inject faults and inspect what the bot sent, and a chat
page at ``/`` where a person plays a user through that same control API."""

from .app import create_app

__all__ = ["create_app"]
