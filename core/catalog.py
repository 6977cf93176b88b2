"""The model catalog: which fal models each mode offers, how a user's options become each
model's input, what a job costs and where it runs.

Read from `catalog.toml` beside this module (or the file `KADR_CATALOG` names), validated
once per process. A mode's first model is its default.
"""

from __future__ import annotations

import os
import tomllib
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field, ValidationError, model_validator

DEFAULT_PATH = Path(__file__).with_name("catalog.toml")

Mode = Literal["text_to_image", "edit", "retouch", "text_to_video", "image_to_video"]
MODES: tuple[Mode, ...] = get_args(Mode)
#: Modes whose input is a photo.
PHOTO_MODES: frozenset[Mode] = frozenset({"edit", "retouch", "image_to_video"})
#: Modes whose input includes the user's text.
PROMPT_MODES: frozenset[Mode] = frozenset(
    {"text_to_image", "edit", "text_to_video", "image_to_video"}
)
Output = Literal["images", "image", "video"]
ASPECT_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4")
MAX_IMAGES = 4
#: Longest side of a photo the models accept as input.
MAX_INPUT_SIDE = 4096


class CatalogError(Exception):
    """The catalog file is unreadable or inconsistent; the message names the problem."""


class AspectMapping(BaseModel):
    key: str
    values: dict[str, str | dict[str, int]]

    @model_validator(mode="after")
    def _known_ratios(self) -> AspectMapping:
        unknown = set(self.values) - set(ASPECT_RATIOS)
        if unknown:
            raise ValueError(f"unknown aspect ratios {sorted(unknown)}; use {ASPECT_RATIOS}")
        return self


class ModelSpec(BaseModel):
    id: str = Field(pattern=r"^[\w.-]+/[\w.-]+(/[\w.-]+)*$")
    mode: Mode
    title: str
    price: int = Field(ge=0)
    output: Output
    defaults: dict[str, Any] = {}
    image_key: Literal["image_url", "image_urls"] | None = None
    num_images_key: str | None = None
    aspect_ratio: AspectMapping | None = None
    #: fal bills this model per image made: a job of several images costs `price` for each.
    per_image: bool = False
    #: The model has a `seed` input (Kling's have none: Regenerate sends the input unchanged).
    seed: bool = True
    #: The longest side of the photo the model is given; a larger one is scaled down first.
    #: An upscaler's output is its input times its factor, and must stay a picture Telegram
    #: takes (width + height at most 10,000): 2500 for a factor of 2.
    max_input_side: int | None = Field(None, ge=64, le=MAX_INPUT_SIDE)

    @model_validator(mode="after")
    def _photo_input(self) -> ModelSpec:
        if (self.mode in PHOTO_MODES) != (self.image_key is not None):
            need = "needs" if self.mode in PHOTO_MODES else "must not have"
            raise ValueError(f"model {self.id}: mode {self.mode} {need} an image_key")
        if self.per_image and self.num_images_key is None:
            raise ValueError(f"model {self.id}: per_image needs a num_images_key")
        return self

    def images(self, options: dict[str, Any]) -> int:
        """How many results a job with these options asks for (as `arguments` sends it)."""
        if self.num_images_key and options.get("num_images"):
            return max(1, min(int(options["num_images"]), MAX_IMAGES))
        return 1

    def cost(self, options: dict[str, Any]) -> int:
        """Credits a job with these options costs: what fal bills us for it, in our units."""
        return self.price * (self.images(options) if self.per_image else 1)

    def arguments(self, prompt: str, options: dict[str, Any]) -> dict[str, Any]:
        """The fal input for this model: defaults, then what the user chose, mapped to the
        model's own keys (FLUX wants `image_size` presets, Kontext and Kling `aspect_ratio`)."""
        arguments = dict(self.defaults)
        if self.mode in PROMPT_MODES and prompt:
            arguments["prompt"] = prompt
        ratio = options.get("aspect_ratio")
        if self.aspect_ratio and ratio in self.aspect_ratio.values:
            arguments[self.aspect_ratio.key] = self.aspect_ratio.values[ratio]
        if self.num_images_key and options.get("num_images"):
            arguments[self.num_images_key] = self.images(options)
        if self.seed and options.get("seed") is not None:
            arguments["seed"] = options["seed"]
        if self.image_key:
            url = options["image_url"]
            arguments[self.image_key] = [url] if self.image_key == "image_urls" else url
        return arguments


class ModeSpec(BaseModel):
    queue: Literal["images", "video"]
    deadline_minutes: float = Field(gt=0)
    check_after_minutes: float = Field(gt=0)
    max_input_mb: float = Field(10, gt=0, le=20)

    @property
    def deadline(self) -> timedelta:
        return timedelta(minutes=self.deadline_minutes)

    @property
    def check_after(self) -> timedelta:
        """How long without a webhook before the sweeper asks fal once."""
        return timedelta(minutes=self.check_after_minutes)

    @property
    def max_input_bytes(self) -> int:
        return int(self.max_input_mb * 1024 * 1024)


class Pack(BaseModel):
    """Credits sold for Telegram Stars in one invoice."""

    id: str = Field(pattern=r"^[a-z0-9_-]{1,32}$")
    credits: int = Field(gt=0)
    stars: int = Field(gt=0, le=10000)

    @property
    def payload(self) -> str:
        """The invoice payload (≤ 128 bytes): the pack and the credits the buyer was offered,
        so a payment credits what was promised even if the catalog changed since."""
        return f"pack:{self.id}:{self.credits}"


class Catalog(BaseModel):
    modes: dict[Mode, ModeSpec]
    models: list[ModelSpec]
    packs: list[Pack] = Field(min_length=1)

    @model_validator(mode="after")
    def _complete(self) -> Catalog:
        ids = [model.id for model in self.models]
        duplicates = {model_id for model_id in ids if ids.count(model_id) > 1}
        if duplicates:
            raise ValueError(f"models listed twice: {sorted(duplicates)}")
        for mode in MODES:
            if mode not in self.modes:
                raise ValueError(f"mode {mode} is missing from [modes]")
            if not self.offered(mode):
                raise ValueError(f"mode {mode} has no [[models]]")
        packs = [pack.id for pack in self.packs]
        if len(set(packs)) != len(packs):
            raise ValueError(
                f"packs listed twice: {sorted(p for p in packs if packs.count(p) > 1)}"
            )
        return self

    def pack(self, pack_id: str) -> Pack | None:
        return next((pack for pack in self.packs if pack.id == pack_id), None)

    def offered(self, mode: Mode) -> list[ModelSpec]:
        return [model for model in self.models if model.mode == mode]

    def find(self, model_id: str) -> ModelSpec | None:
        """None for a model an operator has since removed; its old jobs must still work."""
        return next((model for model in self.models if model.id == model_id), None)

    def choose(self, mode: Mode, model_id: str | None) -> ModelSpec:
        """The user's model for `mode` if it is still offered, else the mode's default."""
        offered = self.offered(mode)
        return next((model for model in offered if model.id == model_id), offered[0])


def load_catalog(path: Path = DEFAULT_PATH) -> Catalog:
    try:
        return Catalog.model_validate(tomllib.loads(path.read_text()))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CatalogError(f"catalog {path}: {exc}") from None
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        raise CatalogError(f"catalog {path}: {where + ': ' if where else ''}{message}") from None


@cache
def catalog() -> Catalog:
    """The process's catalog; `KADR_CATALOG` points at another file (tests, operators)."""
    return load_catalog(Path(os.environ.get("KADR_CATALOG") or DEFAULT_PATH))
