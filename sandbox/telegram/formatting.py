"""Message text as Telegram stores it: plain text plus entities with UTF-16 offsets.

Telegram strips HTML markup and answers with entities, and rejects what it cannot parse, so the
bot's formatting bugs show up here exactly as they would in production.
"""

import re
from html.parser import HTMLParser
from typing import Any

from .errors import bad_request

SIMPLE_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "code": "code",
    "pre": "pre",
    "tg-spoiler": "spoiler",
    "blockquote": "blockquote",
}
STRAY_TAG = re.compile(r"<(?![A-Za-z/])([A-Za-z0-9-]*)")
COMMAND = re.compile(r"/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{5,32})?")


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def command_entities(text: str) -> list[dict[str, Any]]:
    """The bot_command entity Telegram adds when a message starts with a command."""
    match = COMMAND.match(text)
    if match is None:
        return []
    return [{"offset": 0, "length": utf16_len(match.group()), "type": "bot_command"}]


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Telegram wants every ``<`` outside a tag escaped; Python's parser would let it pass."""
    stray = STRAY_TAG.search(source)
    if stray is not None:
        raise _unsupported_tag(stray.group(1), len(source[: stray.start()].encode()))
    parser = _EntityParser(source)
    parser.feed(source)
    parser.close()
    return "".join(parser.chunks), parser.entities


class _EntityParser(HTMLParser):
    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.source = source
        self.chunks: list[str] = []
        self.position = 0
        self.open: list[tuple[str, dict[str, Any]]] = []
        self.entities: list[dict[str, Any]] = []

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)
        self.position += utf16_len(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        entity = self._entity(tag, dict(attrs))
        entity["offset"] = self.position
        self.entities.append(entity)
        self.open.append((tag, entity))

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1][0] != tag:
            raise _parse_error(f"Unexpected end tag at byte offset {self._byte_offset()}")
        _, entity = self.open.pop()
        entity["length"] = self.position - entity["offset"]
        if entity["length"] == 0:
            self.entities.remove(entity)

    def close(self) -> None:
        super().close()
        if self.open:
            raise _parse_error(
                f'Can\'t find end tag corresponding to start tag "{self.open[-1][0]}"'
            )

    def _entity(self, tag: str, attrs: dict[str, str | None]) -> dict[str, Any]:
        if tag in SIMPLE_TAGS:
            return {"type": SIMPLE_TAGS[tag]}
        if tag == "a" and attrs.get("href"):
            return {"type": "text_link", "url": attrs["href"]}
        if tag == "span" and attrs.get("class") == "tg-spoiler":
            return {"type": "spoiler"}
        if tag == "tg-emoji" and attrs.get("emoji-id"):
            return {"type": "custom_emoji", "custom_emoji_id": attrs["emoji-id"]}
        raise _unsupported_tag(tag, self._byte_offset())

    def _byte_offset(self) -> int:
        line, column = self.getpos()
        lines = self.source.split("\n")
        consumed = (
            "\n".join(lines[: line - 1]) + ("\n" if line > 1 else "") + lines[line - 1][:column]
        )
        return len(consumed.encode())


def _parse_error(reason: str) -> Exception:
    return bad_request(f"can't parse entities: {reason}")


def _unsupported_tag(tag: str, byte_offset: int) -> Exception:
    return _parse_error(f'Unsupported start tag "{tag}" at byte offset {byte_offset}')
