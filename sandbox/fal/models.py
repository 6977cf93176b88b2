"""What each model family does with its input: validate it like fal's apps, then render.

A model's published schema (names, types, enums, required inputs) is checked at submit
(schemas.py); what only the app can judge (a flagged prompt, an input it cannot download)
ends the request as an ERROR result (422) when it runs. Families are found by substrings of
the model id: add a row to FAMILIES to teach the stand-in a new kind of model.
"""

import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from PIL import Image

from sandbox.fal import render
from sandbox.fal.storage import (
    Download,
    Downloader,
    DownloadFailed,
    FileStore,
    Producer,
    StoredFile,
)

CONTENT_POLICY_MARKER = "[content_policy]"
_CONTENT_POLICY_MSG = (
    "The content could not be processed because it contained material flagged by a content checker."
)
_IMAGE_SIZES = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
_VIDEO_SIZES = {"16:9": (256, 144), "9:16": (144, 256), "1:1": (192, 192)}
_VIDEO_FPS = 2
_EDIT_SIDE = 1024
_UPSCALERS = ("upscaler", "codeformer")
"""Models whose output is their input times `upscale_factor` (2 unless told)."""
_VIDEO_SOURCE_SIDE = 512
_MIN_SIDE, _MAX_SIDE = 16, 4096


class ModelError(Exception):
    """The app refused or failed the input: the request ends with this 422 detail."""

    def __init__(self, field: str, msg: str, error_type: str, value: Any, **ctx: Any) -> None:
        super().__init__(msg)
        self.item = {
            "loc": ["body", field],
            "msg": msg,
            "type": error_type,
            "url": f"https://docs.fal.ai/errors#{error_type}",
            "ctx": ctx,
            "input": value,
        }


@dataclass(frozen=True, slots=True)
class Work:
    """One request being processed; outputs are published under the base URL it came to."""

    request_id: str
    model_id: str
    arguments: dict[str, Any]
    base_url: str
    latency: float


def _file_key(spec: Sequence[Any]) -> str:
    """The spec names the file: equal specs are rendered once."""
    return hashlib.sha256(json.dumps(spec, ensure_ascii=False).encode()).hexdigest()[:32]


class Workshop:
    """What a family needs from the server: input downloads and the output file store."""

    def __init__(self, files: FileStore, downloader: Downloader) -> None:
        self._files = files
        self._downloader = downloader

    @asynccontextmanager
    async def inputs(
        self, work: Work, field: str, urls: Sequence[str]
    ) -> AsyncIterator[list[Download]]:
        downloads: list[Download] = []
        try:
            for url in urls:
                try:
                    downloads.append(await self._downloader.fetch(url, work.request_id))
                except DownloadFailed as exc:
                    raise ModelError(field, exc.message, exc.error_type, url) from exc
            yield downloads
        finally:
            for download in downloads:
                download.path.unlink(missing_ok=True)

    async def publish(
        self, spec: Sequence[Any], name: str, content_type: str, produce: Producer
    ) -> StoredFile:
        return await self._files.produce(_file_key(spec), name, content_type, produce)

    async def publish_png(
        self,
        spec: Sequence[Any],
        draw: Callable[[], Image.Image],
        size: tuple[int, int] | None = None,
    ) -> StoredFile:
        """Rendered when first downloaded if its size is known now, else right away."""

        def produce(path: Path) -> tuple[int, int]:
            image = draw()
            render.save_png(image, path)
            return image.size

        if size is not None:
            return self._files.defer(_file_key(spec), "image.png", "image/png", size, produce)
        return await self.publish(spec, "image.png", "image/png", produce)


def _field(arguments: dict[str, Any], name: str, kind: type, default: Any = None) -> Any:
    value = arguments.get(name, default)
    if value is None:
        raise ModelError(name, "Field required", "missing", arguments)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ModelError(
            name, f"Input should be a valid {kind.__name__}", f"{kind.__name__}_type", value
        )
    return value


def _prompt(arguments: dict[str, Any]) -> str:
    prompt: str = _field(arguments, "prompt", str)
    if not prompt.strip():
        raise ModelError(
            "prompt", "String should have at least 1 character", "string_too_short", prompt
        )
    if CONTENT_POLICY_MARKER in prompt:
        raise ModelError("prompt", _CONTENT_POLICY_MSG, "content_policy_violation", prompt)
    return prompt


