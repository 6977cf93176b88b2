"""The model catalog: which fal models each mode offers, how a user's options become each
model's input, what a job costs (in credits, and at fal in dollars) and where it runs.

Read from `catalog.toml` beside this module (or the file `KADR_CATALOG` names), validated
once per process. A mode's first model is its default.
"""

from __future__ import annotations

import math
import os
import string
import tomllib
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_PATH = Path(__file__).with_name("catalog.toml")

Mode = Literal["text_to_image", "edit", "retouch", "text_to_video", "image_to_video"]
MODES: tuple[Mode, ...] = get_args(Mode)
#: Modes whose input is a photo.
PHOTO_MODES: frozenset[Mode] = frozenset({"edit", "retouch", "image_to_video"})
#: Modes whose input includes the user's text.
PROMPT_MODES: frozenset[Mode] = frozenset(
    {"text_to_image", "edit", "text_to_video", "image_to_video"}
)
#: Modes a style applies to: the picture modes that take the user's words.
STYLE_MODES: frozenset[Mode] = frozenset({"text_to_image", "edit"})
#: Languages every style's title must have (the bot's languages).
STYLE_LANGUAGES = ("en", "ru")
#: A prompt of fewer words than this is short: the prompt helper rewrites it.
SHORT_PROMPT_WORDS = 12
Output = Literal["images", "image", "video"]
ASPECT_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4")
MAX_IMAGES = 4
#: Photos in a Telegram album (sendMediaGroup takes 2–10), so the most a job can be given.
MAX_ALBUM = 10
#: Longest side of a photo the models accept as input.
MAX_INPUT_SIDE = 4096
#: What fal makes for each `image_size` preset (fal's FLUX input schemas), width × height.
IMAGE_SIZES: dict[str, tuple[int, int]] = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
#: The preset fal makes when no `image_size` is sent.
DEFAULT_IMAGE_SIZE = "landscape_4_3"
#: fal bills per megapixel rounded up ("images are billed by rounding up to the nearest
#: megapixel", fal's FLUX pages), a 1024 × 1024 picture being one: its FLUX [dev] at $0.025
#: a megapixel is $0.025 a square_hd image.
MEGAPIXEL = 1024 * 1024
#: fal's billing units, as its model pages give them.
Unit = Literal["image", "megapixel", "second", "request"]


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


class FalCost(BaseModel):
    """fal's price for one of a model's results, as its model page gives it: so much per image,
    per megapixel of each image, per second of video (`with_audio`: per second when the video
    has sound, which fal makes unless `generate_audio` is sent false), or per request."""

    dollars: float = Field(gt=0)
    per: Unit
    with_audio: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _audio_is_per_second(self) -> FalCost:
        if self.with_audio is not None and self.per != "second":
            raise ValueError('with_audio is a price per second: it needs per = "second"')
        return self

    def of(self, settings: dict[str, Any], results: int, photo_side: int | None) -> float:
        """Dollars fal bills for `results` results of an input with these `settings`; a
        photo's size, which the settings do not carry, is taken at its bound `photo_side`
        (None: the input has no photo)."""
        if self.per == "image":
            return self.dollars * results
        if self.per == "megapixel":
            width, height = _output_size(settings, photo_side)
            return self.dollars * math.ceil(width * height / MEGAPIXEL) * results
        if self.per == "second":
            audio = settings.get("generate_audio", True)
            rate = self.with_audio if self.with_audio is not None and audio else self.dollars
            return rate * seconds(settings)
        return self.dollars


def seconds(settings: dict[str, Any]) -> int:
    """A video's length as fal's `duration` input gives it: "8s" (Veo) or "5" (Kling)."""
    return int(str(settings["duration"]).removesuffix("s"))


