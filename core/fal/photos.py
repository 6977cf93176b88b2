"""A user's photo from Telegram to fal's storage, bounded in memory, the bot token kept in.

fal keeps request inputs and Telegram's download URL embeds the bot token, so fal must never
see that URL: the bytes go Telegram → temp file → fal's CDN in fixed-size chunks, and the model
gets fal's own URL. `precheck` runs in the webhook handler on the message's metadata, so most
bad photos are refused before a job (and a charge) exists; `photo_to_fal` runs in the worker and
checks the bytes themselves, because metadata is the sender's word, not the file's. A photo
larger than its model takes (the upscalers' cap) is scaled down on the way.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import httpx
from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from PIL import Image, ImageOps, UnidentifiedImageError

from core.fal.client import FalClient
from core.infra.files import FileTooLarge, downloaded, read_chunks
from core.infra.retry import RetryLater, backoff

TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024
"""getFile refuses bigger files, so no mode can accept more."""

Reason = Literal[
    "too_big", "not_an_image", "too_large_dimensions", "too_small_dimensions", "unreadable"
]


class PhotoFormat(NamedTuple):
    content_type: str
    file_name: str
    """Neutral, so fal learns nothing of the user or of Telegram's file path."""


_JPEG = PhotoFormat("image/jpeg", "input.jpg")
FORMATS = {
    "JPEG": _JPEG,
    "MPO": _JPEG,  # a JPEG with extra frames (many phone cameras); decoders read the first
    "PNG": PhotoFormat("image/png", "input.png"),
    "WEBP": PhotoFormat("image/webp", "input.webp"),
}
"""What the models take, by Pillow's format name."""
_SAVE_AS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
"""How a scaled-down photo is written: in the format it came in."""
_OPENERS = ["JPEG", "PNG", "WEBP"]
"""Pillow plugins to try; MPO comes out of the JPEG one."""
_MIME_TYPES = frozenset(known.content_type for known in FORMATS.values())
_RETRYABLE_STATUSES = frozenset({408, 429})

TRANSFERS_AT_ONCE = 8
"""Photos moving Telegram → temp file → fal at the same time in one process; the others wait.

Each transfer holds about 0.4 MB whatever the photo's size: asyncio reads a socket 256 KiB at a
time (`selector_events.py`, `max_size`), anyio cuts that into httpx's 64 KiB reads by copying
the rest, and h11 and httpx copy each piece again. Unbounded, 50 photos of 15 MB at once cost
the worker 22 MB more than one did (`python -m bench.photo_memory`). The link's bytes per
second are shared either way, so fewer at once finish sooner and the last no later; it also
bounds the temp files on disk to this many."""
FITS_AT_ONCE = 1
"""Photos scaled down at the same time in one process: each decodes a picture of up to 4096 a
side (about 50 MB), on a thread."""
Slots = weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]
_transfers: Slots = weakref.WeakKeyDictionary()
_fits: Slots = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class PhotoLimits:
    max_bytes: int
    """The mode's cap."""
    max_side: int = 4096
    """The models' limit on width and on height."""
    min_side: int = 64
    fit_side: int | None = None
    """The longest side the model is given: a larger photo is scaled down to it, keeping its
    shape (an upscaler's output must stay within what Telegram shows)."""

    def __post_init__(self) -> None:
        if not 0 < self.max_bytes <= TELEGRAM_DOWNLOAD_LIMIT:
            raise ValueError(f"max_bytes must be in 1..{TELEGRAM_DOWNLOAD_LIMIT}")


class PhotoRejected(Exception):
    """The photo cannot be used; `reason` is a stable code for the user-facing text:
    'too_big', 'not_an_image', 'too_large_dimensions', 'too_small_dimensions', 'unreadable'."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(reason)
        self.reason: Reason = reason


def precheck(
    *,
    file_size: int | None,
    mime_type: str | None,
    width: int | None,
    height: int | None,
    limits: PhotoLimits,
) -> None:
    """Refuses on metadata alone, before any job exists. Unknown values pass: `photo_to_fal`
    checks the real bytes anyway."""
    if file_size is not None and file_size > limits.max_bytes:
        raise PhotoRejected("too_big")
    if mime_type is not None and mime_type.lower() not in _MIME_TYPES:
        raise PhotoRejected("not_an_image")
    _check_sides([side for side in (width, height) if side is not None], limits)


async def photo_to_fal(
    bot: Bot, http: httpx.AsyncClient, fal: FalClient, *, file_id: str, limits: PhotoLimits
) -> str:
    """Returns the fal CDN URL of the photo behind `file_id`.

    Raises PhotoRejected (tell the user), RetryLater (Telegram had a bad moment), or what
    `FalClient.upload` raises. The temp file is gone when this returns or raises.
    """
    url = bot.session.api.file_url(bot.token, await _file_path(bot, file_id))
    async with (
        _slot(_transfers, TRANSFERS_AT_ONCE),
        _telegram_download(http, url, cap=limits.max_bytes, token=bot.token) as path,
    ):
        photo_format = await asyncio.to_thread(_sniff, path, limits)
        if limits.fit_side is not None:
            async with _slot(_fits, FITS_AT_ONCE):
                await asyncio.to_thread(_fit, path, limits.fit_side, photo_format)
        size = (await asyncio.to_thread(path.stat)).st_size
        async with contextlib.aclosing(read_chunks(path)) as chunks:
            return await fal.upload(
                chunks,
                content_type=photo_format.content_type,
                file_name=photo_format.file_name,
                size=size,
            )


def _slot(slots: Slots, count: int) -> asyncio.Semaphore:
    """One of the running loop's `count` slots (a semaphore belongs to one loop)."""
    loop = asyncio.get_running_loop()
    semaphore = slots.get(loop)
    if semaphore is None:
        semaphore = slots[loop] = asyncio.Semaphore(count)
    return semaphore


