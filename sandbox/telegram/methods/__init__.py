"""Bot API methods; importing the modules fills the registry."""

from . import bot, media, messages, payments
from .registry import METHODS, Call, Method, lookup

__all__ = ["METHODS", "Call", "Method", "bot", "lookup", "media", "messages", "payments"]
