"""The node classes of the fake ComfyUI: their ``/object_info`` specs and a Pillow run of each.

A batch of images is a list of PIL images; the same object repeated (``EmptyImage``'s batch) is
processed once, so a 2048×2048 batch of 16 costs one image's work here.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageFilter, ImageOps

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp")


class NodeFailure(Exception):
    """A node raised while running: becomes ``execution_error``."""

    def __init__(self, message: str, exception_type: str = "RuntimeError") -> None:
        super().__init__(message)
        self.exception_type = exception_type


@dataclass
class Context:
    """Where nodes read and write files, and per-prefix counters for output names."""

    root: Path
    counters: dict[str, int] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)

    def folder(self, kind: str) -> Path:
        path = self.root / kind
        path.mkdir(parents=True, exist_ok=True)
        return path

    def next_name(self, folder: str, prefix: str, ext: str) -> tuple[str, str, Path]:
        """``(filename, subfolder, path)`` for ``prefix_00001_.ext``; a prefix may name a subfolder."""
        sub, _, base = prefix.rpartition("/")
        key = f"{folder}/{prefix}"
        self.counters[key] = self.counters.get(key, 0) + 1
        name = f"{base}_{self.counters[key]:05}_.{ext}"
        directory = self.folder(folder) / sub
        directory.mkdir(parents=True, exist_ok=True)
        return name, sub, directory / name


Run = Callable[[Context, dict[str, Any]], tuple[Any, ...] | dict[str, Any]]


@dataclass(frozen=True)
class NodeDef:
    """One node class: its inputs as ComfyUI declares them, its outputs, and how it runs."""

    required: dict[str, list[Any]]
    outputs: tuple[str, ...]
    run: Run | None
    output_node: bool = False
    category: str = "image"
    python_module: str = "nodes"


def _int(default: int, lo: int, hi: int) -> list[Any]:
    return ["INT", {"default": default, "min": lo, "max": hi, "step": 1}]


def _float(default: float, lo: float, hi: float, step: float) -> list[Any]:
    return ["FLOAT", {"default": default, "min": lo, "max": hi, "step": step}]


def _each(images: list[Image.Image], fn: Callable[[Image.Image], Image.Image]) -> list[Image.Image]:
    done: dict[int, Image.Image] = {}
    return [done.setdefault(id(img), fn(img)) if id(img) not in done else done[id(img)] for img in images]


def _empty(ctx: Context, i: dict[str, Any]) -> tuple[Any, ...]:
    c = int(i["color"])
    image = Image.new("RGB", (int(i["width"]), int(i["height"])), ((c >> 16) & 255, (c >> 8) & 255, c & 255))
    return ([image] * int(i["batch_size"]),)


def _load(ctx: Context, i: dict[str, Any]) -> tuple[Any, ...]:
    with Image.open(ctx.folder("input") / str(i["image"])) as img:
        image = img.convert("RGB")
    return ([image], None)


def _blur(ctx: Context, i: dict[str, Any]) -> tuple[Any, ...]:
    images: list[Image.Image] = i["image"]
    radius = int(i["blur_radius"])
    w, h = images[0].size
    if radius >= w or radius >= h:  # torch's reflect padding refuses it the same way
        dim = 3 if radius >= w else 2
        raise NodeFailure(
            "Argument #4: Padding size should be less than the corresponding input dimension, but got: "
            f"padding ({radius}, {radius}) at dimension {dim} of input [{len(images)}, 3, {h}, {w}]\n"
        )
    return (_each(images, lambda im: im.filter(ImageFilter.GaussianBlur(radius=float(i["sigma"])))),)


def _sharpen(ctx: Context, i: dict[str, Any]) -> tuple[Any, ...]:
    mask = ImageFilter.UnsharpMask(radius=int(i["sharpen_radius"]), percent=int(100 * float(i["alpha"])))
    return (_each(i["image"], lambda im: im.filter(mask)),)


def _scale(ctx: Context, i: dict[str, Any]) -> tuple[Any, ...]:
    factor = float(i["scale_by"])

    def resize(im: Image.Image) -> Image.Image:
        return im.resize((max(1, round(im.width * factor)), max(1, round(im.height * factor))))

    return (_each(i["image"], resize),)


def _save(ctx: Context, i: dict[str, Any], *, folder: str, prefix: str) -> dict[str, Any]:
    files = []
    for image in i["images"]:
        name, sub, path = ctx.next_name(folder, prefix, "png")
        image.save(path, "PNG")
        files.append({"filename": name, "subfolder": sub, "type": folder})
    return {"images": files}


def _save_image(ctx: Context, i: dict[str, Any]) -> dict[str, Any]:
    return _save(ctx, i, folder="output", prefix=str(i["filename_prefix"]))


def _preview(ctx: Context, i: dict[str, Any]) -> dict[str, Any]:
    suffix = "".join(ctx.rng.choice(string.ascii_lowercase) for _ in range(5))
    return _save(ctx, i, folder="temp", prefix=f"ComfyUI_temp_{suffix}")


def _save_webp(ctx: Context, i: dict[str, Any]) -> dict[str, Any]:
    images: list[Image.Image] = i["images"]
    name, sub, path = ctx.next_name("output", str(i["filename_prefix"]), "webp")
    duration = int(1000 / float(i["fps"]))
    images[0].save(
        path, "WEBP", save_all=True, append_images=images[1:], duration=duration, lossless=bool(i["lossless"])
    )
    return {"images": [{"filename": name, "subfolder": sub, "type": "output"}], "animated": [True]}


NODES: dict[str, NodeDef] = {
    "EmptyImage": NodeDef(
        {"width": _int(512, 1, 16384), "height": _int(512, 1, 16384), "batch_size": _int(1, 1, 4096),
         "color": ["INT", {"default": 0, "min": 0, "max": 16777215, "step": 1, "display": "color"}]},
        ("IMAGE",), _empty),
    "LoadImage": NodeDef({"image": [[], {"image_upload": True}]}, ("IMAGE", "MASK"), _load),
    "ImageInvert": NodeDef({"image": ["IMAGE"]}, ("IMAGE",), lambda c, i: (_each(i["image"], ImageOps.invert),)),
    "ImageBlur": NodeDef(
        {"image": ["IMAGE", {}], "blur_radius": _int(1, 1, 31), "sigma": _float(1.0, 0.1, 10.0, 0.1)},
        ("IMAGE",), _blur, category="image/postprocessing", python_module="comfy_extras.nodes_post_processing"),
    "ImageSharpen": NodeDef(
        {"image": ["IMAGE", {}], "sharpen_radius": _int(1, 1, 31), "sigma": _float(1.0, 0.1, 10.0, 0.01),
         "alpha": _float(1.0, 0.0, 5.0, 0.01)},
        ("IMAGE",), _sharpen, category="image/postprocessing", python_module="comfy_extras.nodes_post_processing"),
    "ImageScaleBy": NodeDef(
        {"image": ["IMAGE"], "upscale_method": [["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]],
         "scale_by": _float(1.0, 0.01, 8.0, 0.01)},
        ("IMAGE",), _scale, category="image/upscaling"),
    "SaveImage": NodeDef(
        {"images": ["IMAGE", {"tooltip": "The images to save."}], "filename_prefix": ["STRING", {"default": "ComfyUI"}]},
        (), _save_image, output_node=True),
    "PreviewImage": NodeDef({"images": ["IMAGE"]}, (), _preview, output_node=True),
    "SaveAnimatedWEBP": NodeDef(
        {"images": ["IMAGE"], "filename_prefix": ["STRING", {"default": "ComfyUI"}],
         "fps": _float(6.0, 0.01, 1000.0, 0.01), "lossless": ["BOOLEAN", {"default": True}],
         "quality": _int(80, 0, 100), "method": [["default", "fastest", "slowest"]]},
        (), _save_webp, output_node=True, category="image/animation", python_module="comfy_extras.nodes_images"),
    "PrimitiveString": NodeDef({"value": ["STRING", {}]}, ("STRING",), lambda c, i: (str(i["value"]),), category="utils"),
    "PreviewAny": NodeDef({"source": ["*", {}]}, (), lambda c, i: {"text": [str(i["source"])]}, output_node=True,
                          category="utils"),
    # No model files here, as on the real peer: a loader lists nothing and fails validation.
    "CheckpointLoaderSimple": NodeDef(
        {"ckpt_name": [[], {"tooltip": "The name of the checkpoint (model) to load."}]}, ("MODEL", "CLIP", "VAE"), None,
        category="loaders"),
}  # fmt: skip


def object_info(name: str, node: NodeDef, *, input_files: list[str]) -> dict[str, Any]:
    """One class as ``/object_info`` shows it (a LoadImage lists the files in ``input/``)."""
    required = dict(node.required)
    if name == "LoadImage":
        required["image"] = [sorted(input_files), {"image_upload": True}]
    return {
        "input": {"required": required},
        "input_order": {"required": list(required)},
        "output": list(node.outputs),
        "output_is_list": [False] * len(node.outputs),
        "output_name": list(node.outputs),
        "name": name,
        "display_name": name,
        "description": "",
        "python_module": node.python_module,
        "category": node.category,
        "output_node": node.output_node,
    }