def _fit(path: Path, side: int, photo_format: PhotoFormat) -> None:
    """Scales the photo at `path` down, in place, so its longer side is `side`, upright as the
    camera's orientation tag says (the tag is not written again); a photo small enough
    already is left as it is."""
    with Image.open(path) as image:
        if max(image.size) <= side:
            return
        image.draft("RGB", (side, side))  # a JPEG decodes at 1/2..1/8 when that is enough
        fitted = ImageOps.exif_transpose(image)
    fitted.thumbnail((side, side), Image.Resampling.LANCZOS)
    save_as = _SAVE_AS[photo_format.content_type]
    if save_as == "JPEG" and fitted.mode not in ("RGB", "L"):
        fitted = fitted.convert("RGB")
    fitted.save(path, format=save_as, quality=95)


def _check_sides(sides: Sequence[int], limits: PhotoLimits) -> None:
    if any(side > limits.max_side for side in sides):
        raise PhotoRejected("too_large_dimensions")
    if any(side < limits.min_side for side in sides):
        raise PhotoRejected("too_small_dimensions")


def _scrub(text: str, token: str) -> str:
    return text.replace(token, "***")


async def _file_path(bot: Bot, file_id: str) -> str:
    try:
        file = await bot.get_file(file_id)
    except TelegramRetryAfter as exc:
        raise RetryLater(exc.retry_after, "telegram getFile: 429") from None
    except TelegramBadRequest as exc:
        too_big = "too big" in exc.message.lower()
        raise PhotoRejected("too_big" if too_big else "unreadable") from None
    except (TelegramServerError, TelegramNetworkError) as exc:
        raise RetryLater(backoff(1), _scrub(f"telegram getFile: {exc}", bot.token)) from None
    if not file.file_path:
        raise PhotoRejected("unreadable")
    return file.file_path


@contextlib.asynccontextmanager
async def _telegram_download(
    http: httpx.AsyncClient, url: str, *, cap: int, token: str
) -> AsyncIterator[Path]:
    """`downloaded`, with its failures told in our terms. The URL holds the token, so no httpx
    exception (its message and its request both carry the URL) is chained or quoted unscrubbed.
    Errors raised by the caller's block pass through untouched."""
    async with contextlib.AsyncExitStack() as stack:
        try:
            path = await stack.enter_async_context(downloaded(http, url, cap=cap))
        except FileTooLarge:
            raise PhotoRejected("too_big") from None
        except httpx.HTTPStatusError as exc:
            raise _status_error(exc.response.status_code) from None
        except httpx.HTTPError as exc:
            reason = _scrub(f"telegram file download: {type(exc).__name__}: {exc}", token)
            raise RetryLater(backoff(1), reason) from None
        yield path


def _status_error(status: int) -> Exception:
    """Telegram's own trouble is worth another try; any other refusal will not change."""
    if status >= 500 or status in _RETRYABLE_STATUSES:
        return RetryLater(backoff(1), f"telegram file download: HTTP {status}")
    return PhotoRejected("unreadable")


def _sniff(path: Path, limits: PhotoLimits) -> PhotoFormat:
    """Reads the header only (no pixels are decoded), so a 20 MB photo costs a few KB here."""
    try:
        with Image.open(path, formats=_OPENERS) as image:
            format_name, sides = image.format, image.size
    except UnidentifiedImageError:
        raise PhotoRejected("not_an_image") from None
    except Image.DecompressionBombError:
        raise PhotoRejected("too_large_dimensions") from None
    except Exception:  # Pillow's plugins raise many kinds for a damaged header
        raise PhotoRejected("unreadable") from None
    photo_format = FORMATS.get(format_name or "")
    if photo_format is None:
        raise PhotoRejected("not_an_image")
    _check_sides(sides, limits)
    return photo_format
