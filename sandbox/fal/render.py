"""Pillow pictures for the stand-in's outputs.

Deterministic from the prompt and seed so tests and demos can compare runs, recognisable at a
glance (prompt on a gradient, seed in a corner) so a human watching the demo sees which request
made what, and cheap: every effect is computed at 256x256 and scaled once.
"""

import colorsys
import hashlib
import random
import textwrap
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

from sandbox.fal.mp4 import encode_mp4

_SWATCH = 256
_MAX_LINES = 6
_INK = (255, 255, 255)
_OUTLINE = (20, 20, 30)
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@dataclass(frozen=True)
class Scene:
    """What a picture shows; the same scene always renders to the same pixels."""

    prompt: str
    seed: int
    label: str


@lru_cache(maxsize=32)
def _font(size: int) -> Font:
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size)


def _palette(scene: Scene) -> tuple[tuple[int, int, int], ...]:
    digest = hashlib.sha256(scene.prompt.encode()).digest()
    hue = digest[0] / 255
    spread = 0.25 + digest[1] / 1020

    def colour(h: float, saturation: float, value: float) -> tuple[int, int, int]:
        r, g, b = colorsys.hsv_to_rgb(h % 1.0, saturation, value)
        return round(r * 255), round(g * 255), round(b * 255)

    return colour(hue, 0.75, 0.45), colour(hue + spread, 0.6, 0.85), colour(hue - spread, 0.5, 1.0)


def _gradient(scene: Scene, size: tuple[int, int]) -> Image.Image:
    dark, light, glow_colour = _palette(scene)
    ramp = Image.linear_gradient("L")
    diagonal = ImageChops.add(ramp, ramp.transpose(Image.Transpose.ROTATE_90), scale=2.0)
    base = Image.composite(
        Image.new("RGB", ramp.size, light), Image.new("RGB", ramp.size, dark), diagonal
    )
    rng = random.Random(scene.seed)
    glow = ImageOps.invert(Image.radial_gradient("L")).resize((_SWATCH // 2, _SWATCH // 2))
    glow_mask = Image.new("L", ramp.size, 0)
    glow_mask.paste(glow, (rng.randrange(_SWATCH // 2), rng.randrange(_SWATCH // 2)))
    glow_mask = glow_mask.filter(ImageFilter.GaussianBlur(_SWATCH // 16)).point(
        lambda v: v * 3 // 5
    )
    base = Image.composite(Image.new("RGB", ramp.size, glow_colour), base, glow_mask)
    return base.resize(size, Image.Resampling.BILINEAR)


def _wrap(text: str, font: Font, width: int) -> list[str]:
    average = font.getlength("abcdefghijklmnopqrstuvwxyz") / 26 or 1
    lines = textwrap.wrap(text, width=max(8, int(width / average))) or [""]
    if len(lines) > _MAX_LINES:
        lines = [*lines[: _MAX_LINES - 1], lines[_MAX_LINES - 1] + " …"]
    return lines


def _caption(image: Image.Image, scene: Scene) -> Image.Image:
    """Prompt in the middle, label top left, seed bottom right; outlined to read on any colour."""
    draw = ImageDraw.Draw(image)
    short = min(image.size)
    margin = max(4, short // 24)
    big, small = _font(max(10, short // 18)), _font(max(8, short // 36))
    outline = max(1, short // 400)
    text = "\n".join(_wrap(scene.prompt, big, image.width - 2 * margin))
    draw.multiline_text(
        (margin, image.height // 2),
        text,
        font=big,
        fill=_INK,
        anchor="lm",
        spacing=short // 60,
        stroke_width=outline * 2,
        stroke_fill=_OUTLINE,
    )
    draw.text(
        (margin, margin),
        scene.label,
        font=small,
        fill=_INK,
        stroke_width=outline,
        stroke_fill=_OUTLINE,
    )
    draw.text(
        (image.width - margin, image.height - margin),
        f"seed {scene.seed}",
        font=small,
        fill=_INK,
        anchor="rd",
        stroke_width=outline,
        stroke_fill=_OUTLINE,
    )
    return image


def save_png(image: Image.Image, path: Path) -> None:
    """Low compression: the stand-in's files are short-lived and rendering time matters more."""
    image.save(path, format="PNG", compress_level=1)


def generated(scene: Scene, size: tuple[int, int]) -> Image.Image:
    return _caption(_gradient(scene, size), scene)


def load(path: Path, max_side: int) -> Image.Image:
    """Decode an input image, scaled down so a huge upload cannot make rendering slow."""
    with Image.open(path) as opened:
        opened.draft("RGB", (max_side, max_side))
        image = ImageOps.exif_transpose(opened).convert("RGB")
    image.thumbnail((max_side, max_side))
    return image


def edited(source: Image.Image, scene: Scene) -> Image.Image:
    """The input recoloured with the prompt's palette and the prompt written over it."""
    dark, light, _ = _palette(scene)
    tinted = ImageOps.colorize(ImageOps.grayscale(source), black=dark, white=light)
    return _caption(Image.blend(source, tinted, 0.6), scene)


def retouched(source: Image.Image, label: str, scale: float) -> Image.Image:
    """Smoothed and brightened, or scaled up by `scale` and sharpened, as big as a real
    upscaler makes it (what Telegram can show depends on it); a corner badge names the model."""
    if scale > 1:
        size = (round(source.width * scale), round(source.height * scale))
        image = source.resize(size, Image.Resampling.BILINEAR).filter(
            ImageFilter.UnsharpMask(2, 120, 2)
        )
    else:
        image = ImageEnhance.Brightness(source.filter(ImageFilter.SMOOTH_MORE)).enhance(1.05)
    short = min(image.size)
    ImageDraw.Draw(image).text(
        (max(4, short // 24),) * 2,
        label,
        font=_font(max(8, short // 36)),
        fill=_INK,
        stroke_width=1,
        stroke_fill=_OUTLINE,
    )
    return image


def video(
    scene: Scene, size: tuple[int, int], seconds: int, fps: int, source: Image.Image | None
) -> bytes:
    """A slideshow clip: the still (generated or the input photo) with a marker sweeping across."""
    still = _caption(ImageOps.fit(source, size) if source else _gradient(scene, size), scene)
    count = max(1, seconds * fps)
    radius = max(3, min(size) // 16)
    frames = []
    for index in range(count):
        frame = still.copy()
        x = radius + (size[0] - 2 * radius) * index // max(1, count - 1)
        y = size[1] * 3 // 4
        ImageDraw.Draw(frame).ellipse(
            (x - radius, y - radius, x + radius, y + radius), fill=_INK, outline=_OUTLINE
        )
        frames.append(frame)
    return encode_mp4(frames, fps)
