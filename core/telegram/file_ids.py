"""Which kind of file a Telegram file id names (photo, video, document).

The Bot API calls a file id opaque, but Telegram refuses one used as another kind ("type of
file mismatch"). A delivery now keeps each file's kind next to its id
(`telegram_file_kinds` on the job); results delivered before that kept the ids alone
(`telegram_file_ids`), and only for them is the kind read from the id. A file id is
base64url of a run-length-encoded record whose first little-endian int32 is TDLib's file
type (its top byte holds flags): read here, so those results can still be shown again, and
an id of another shape is skipped rather than guessed.
"""

from __future__ import annotations

import base64
import binascii
from typing import Literal

FileKind = Literal["photo", "video", "document"]

#: TDLib's `FileType` numbers for the kinds kadr sends.
_KINDS: dict[int, FileKind] = {2: "photo", 4: "video", 5: "document"}
_TYPE_MASK = 0x00FFFFFF
_HEAD = 8  # base64 characters that decode to the bytes holding the type


def file_kind(file_id: str) -> FileKind | None:
    """The kind of file `file_id` names, or None when it cannot tell."""
    try:
        raw = base64.urlsafe_b64decode(file_id[:_HEAD])
    except (binascii.Error, ValueError):
        return None
    head = _unpack_zeros(raw)[:4]
    if len(head) < 4:
        return None
    return _KINDS.get(int.from_bytes(head, "little") & _TYPE_MASK)


def _unpack_zeros(data: bytes) -> bytes:
    """Telegram's run-length encoding: a zero byte followed by how many zeros it stands for."""
    out = bytearray()
    index = 0
    while index < len(data):
        if data[index] == 0 and index + 1 < len(data):
            out += bytes(data[index + 1])
            index += 2
        else:
            out.append(data[index])
            index += 1
    return bytes(out)
