"""Drawing primitives for the sandbox renderer: seeded scenes, shapes, and the visible labels.

Everything is derived from a hash of the request, never from global randomness, so the same
prompt, seed and size always give the same pixels (and therefore the same PNG bytes).
"""

from __future__ import annotations

import colorsys
import hashlib
import math
import random
import textwrap
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont, ImageOps

Color = tuple[int, int, int]
RGBAColor = tuple[int, int, int, int]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

SANDBOX_LABEL = "SANDBOX"


def seeded_rng(*parts: object) -> random.Random:
    """A random generator determined by the given values only."""
    digest = hashlib.sha256("\x1f".join(repr(part) for part in parts).encode()).digest()
    return random.Random(int.from_bytes(digest, "big"))


def _hsv(hue: float, saturation: float, value: float) -> Color:
    red, green, blue = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    return round(red * 255), round(green * 255), round(blue * 255)


def palette(rng: random.Random, *, muted: bool = False) -> list[Color]:
    """Five harmonious colours around a random base hue."""
    base = rng.random()
    saturation = 0.35 if muted else 0.75
    offsets = (0.0, 0.08, 0.5, 0.58, 0.33)
    return [_hsv(base + offset, saturation * rng.uniform(0.7, 1.0), rng.uniform(0.45, 0.95)) for offset in offsets]


def gradient(size: tuple[int, int], top: Color, bottom: Color) -> Image.Image:
    """A vertical gradient from ``top`` to ``bottom``."""
    ramp = Image.linear_gradient("L").resize(size, Image.Resampling.BILINEAR)
    return ImageOps.colorize(ramp, top, bottom).convert("RGBA")


@dataclass(frozen=True)
class Shape:
    """A translucent shape; ``orbit`` is how far it travels over one animation loop."""

    kind: str
    x: float
    y: float
    radius: float
    color: RGBAColor
    orbit: float
    angle: float

    def position(self, phase: float) -> tuple[float, float]:
        """Its centre at a point of the animation loop (0 <= phase < 1)."""
        turn = 2 * math.pi * phase + self.angle
        return self.x + self.orbit * math.cos(turn), self.y + self.orbit * math.sin(turn)


def random_shapes(rng: random.Random, colors: list[Color], *, count: int, moving: bool = False) -> list[Shape]:
    """``count`` shapes in relative coordinates (0..1), coloured from the palette."""
    shapes = []
    for _ in range(count):
        red, green, blue = rng.choice(colors)
        shapes.append(
            Shape(
                kind=rng.choice(("ellipse", "rectangle", "triangle")),
                x=rng.random(),
                y=rng.random(),
                radius=rng.uniform(0.05, 0.25),
                color=(red, green, blue, rng.randint(90, 200)),
                orbit=rng.uniform(0.08, 0.25) if moving else 0.0,
                angle=rng.uniform(0, 2 * math.pi),
            )
        )
    return shapes


def paint_shapes(image: Image.Image, shapes: list[Shape], *, phase: float = 0.0, opacity: float = 1.0) -> None:
    """Composite the shapes onto an RGBA image in place."""
    width, height = image.size
    scale = min(width, height)
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for shape in shapes:
        x, y = shape.position(phase)
        cx, cy, r = x * width, y * height, shape.radius * scale
        color = (*shape.color[:3], round(shape.color[3] * opacity))
        box = (cx - r, cy - r, cx + r, cy + r)
        if shape.kind == "ellipse":
            draw.ellipse(box, fill=color)
        elif shape.kind == "rectangle":
            draw.rectangle(box, fill=color)
        else:
            draw.polygon([(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)], fill=color)
    image.alpha_composite(overlay)


def font(size: int) -> Font:
    """Pillow's bundled font at a pixel size (no system fonts, so output is the same everywhere)."""
    # Not cached: loading takes well under a millisecond, and a shared FreeType face is not safe
    # across the worker threads that render concurrently.
    return ImageFont.load_default(size=size)


def draw_label(image: Image.Image, text: str = SANDBOX_LABEL) -> None:
    """The visible "SANDBOX" badge in the top-left corner, on an RGBA image in place."""
    size = max(12, min(image.size) // 16)
    face = font(size)
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=face)
    pad = max(4, size // 3)
    draw.rectangle((0, 0, right - left + 2 * pad, bottom - top + 2 * pad), fill=(0, 0, 0, 200))
    draw.text((pad - left, pad - top), text, font=face, fill=(255, 255, 255, 255))


def draw_caption(image: Image.Image, text: str) -> None:
    """The prompt in a dark band along the bottom edge (at most three lines)."""
    text = " ".join(text.split())
    if not text:
        return
    width, height = image.size
    size = max(10, min(width, height) // 28)
    face = font(size)
    chars_per_line = max(10, int(width / (size * 0.55)))
    lines = textwrap.wrap(text, chars_per_line, max_lines=3, placeholder=" …")
    line_height = round(size * 1.3)
    band_top = height - line_height * len(lines) - size
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    draw.rectangle((0, band_top, width, height), fill=(0, 0, 0, 150))
    for index, line in enumerate(lines):
        draw.text(
            (size // 2, band_top + size // 2 + index * line_height),
            line,
            font=face,
            fill=(255, 255, 255, 255),
        )
    image.alpha_composite(overlay)


def fit_within(image: Image.Image, *, smallest: int, largest: int) -> Image.Image:
    """The image scaled so its long side lies between ``smallest`` and ``largest`` pixels."""
    long_side = max(image.size)
    if smallest <= long_side <= largest:
        return image.copy()
    factor = (largest if long_side > largest else smallest) / long_side
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return image.resize(size, Image.Resampling.LANCZOS)


def color_name(color: Color) -> str:
    """A plain English name for an average colour."""
    hue, saturation, value = colorsys.rgb_to_hsv(*(channel / 255 for channel in color))
    if value < 0.2:
        return "black"
    if saturation < 0.15:
        return "white" if value > 0.85 else "grey"
    names: tuple[tuple[float, str], ...] = (
        (0.04, "red"),
        (0.11, "orange"),
        (0.18, "yellow"),
        (0.45, "green"),
        (0.53, "cyan"),
        (0.72, "blue"),
        (0.83, "purple"),
        (0.95, "pink"),
        (1.01, "red"),
    )
    return next(name for limit, name in names if hue < limit)
