"""The sandbox catalog's definitions, with stable hard-coded ids so persisted catalogs stay valid."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from noema.adapters.backends.sandbox.catalog import (
    Catalog,
    Deployment,
    InputDef,
    InputTypesShape,
    Machine,
    NodeDef,
    OutputDef,
    RenderKind,
)

A10G = Machine("786c878b-7f21-55ae-8020-925e6ddc73ae", "sandbox-a10g", "A10G")
L4 = Machine("edc08171-1e5c-5bce-978c-9e53cc5db35e", "sandbox-l4", "L4")
L40S = Machine("95ee573b-32f6-52b5-aafc-1f852e063668", "sandbox-l40s", "L40S")
T4 = Machine("629bef60-ffe8-559d-a3c0-7b3dc0a0a546", "sandbox-t4", "T4")
CPU = Machine("ad9a2ec8-4e36-52b5-ba80-93e75cc3d84e", "sandbox-cpu", "CPU")
# A real GPU name that Noema's price table does not know: the tool must come out disabled.
H200 = Machine("e5d8aba0-e6a5-5084-9b01-fe69e1a3dad5", "sandbox-h200", "H200")

SAMPLERS = ("euler", "euler_ancestral", "dpmpp_2m", "ddim")
ASPECT_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4")


def _prompt(node_id: str, *, required: bool = True) -> InputDef:
    description = "What to draw." if required else "How to change the picture (optional)."
    if required:
        return InputDef(node_id, "input_text", "ComfyUIDeployExternalText", "Prompt", description)
    return InputDef(node_id, "input_text", "ComfyUIDeployExternalText", "Prompt", description, default="")


def _seed(node_id: str) -> InputDef:
    return InputDef(node_id, "input_seed", "ComfyUIDeployExternalSeed", "Seed", "-1 picks a random seed.", default=-1)


def _image(node_id: str) -> InputDef:
    return InputDef(node_id, "input_image", "ComfyUIDeployExternalImage", "Image", "The picture to work on.")


def _size(node_id: str, input_id: str, label: str) -> InputDef:
    return InputDef(
        node_id,
        input_id,
        "ComfyUIDeployExternalNumberSliderInt",
        label,
        f"Image {input_id} in pixels.",
        default=512,
        min_value=256,
        max_value=1536,
        step=64,
    )


def _link(node_id: str, slot: int = 0) -> list[Any]:
    return [node_id, slot]


def _image_output(node_id: str, images: list[Any], *, prefix: str = "ComfyUI") -> OutputDef:
    inputs = {"images": images, "filename_prefix": prefix, "file_type": "png", "quality": 80}
    inputs["output_id"] = "output_images"
    return OutputDef(node_id, "ComfyDeployOutputImage", "output_images", "images", inputs)


TXT2IMG = Deployment(
    name="txt2img",
    id="4f0d4683-ffcc-5969-9060-621c95bc4131",
    workflow_id="f05f11e6-8bfb-53f0-a4ea-651c0b2fd667",
    version_ids=("32db10a1-89f2-57be-99aa-e98d11721fb7", "52823bf1-114e-5fe2-a117-70a13de9a771"),
    machine=A10G,
    kind=RenderKind.TXT2IMG,
    note="Text to image. Describe a picture and get a PNG (sandbox: abstract shapes, not a real model).",
    inputs=(
        _prompt("1"),
        InputDef("2", "negative_prompt", "ComfyUIDeployExternalText", "Negative prompt", "What to avoid.", ""),
        _seed("3"),
        _size("4", "width", "Width"),
        _size("5", "height", "Height"),
        InputDef(
            "6",
            "steps",
            "ComfyUIDeployExternalNumberInt",
            "Steps",
            "Sampling steps.",
            default=20,
            min_value=1,
            max_value=100,
        ),
        InputDef("7", "sampler", "ComfyUIDeployExternalEnum", "Sampler", "The sampler.", "euler", options=SAMPLERS),
    ),
    nodes=(
        NodeDef("10", "CheckpointLoaderSimple", {"ckpt_name": "sd_xl_base_1.0.safetensors"}),
        NodeDef("11", "CLIPTextEncode", {"text": _link("1"), "clip": _link("10", 1)}),
        NodeDef("12", "CLIPTextEncode", {"text": _link("2"), "clip": _link("10", 1)}),
        NodeDef("13", "EmptyLatentImage", {"width": _link("4"), "height": _link("5"), "batch_size": 1}),
        NodeDef(
            "14",
            "KSampler",
            {
                "model": _link("10"),
                "seed": _link("3"),
                "steps": _link("6"),
                "cfg": 7,
                "sampler_name": _link("7"),
                "scheduler": "normal",
                "positive": _link("11"),
                "negative": _link("12"),
                "latent_image": _link("13"),
                "denoise": 1,
            },
        ),
        NodeDef("15", "VAEDecode", {"samples": _link("14"), "vae": _link("10", 2)}),
    ),
    output=_image_output("9", _link("15")),
)

IMG2IMG = Deployment(
    name="img2img",
    id="d4769dcf-0ae7-5a99-8304-67b3c68ef672",
    workflow_id="a039b12c-2b5f-51a6-955a-967eaa59b3e6",
    version_ids=("c54a40f7-d132-5716-aa6d-583cbfb5eaa3",),
    machine=L4,
    kind=RenderKind.IMG2IMG,
    note="Image to image. Reply to a picture with a prompt to restyle it (sandbox rendering).",
    inputs=(
        _image("1"),
        _prompt("2", required=False),
        InputDef(
            "3",
            "strength",
            "ComfyUIDeployExternalNumberSlider",
            "Strength",
            "How far to move away from the original.",
            default=0.6,
            min_value=0.0,
            max_value=1.0,
            step=0.05,
        ),
        _seed("4"),
    ),
    nodes=(
        NodeDef("10", "CheckpointLoaderSimple", {"ckpt_name": "sd_xl_base_1.0.safetensors"}),
        NodeDef("11", "VAEEncode", {"pixels": _link("1"), "vae": _link("10", 2)}),
        NodeDef("12", "CLIPTextEncode", {"text": _link("2"), "clip": _link("10", 1)}),
        NodeDef(
            "13",
            "KSampler",
            {"model": _link("10"), "seed": _link("4"), "positive": _link("12"), "denoise": _link("3")},
        ),
        NodeDef("14", "VAEDecode", {"samples": _link("13"), "vae": _link("10", 2)}),
    ),
    output=_image_output("9", _link("14")),
)

ANIMATE = Deployment(
    name="animate",
    id="e797eb86-f7d6-5e1b-a45c-99a46907a401",
    workflow_id="122cd6fa-00d3-5d24-9e3e-317e28b2922f",
    version_ids=("d7f3445f-9fbf-547f-a320-1dc6ee2d7696",),
    machine=L40S,
    kind=RenderKind.ANIMATE,
    note="Text to animation. Get a short looping GIF from a prompt (sandbox rendering).",
    inputs=(
        _prompt("1"),
        _seed("2"),
        InputDef(
            "3",
            "frames",
            "ComfyUIDeployExternalNumberSliderInt",
            "Frames",
            "Number of frames.",
            default=12,
            min_value=8,
            max_value=32,
            step=1,
        ),
        InputDef(
            "4",
            "fps",
            "ComfyUIDeployExternalNumberInt",
            "FPS",
            "Frames per second.",
            default=8,
            min_value=1,
            max_value=30,
        ),
    ),
    nodes=(
        NodeDef("10", "CheckpointLoaderSimple", {"ckpt_name": "sd15.safetensors"}),
        NodeDef("11", "ADE_AnimateDiffLoaderWithContext", {"model": _link("10"), "motion_model": "mm_sd15_v3"}),
        NodeDef("12", "CLIPTextEncode", {"text": _link("1"), "clip": _link("10", 1)}),
        NodeDef("13", "KSampler", {"model": _link("11"), "seed": _link("2"), "positive": _link("12")}),
        NodeDef("14", "VAEDecode", {"samples": _link("13"), "vae": _link("10", 2)}),
    ),
    output=OutputDef(
        "20",
        "VHS_VideoCombine",
        None,
        "gifs",
        {"images": _link("14"), "frame_rate": _link("4"), "loop_count": 0, "format": "image/gif"},
    ),
    input_types_shape=InputTypesShape.ABSENT,
)

UPSCALE = Deployment(
    name="upscale",
    id="4a89aa48-6683-5c1b-84d4-72c175ba79aa",
    workflow_id="d4343c7a-ccfc-5fbe-be63-92d1c2c097f5",
    version_ids=("cbb74e9c-e5f3-5ec1-b751-07b13799624b",),
    machine=T4,
    kind=RenderKind.UPSCALE,
    note="Upscale. Doubles the size of a picture (sandbox: Lanczos resampling).",
    inputs=(_image("1"),),
    nodes=(
        NodeDef("2", "UpscaleModelLoader", {"model_name": "4x-UltraSharp.pth"}),
        NodeDef("3", "ImageUpscaleWithModel", {"upscale_model": _link("2"), "image": _link("1")}),
    ),
    output=OutputDef("4", "SaveImage", None, "images", {"images": _link("3"), "filename_prefix": "upscaled"}),
    input_types_shape=InputTypesShape.NULL,
)

CAPTION = Deployment(
    name="caption",
    id="209efe50-40a0-5b7b-bdc2-c6ea482208aa",
    workflow_id="1064066c-6fcf-5e48-b389-4e7db6e0c0f1",
    version_ids=("aeee7867-5b0e-5875-b5dc-8a599d82356f",),
    machine=CPU,
    kind=RenderKind.CAPTION,
    note="Caption. Describes a picture in one sentence (sandbox: size and main colour only).",
    inputs=(_image("1"),),
    nodes=(NodeDef("2", "Florence2Run", {"image": _link("1"), "task": "caption"}),),
    output=OutputDef(
        "3", "ComfyDeployOutputText", "output_text", "text", {"text": _link("2"), "output_id": "output_text"}
    ),
)

FLUX_PRO = Deployment(
    name="flux-pro",
    id="a75b7123-1c18-5707-a67f-c82c1599b309",
    workflow_id="d7be5138-03e3-547c-9311-046da2aeed5b",
    version_ids=("f65d76b7-ca72-555f-ae64-1c241d64edc8",),
    machine=H200,
    kind=RenderKind.TXT2IMG,
    note="Flux Pro. High-end text to image on an H200 (sandbox rendering).",
    inputs=(
        _prompt("1"),
        _seed("2"),
        InputDef(
            "3",
            "aspect_ratio",
            "ComfyUIDeployExternalEnum",
            "Aspect ratio",
            "Shape of the picture.",
            default="1:1",
            options=ASPECT_RATIOS,
        ),
        InputDef("4", "raw", "ComfyUIDeployExternalBoolean", "Raw", "A less processed look.", default=False),
    ),
    nodes=(
        NodeDef("10", "UNETLoader", {"unet_name": "flux1-pro.safetensors", "weight_dtype": "fp8_e4m3fn"}),
        NodeDef("11", "CLIPTextEncode", {"text": _link("1")}),
        NodeDef("12", "SamplerCustomAdvanced", {"noise": _link("2"), "guider": _link("11")}),
        NodeDef("13", "VAEDecode", {"samples": _link("12")}),
    ),
    output=_image_output("9", _link("13"), prefix="flux"),
)

CATALOG = Catalog(
    machines=(A10G, L4, L40S, T4, CPU, H200),
    deployments=(TXT2IMG, IMG2IMG, ANIMATE, UPSCALE, CAPTION, FLUX_PRO),
)

#: deployment name -> deployment id, for configuration and tests
DEPLOYMENT_IDS = MappingProxyType({deployment.name: deployment.id for deployment in CATALOG.deployments})
