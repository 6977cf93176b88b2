"""Bot API methods; importing the modules fills the registry."""

from . import bot, inline, media, messages, payments
from .registry import METHODS, Call, Method, lookup

__all__ = ["METHODS", "Call", "Method", "bot", "inline", "lookup", "media", "messages", "payments"]
