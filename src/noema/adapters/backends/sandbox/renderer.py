"""The sandbox's stand-in for a GPU: real PNG, GIF and text outputs drawn with Pillow.

Deterministic: the same inputs give the same bytes; a different seed gives a different picture.
Every picture carries a visible "SANDBOX" label so nobody mistakes it for a model's output.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageOps, ImageStat

from noema.adapters.backends.sandbox import painting
from noema.adapters.backends.sandbox.catalog import RenderKind
from noema.adapters.backends.sandbox.inputs import InputError

#: Input images larger than this (in pixels) are refused before decoding (decompression bombs).
MAX_INPUT_PIXELS = 40_000_000
MAX_UPSCALE_SIDE = 2048
ANIMATION_SIZE = (384, 384)
ASPECT_SIZES = {
    "1:1": (1024, 1024),
    "16:9": (1344, 768),
    "9:16": (768, 1344),
    "4:3": (1152, 896),
    "3:4": (896, 1152),
}


class ImageInputError(ValueError):
    """An input image that cannot be fetched or decoded."""


@dataclass(frozen=True)
class RenderedFile:
    filename: str
    content: bytes
    mime_type: str
    frame_rate: float | None = None


@dataclass(frozen=True)
class Rendered:
    """What a run produced: files and/or texts."""

    files: tuple[RenderedFile, ...] = ()
    texts: tuple[str, ...] = ()


def decode_image(data: bytes) -> Image.Image:
    """An RGB image from encoded bytes; ImageInputError when they are not a usable picture."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.width * opened.height > MAX_INPUT_PIXELS:
                raise ImageInputError(f"the input image is too large ({opened.width}×{opened.height} pixels)")
            return ImageOps.exif_transpose(opened).convert("RGB")
    except ImageInputError:
        raise
    except Exception as exc:  # Pillow raises many types for corrupt data; all mean "not an image"
        raise ImageInputError(f"the input image could not be decoded ({type(exc).__name__})") from exc


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def _scene(size: tuple[int, int], *parts: object, muted: bool = False) -> Image.Image:
    rng = painting.seeded_rng(*parts)
    colors = painting.palette(rng, muted=muted)
    image = painting.gradient(size, colors[0], colors[2])
    painting.paint_shapes(image, painting.random_shapes(rng, colors, count=rng.randint(6, 14)))
    return image


def render_text_to_image(values: Mapping[str, Any]) -> bytes:
    """A PNG drawn from the prompt, seed and size (txt2img and flux-pro)."""
    prompt = str(values.get("input_text", ""))
    if "aspect_ratio" in values:
        size = ASPECT_SIZES[str(values["aspect_ratio"])]
    else:
        size = (int(values.get("width", 512)), int(values.get("height", 512)))
    key = [prompt, size] + [values.get(name) for name in ("negative_prompt", "input_seed", "steps", "sampler", "raw")]
    image = _scene(size, "txt2img", *key, muted=bool(values.get("raw")))
    painting.draw_caption(image, prompt)
    painting.draw_label(image)
    return _png(image)


def render_image_to_image(values: Mapping[str, Any], source: Image.Image) -> bytes:
    """A PNG of the source restyled by the prompt and seed, as far as ``strength`` says."""
    prompt = str(values.get("input_text", ""))
    strength = float(values.get("strength", 0.6))
    base = painting.fit_within(source, smallest=256, largest=1536).convert("RGB")
    rng = painting.seeded_rng("img2img", prompt, values.get("input_seed"))
    colors = painting.palette(rng)
    tinted = ImageOps.colorize(ImageOps.grayscale(base), colors[0], colors[2])
    styled = Image.blend(base, ImageOps.posterize(tinted, 3), strength).convert("RGBA")
    shapes = painting.random_shapes(rng, colors, count=rng.randint(4, 9))
    painting.paint_shapes(styled, shapes, opacity=strength)
    painting.draw_caption(styled, prompt)
    painting.draw_label(styled)
    return _png(styled)


def render_animation(values: Mapping[str, Any]) -> tuple[bytes, float]:
    """A looping GIF of shapes orbiting over a seeded scene, and its frame rate."""
    prompt = str(values.get("input_text", ""))
    frames, fps = int(values.get("frames", 12)), int(values.get("fps", 8))
    if not 1 <= fps <= 50:
        raise InputError(f"fps must be between 1 and 50, got {fps}")
    rng = painting.seeded_rng("animate", prompt, values.get("input_seed"))
    colors = painting.palette(rng)
    background = painting.gradient(ANIMATION_SIZE, colors[0], colors[2])
    painting.paint_shapes(background, painting.random_shapes(rng, colors, count=5))
    movers = painting.random_shapes(rng, colors, count=rng.randint(3, 6), moving=True)
    images = []
    for index in range(frames):
        frame = background.copy()
        painting.paint_shapes(frame, movers, phase=index / frames)
        painting.draw_caption(frame, prompt)
        painting.draw_label(frame, f"{painting.SANDBOX_LABEL} {index + 1}/{frames}")
        images.append(frame.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT))
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
    return buffer.getvalue(), float(fps)


def render_upscale(source: Image.Image) -> bytes:
    """A PNG at twice the size (Lanczos), labelled."""
    if max(source.size) > MAX_UPSCALE_SIDE:
        raise ImageInputError(f"the input image is too large to upscale (max {MAX_UPSCALE_SIDE} pixels a side)")
    image = source.resize((source.width * 2, source.height * 2), Image.Resampling.LANCZOS).convert("RGBA")
    painting.draw_label(image)
    return _png(image)


def caption(source: Image.Image) -> str:
    """One sentence about the picture: its size and main colour."""
    small = source.copy()
    small.thumbnail((64, 64))
    red, green, blue = (round(channel) for channel in ImageStat.Stat(small).mean[:3])
    name = painting.color_name((red, green, blue))
    return f"A {source.width}×{source.height} image, mostly {name} (sandbox caption)"


def render(kind: RenderKind, values: Mapping[str, Any], source: bytes | None) -> Rendered:
    """Run one workflow kind on resolved inputs (and the input image's bytes, when it takes one)."""
    if kind is RenderKind.TXT2IMG:
        return Rendered(files=(RenderedFile("ComfyUI_00001_.png", render_text_to_image(values), "image/png"),))
    if kind is RenderKind.ANIMATE:
        gif, fps = render_animation(values)
        return Rendered(files=(RenderedFile("AnimateDiff_00001.gif", gif, "image/gif", fps),))
    if source is None:
        raise ImageInputError("this workflow needs an input image")
    image = decode_image(source)
    if kind is RenderKind.IMG2IMG:
        png = render_image_to_image(values, image)
        return Rendered(files=(RenderedFile("ComfyUI_00001_.png", png, "image/png"),))
    if kind is RenderKind.UPSCALE:
        return Rendered(files=(RenderedFile("upscaled_00001_.png", render_upscale(image), "image/png"),))
    return Rendered(texts=(caption(image),))