def _output_size(settings: dict[str, Any], photo_side: int | None) -> tuple[int, int]:
    """The size of each picture fal makes: the `image_size` asked for (a preset or a size),
    else the photo times its `upscale_factor` (a square photo: the largest of its side),
    else fal's default preset."""
    size = settings.get("image_size")
    if isinstance(size, dict):
        return int(size["width"]), int(size["height"])
    if size is None and photo_side is not None:
        side = math.ceil(photo_side * float(settings.get("upscale_factor", 1)))
        return side, side
    return IMAGE_SIZES[size or DEFAULT_IMAGE_SIZE]


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
    #: What fal bills for the model (its model page); a job's cost follows from its input.
    fal_cost: FalCost
    #: Sold below its cost or below the operator's minimum margin on purpose: start-up and
    #: `kadr check` let it through.
    loss_leader: bool = False
    #: fal bills this model per image made: a job of several images costs `price` for each.
    per_image: bool = False
    #: The model has a `seed` input (Kling's have none: Regenerate sends the input unchanged).
    seed: bool = True
    #: The longest side of the photo the model is given; a larger one is scaled down first.
    #: An upscaler's output is its input times its factor, and must stay a picture Telegram
    #: takes (width + height at most 10,000): 2500 for a factor of 2.
    max_input_side: int | None = Field(None, ge=64, le=MAX_INPUT_SIDE)
    #: How many of the user's photos the model takes (an album's first ones); only a list
    #: input (`image_urls`) takes more than one.
    max_images: int = Field(1, ge=1, le=MAX_ALBUM)

    @model_validator(mode="after")
    def _photo_input(self) -> ModelSpec:
        if (self.mode in PHOTO_MODES) != (self.image_key is not None):
            need = "needs" if self.mode in PHOTO_MODES else "must not have"
            raise ValueError(f"model {self.id}: mode {self.mode} {need} an image_key")
        if self.max_images > 1 and self.image_key != "image_urls":
            raise ValueError(f"model {self.id}: max_images above 1 needs image_key image_urls")
        if self.per_image and self.num_images_key is None:
            raise ValueError(f"model {self.id}: per_image needs a num_images_key")
        if self.fal_cost.per == "second" and "duration" not in self.defaults:
            raise ValueError(f"model {self.id}: a cost per second needs a duration in defaults")
        return self

    def images(self, options: dict[str, Any]) -> int:
        """How many results a job with these options asks for (as `arguments` sends it)."""
        if self.num_images_key and options.get("num_images"):
            return max(1, min(int(options["num_images"]), MAX_IMAGES))
        return 1

    def cost(self, options: dict[str, Any]) -> int:
        """Credits a job with these options costs: what fal bills us for it, in our units."""
        return self.price * (self.images(options) if self.per_image else 1)

    def dollars(self, options: dict[str, Any]) -> float:
        """What fal bills for a job with these options, computed from the input kadr sends;
        a photo is counted at the largest this model is given."""
        photo_side = (self.max_input_side or MAX_INPUT_SIDE) if self.image_key else None
        return self.fal_cost.of(self.settings(options), self.images(options), photo_side)

    def settings(self, options: dict[str, Any]) -> dict[str, Any]:
        """The fal input but the prompt and the photo: defaults, then what the user chose,
        mapped to the model's own keys (FLUX wants `image_size` presets, Kontext and Kling
        `aspect_ratio`). All that decides what fal bills is here."""
        settings = dict(self.defaults)
        ratio = options.get("aspect_ratio")
        if self.aspect_ratio and ratio in self.aspect_ratio.values:
            settings[self.aspect_ratio.key] = self.aspect_ratio.values[ratio]
        if self.num_images_key and options.get("num_images"):
            settings[self.num_images_key] = self.images(options)
        if self.seed and options.get("seed") is not None:
            settings["seed"] = options["seed"]
        return settings

    def arguments(self, prompt: str, options: dict[str, Any]) -> dict[str, Any]:
        """The fal input for this model: its settings, the prompt and the photo."""
        arguments = self.settings(options)
        if self.mode in PROMPT_MODES and prompt:
            arguments["prompt"] = prompt
        if self.image_key:
            urls = self.photos(options.get("image_urls") or [options["image_url"]])
            arguments[self.image_key] = urls if self.image_key == "image_urls" else urls[0]
        return arguments

    def photos(self, photos: list[Any]) -> list[Any]:
        """The photos of a job this model takes: the first `max_images`."""
        return photos[: self.max_images]


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