def _bounded(arguments: dict[str, Any], name: str, low: int, high: int, default: int) -> int:
    value: int = _field(arguments, name, int, default)
    if value < low:
        raise ModelError(
            name,
            f"Input should be greater than or equal to {low}",
            "greater_than_equal",
            value,
            ge=low,
        )
    if value > high:
        raise ModelError(
            name, f"Input should be less than or equal to {high}", "less_than_equal", value, le=high
        )
    return value


def _seed(arguments: dict[str, Any], prompt: str) -> int:
    """A missing seed comes from the prompt, so the same request always renders the same."""
    derived = int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:4]) % 2**31
    return _bounded(arguments, "seed", 0, 2**63 - 1, derived)


def _image_size(arguments: dict[str, Any], default: str) -> tuple[int, int]:
    size = arguments.get("image_size", default)
    if isinstance(size, str) and size in _IMAGE_SIZES:
        return _IMAGE_SIZES[size]
    if isinstance(size, dict):
        return (
            _bounded(size, "width", _MIN_SIDE, _MAX_SIDE, 0),
            _bounded(size, "height", _MIN_SIDE, _MAX_SIDE, 0),
        )
    presets = ", ".join(_IMAGE_SIZES)
    raise ModelError(
        "image_size", f"Input should be one of {presets} or {{width, height}}", "enum", size
    )


def _urls(arguments: dict[str, Any]) -> list[str]:
    """nano-banana takes image_urls, kontext and the others image_url."""
    if "image_urls" in arguments:
        urls = _field(arguments, "image_urls", list)
        if not urls or not all(isinstance(url, str) for url in urls):
            raise ModelError(
                "image_urls", "Input should be a non-empty list of URLs", "list_type", urls
            )
        return urls
    return [_field(arguments, "image_url", str)]


def _duration(arguments: dict[str, Any]) -> int:
    """Kling takes "5"/"10", Veo "8s"; both mean seconds."""
    value = arguments.get("duration", 5)
    text = str(value).removesuffix("s")
    if isinstance(value, bool) or not text.isdigit() or not 1 <= int(text) <= 10:
        raise ModelError(
            "duration", "Input should be a duration from 1 to 10 seconds", "enum", value
        )
    return int(text)


def _image_json(stored: StoredFile, work: Work) -> dict[str, Any]:
    width, height = stored.dimensions or (0, 0)
    return {
        "url": stored.url(work.base_url),
        "width": width,
        "height": height,
        "content_type": stored.content_type,
    }


async def _text_to_image(shop: Workshop, work: Work) -> dict[str, Any]:
    prompt = _prompt(work.arguments)
    count = _bounded(work.arguments, "num_images", 1, 4, 1)
    size = _image_size(work.arguments, "landscape_4_3")
    seed = _seed(work.arguments, prompt)
    images = []
    for index in range(count):
        scene = render.Scene(prompt, seed + index, work.model_id)
        spec = ["t2i", scene.label, prompt, scene.seed, size]
        stored = await shop.publish_png(spec, partial(render.generated, scene, size), size)
        images.append(_image_json(stored, work))
    return {
        "images": images,
        "seed": seed,
        "has_nsfw_concepts": [False] * count,
        "prompt": prompt,
        "timings": {"inference": work.latency},
    }


def _edit_drawing(source: Path, scene: render.Scene) -> Image.Image:
    return render.edited(render.load(source, _EDIT_SIDE), scene)


async def _edit(shop: Workshop, work: Work) -> dict[str, Any]:
    prompt = _prompt(work.arguments)
    urls = _urls(work.arguments)
    count = _bounded(work.arguments, "num_images", 1, 4, 1)
    seed = _seed(work.arguments, prompt)
    field = "image_urls" if "image_urls" in work.arguments else "image_url"
    images = []
    async with shop.inputs(work, field, urls) as sources:
        digests = [source.digest for source in sources]
        for index in range(count):
            scene = render.Scene(prompt, seed + index, work.model_id)
            spec = ["edit", scene.label, prompt, scene.seed, digests]
            stored = await shop.publish_png(spec, partial(_edit_drawing, sources[0].path, scene))
            images.append(_image_json(stored, work))
    return {"images": images, "seed": seed, "has_nsfw_concepts": [False] * count, "prompt": prompt}


def _retouch_drawing(source: Path, label: str, scale: float) -> Image.Image:
    return render.retouched(render.load(source, _MAX_SIDE), label, scale)


