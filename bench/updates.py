"""Telegram Update JSON as Telegram sends it, built here so the load driver can post straight
to kadr's webhook without going through the stand-in.

Every prompt carries a `#<update_id>` tag, so a job row, its fal request and its photo can be
traced back to the post that caused it.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

#: Users of a run are numbered from here; far from the ids tests use.
FIRST_USER = 10_000_000


class Kind(StrEnum):
    PROMPT = "prompt"
    VIDEO = "video"
    """`/video <prompt>`: the same text for everyone, so the fal stand-in renders one file."""
    START = "start"
    HELP = "help"
    LANGUAGE = "language"
    TOO_LONG = "too_long"
    STICKER = "sticker"
    EDITED = "edited"
    REDELIVERY = "redelivery"
    """The same update_id again, as Telegram does when an answer was lost."""


#: W2's mix: mostly prompts and commands, some noise, some redeliveries.
MIXED: dict[Kind, float] = {
    Kind.PROMPT: 0.40,
    Kind.START: 0.15,
    Kind.HELP: 0.10,
    Kind.LANGUAGE: 0.10,
    Kind.TOO_LONG: 0.05,
    Kind.STICKER: 0.05,
    Kind.EDITED: 0.05,
    Kind.REDELIVERY: 0.10,
}


@dataclass(frozen=True, slots=True)
class Update:
    update_id: int
    user_id: int
    kind: Kind
    body: bytes
    prompt: str | None = None
    """What the job row will hold as its prompt, for prompts; None for everything else."""

    @property
    def job_key(self) -> tuple[int, str] | None:
        """How this update's job is recognised in the jobs table."""
        return (self.user_id, self.prompt) if self.prompt is not None else None


def tag(update_id: int) -> str:
    return f"#{update_id}"


def _user(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": f"Bench {user_id}", "language_code": "en"}


def _message(update_id: int, user_id: int, content: dict[str, Any]) -> dict[str, Any]:
    return {
        "message_id": update_id % 1_000_000_000,
        "from": _user(user_id),
        "chat": {"id": user_id, "type": "private", "first_name": f"Bench {user_id}"},
        "date": int(time.time()),
        **content,
    }


def _command(name: str) -> dict[str, Any]:
    text = f"/{name}"
    return {"text": text, "entities": [{"type": "bot_command", "offset": 0, "length": len(text)}]}


VIDEO_PROMPT = "a slow pan over misty hills"


def prompt_of(kind: Kind, update_id: int) -> str | None:
    if kind is Kind.PROMPT:
        return f"a lighthouse at dawn, study {tag(update_id)}"
    if kind is Kind.VIDEO:
        return VIDEO_PROMPT
    return None


def _content(kind: Kind, update_id: int) -> dict[str, Any]:
    if kind is Kind.PROMPT:
        return {"text": prompt_of(kind, update_id)}
    if kind is Kind.VIDEO:
        text = f"/video {VIDEO_PROMPT}"
        return {"text": text, "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}
    if kind is Kind.TOO_LONG:
        return {"text": "x" * 1001}
    if kind is Kind.STICKER:
        sticker = {
            "file_id": f"sticker-{update_id}",
            "file_unique_id": f"s{update_id}",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
        }
        return {"sticker": sticker}
    return _command(kind.value)


def build(kind: Kind, update_id: int, user_id: int) -> Update:
    field = "edited_message" if kind is Kind.EDITED else "message"
    content = {"text": "an edit", "edit_date": int(time.time())} if kind is Kind.EDITED else {}
    message = _message(update_id, user_id, content or _content(kind, update_id))
    body = json.dumps({"update_id": update_id, field: message}, separators=(",", ":")).encode()
    return Update(update_id, user_id, kind, body, prompt_of(kind, update_id))


class UpdateSource:
    """Fresh update_ids and users for one run; users rotate so none exceeds the per-user
    quota (10 jobs a minute, 5 live) and every prompt is expected to become a photo."""

    def __init__(self, users: int, *, seed: int = 5, first_update: int = 1) -> None:
        self._users = users
        self._next_user = 0
        self._next_update = first_update
        self._random = random.Random(seed)
        self._sent: list[Update] = []

    def _user(self) -> int:
        user = FIRST_USER + self._next_user % self._users
        self._next_user += 1
        return user

    def next(self, kind: Kind) -> Update:
        if kind is Kind.REDELIVERY and self._sent:
            original = self._random.choice(self._sent[-500:])
            return Update(original.update_id, original.user_id, Kind.REDELIVERY, original.body)
        # Nothing sent yet to deliver again: a prompt instead.
        actual = Kind.PROMPT if kind is Kind.REDELIVERY else kind
        update = build(actual, self._next_update, self._user())
        self._next_update += 1
        self._sent.append(update)
        return update

    def prompts(self, count: int, kind: Kind = Kind.PROMPT) -> list[Update]:
        return [self.next(kind) for _ in range(count)]

    def mixed(self, count: int, mix: dict[Kind, float] = MIXED) -> Iterator[Update]:
        kinds, weights = list(mix), list(mix.values())
        for _ in range(count):
            yield self.next(self._random.choices(kinds, weights)[0])