class Plan(BaseModel):
    """A Stars subscription: `credits` every 30 days for `stars`, renewed by Telegram until
    the user or the bot cancels it."""

    id: str = Field(pattern=r"^[a-z0-9_-]{1,32}$")
    credits: int = Field(gt=0)
    #: Telegram caps a subscription's price at 10,000 Stars.
    stars: int = Field(gt=0, le=10000)

    @property
    def payload(self) -> str:
        """The invoice payload, the same on every renewal: the plan and its credits as sold,
        so each renewal grants what the user subscribed to even if the catalog changed."""
        return f"plan:{self.id}:{self.credits}"


class Referrals(BaseModel):
    """Credits for both sides when a newcomer invited by a link gets their first result."""

    inviter_credits: int = Field(0, ge=0)
    newcomer_credits: int = Field(0, ge=0)
    #: Newcomers one inviter is credited for per UTC day; past it the inviter earns nothing
    #: more that day (the newcomer still gets theirs).
    daily_cap: int = Field(0, ge=0)


class Stars(BaseModel):
    """What one Telegram Star brings the operator, in dollars."""

    dollars: float = Field(gt=0)


class PromptHelper(BaseModel):
    """The prompt helper: an LLM on fal (fal.run, synchronous) that rewrites a user's short or
    non-English prompt into a detailed English one. `endpoint` is the fal endpoint, `llm` the
    model it runs; `price` is added to a job that uses it; `timeout_seconds` bounds the call,
    past which the user's own words go."""

    endpoint: str = Field(pattern=r"^[\w.-]+/[\w.-]+(/[\w.-]+)*$")
    llm: str = Field(min_length=1)
    price: int = Field(ge=0)
    fal_cost: FalCost
    timeout_seconds: float = Field(gt=0, le=10)
    system_prompt: str = Field(min_length=1)
    #: The longest answer the LLM may give, in tokens (fal's `max_tokens`).
    max_tokens: int = Field(300, ge=16, le=2000)
    loss_leader: bool = False

    @model_validator(mode="after")
    def _per_request(self) -> PromptHelper:
        if self.fal_cost.per != "request":
            raise ValueError('prompt_helper: fal_cost is per "request"')
        return self

    def arguments(self, words: str) -> dict[str, Any]:
        """The endpoint's input (fal's ChatInput) asking for a rewrite of `words`."""
        return {
            "model": self.llm,
            "prompt": words,
            "system_prompt": self.system_prompt,
            "max_tokens": self.max_tokens,
        }

    @staticmethod
    def helps(prompt: str) -> bool:
        """Whether a prompt is worth rewriting: short, or not in English (a letter outside
        ASCII). A long English prompt goes as written, and costs nothing more."""
        short = len(prompt.split()) < SHORT_PROMPT_WORDS
        return bool(prompt.strip()) and (
            short or any(c.isalpha() and not c.isascii() for c in prompt)
        )


class StyleDefaults(BaseModel):
    """The job options a style sets (what a user could pick in /settings)."""

    model_config = ConfigDict(extra="forbid")

    aspect_ratio: str | None = None
    num_images: int | None = Field(None, ge=1, le=MAX_IMAGES)

    @model_validator(mode="after")
    def _known_ratio(self) -> StyleDefaults:
        if self.aspect_ratio is not None and self.aspect_ratio not in ASPECT_RATIOS:
            raise ValueError(f"unknown aspect ratio {self.aspect_ratio!r}; use {ASPECT_RATIOS}")
        return self