def _upscale_factor(work: Work) -> float:
    if not any(marker in work.model_id for marker in _UPSCALERS):
        return 1
    factor = work.arguments.get("upscale_factor", 2)
    if isinstance(factor, bool) or not isinstance(factor, int | float) or not 1 <= factor <= 4:
        raise ModelError(
            "upscale_factor", "Input should be a number from 1 to 4", "value_error", factor
        )
    return factor


async def _retouch(shop: Workshop, work: Work) -> dict[str, Any]:
    url: str = _field(work.arguments, "image_url", str)
    scale = _upscale_factor(work)
    async with shop.inputs(work, "image_url", [url]) as (source,):
        spec = ["retouch", work.model_id, source.digest, scale]
        stored = await shop.publish_png(
            spec, partial(_retouch_drawing, source.path, work.model_id, scale)
        )
    return {
        "image": {**_image_json(stored, work), "file_name": stored.name, "file_size": stored.size}
    }


def _video_bytes(
    scene: render.Scene, size: tuple[int, int], seconds: int, source: Path | None
) -> Callable[[Path], None]:
    def produce(path: Path) -> None:
        still = render.load(source, _VIDEO_SOURCE_SIDE) if source else None
        path.write_bytes(render.video(scene, size, seconds, _VIDEO_FPS, still))

    return produce


async def _video(shop: Workshop, work: Work) -> dict[str, Any]:
    prompt = _prompt(work.arguments)
    needs_image = "image-to-video" in work.model_id or "image_url" in work.arguments
    urls = [_field(work.arguments, "image_url", str)] if needs_image else []
    seconds = _duration(work.arguments)
    aspect = work.arguments.get("aspect_ratio", "16:9")
    if aspect not in _VIDEO_SIZES:
        raise ModelError(
            "aspect_ratio", f"Input should be one of {', '.join(_VIDEO_SIZES)}", "enum", aspect
        )
    scene = render.Scene(prompt, _seed(work.arguments, prompt), work.model_id)
    async with shop.inputs(work, "image_url", urls) as sources:
        source = sources[0].path if sources else None
        digest = sources[0].digest if sources else None
        spec = ["video", scene.label, prompt, scene.seed, aspect, seconds, digest]
        produce = _video_bytes(scene, _VIDEO_SIZES[aspect], seconds, source)
        stored = await shop.publish(spec, "output.mp4", "video/mp4", produce)
    return {
        "video": {
            "url": stored.url(work.base_url),
            "content_type": stored.content_type,
            "file_name": stored.name,
            "file_size": stored.size,
        }
    }


#: What the stand-in's LLM answers: the prompt it was given, made "detailed", so a test can
#: tell the rewritten prompt from the user's words.
LLM_ANSWER = "A detailed, high quality picture of: {prompt}"


async def _llm(shop: Workshop, work: Work) -> dict[str, Any]:
    """openrouter/router: fal's ChatOutput, the answer deterministic."""
    prompt = _prompt(work.arguments)
    _field(work.arguments, "model", str)
    output = LLM_ANSWER.format(prompt=prompt)
    tokens_in, tokens_out = len(prompt.split()), len(output.split())
    usage = {
        "prompt_tokens": tokens_in,
        "completion_tokens": tokens_out,
        "total_tokens": tokens_in + tokens_out,
        "cost": 0.0004,
    }
    return {"output": output, "usage": usage, "partial": False, "reasoning": None, "error": None}


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    markers: tuple[str, ...]
    run: Callable[[Workshop, Work], Awaitable[dict[str, Any]]]


# First match wins: image-to-video ids contain "image", kontext ids contain "flux".
FAMILIES: tuple[Family, ...] = (
    Family("llm", ("openrouter/",), _llm),
    Family("video", ("video", "veo", "kling"), _video),
    Family("edit", ("kontext", "/edit"), _edit),
    Family("retouch", ("retoucher", "codeformer", "upscaler"), _retouch),
    Family(
        "text-to-image",
        (
            "flux",
            "imagen",
            "recraft",
            "sdxl",
            "stable-diffusion",
            "ideogram",
            "nano-banana",
            "seedream",
        ),
        _text_to_image,
    ),
)


def family_of(model_id: str) -> Family | None:
    return next((f for f in FAMILIES if any(marker in model_id for marker in f.markers)), None)