class Style(BaseModel):
    """A one-tap style: a prompt template around the user's words (`{prompt}`), a title per
    language, and optionally a model (used for jobs of its mode) and options."""

    id: str = Field(pattern=r"^[a-z0-9_]{1,20}$")
    title: dict[str, str]
    template: str = Field(min_length=1, max_length=500)
    model: str | None = None
    defaults: StyleDefaults = StyleDefaults()

    @model_validator(mode="after")
    def _complete(self) -> Style:
        missing = [language for language in STYLE_LANGUAGES if not self.title.get(language)]
        if missing:
            raise ValueError(f"style {self.id}: title needs {', '.join(missing)}")
        try:
            fields = [field for _, field, _, _ in string.Formatter().parse(self.template) if field]
        except ValueError as exc:
            raise ValueError(f"style {self.id}: template: {exc}") from None
        if fields != ["prompt"]:
            raise ValueError(
                f"style {self.id}: template must hold {{prompt}} once and no other {{field}} "
                f"(found {fields or 'none'})"
            )
        return self

    def render(self, words: str) -> str:
        """The prompt fal gets: the template around the user's (or the helper's) words."""
        return self.template.format(prompt=words)

    def title_in(self, language: str) -> str:
        return self.title.get(language) or self.title["en"]


class Catalog(BaseModel):
    modes: dict[Mode, ModeSpec]
    models: list[ModelSpec]
    packs: list[Pack] = Field(min_length=1)
    plans: list[Plan] = []
    referrals: Referrals = Referrals()
    stars: Stars
    prompt_helper: PromptHelper
    styles: list[Style] = []

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
        for kind, items in (("packs", self.packs), ("plans", self.plans)):
            listed = [item.id for item in items]
            if len(set(listed)) != len(listed):
                twice = sorted(i for i in listed if listed.count(i) > 1)
                raise ValueError(f"{kind} listed twice: {twice}")
        self._check_styles()
        return self

    def _check_styles(self) -> None:
        ids = [style.id for style in self.styles]
        if len(set(ids)) != len(ids):
            raise ValueError(f"styles listed twice: {sorted({i for i in ids if ids.count(i) > 1})}")
        for style in self.styles:
            if style.model is None:
                continue
            model = self.find(style.model)
            if model is None:
                raise ValueError(f"style {style.id}: model {style.model} is not in [[models]]")
            if model.mode not in STYLE_MODES:
                raise ValueError(
                    f"style {style.id}: model {style.model} is a {model.mode} model; a style's "
                    f"model makes pictures ({', '.join(sorted(STYLE_MODES))})"
                )

    def style(self, style_id: str | None) -> Style | None:
        """None for no style, or one an operator has since removed."""
        return next((style for style in self.styles if style.id == style_id), None)

    @property
    def credit_dollars(self) -> float:
        """Dollars a credit brings when bought in the pack or plan that sells credits
        cheapest: the least any spent credit was paid, so what a price is worth when checked
        against a cost."""
        sold: list[Pack | Plan] = [*self.packs, *self.plans]
        return min(item.stars / item.credits for item in sold) * self.stars.dollars

    def pack(self, pack_id: str) -> Pack | None:
        return next((pack for pack in self.packs if pack.id == pack_id), None)

    def plan(self, plan_id: str) -> Plan | None:
        return next((plan for plan in self.plans if plan.id == plan_id), None)

    def offered(self, mode: Mode) -> list[ModelSpec]:
        return [model for model in self.models if model.mode == mode]

    def find(self, model_id: str) -> ModelSpec | None:
        """None for a model an operator has since removed; its old jobs must still work."""
        return next((model for model in self.models if model.id == model_id), None)

    def for_photos(self, mode: Mode, count: int) -> ModelSpec:
        """The mode's first model that takes the most of `count` photos: an album's model
        when the user has not chosen one."""
        return max(self.offered(mode), key=lambda model: min(model.max_images, count))

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
