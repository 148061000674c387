"""What a run is doing, in words people use: the one place node class names become "Sampling 12/30".

Backends report progress by ComfyUI node class (ComfyDeploy's ``live_status`` is ``Executing
KSampler``); nobody using Noema should read a class name such as ``ComfyUIDeployExternalNumberInt``.
"""

from __future__ import annotations

import re

#: Node classes (or a part of their name, lower case) and what they mean; the first match wins.
_WORDS: tuple[tuple[str, str], ...] = (
    ("sampler", "Sampling"),
    ("vaedecode", "Decoding the image"),
    ("vaeencode", "Reading the input image"),
    ("checkpointloader", "Loading the model"),
    ("unetloader", "Loading the model"),
    ("animatediffloader", "Loading the motion model"),
    ("loraloader", "Loading the LoRAs"),
    ("vaeloader", "Loading the model"),
    ("clipload", "Loading the model"),
    ("controlnetload", "Loading the model"),
    ("upscalemodelloader", "Loading the upscaler"),
    ("upscale", "Upscaling"),
    ("cliptextencode", "Reading the prompt"),
    ("saveimage", "Saving the image"),
    ("saveanimated", "Saving the animation"),
    ("videocombine", "Saving the video"),
    ("savevideo", "Saving the video"),
    ("previewimage", "Saving the image"),
    ("outputimage", "Saving the image"),
    ("outputtext", "Saving the text"),
    ("florence", "Describing the image"),
    ("comfyuideployexternal", "Reading your inputs"),
    ("loadimage", "Reading the input image"),
    ("emptylatent", "Preparing"),
)
#: What we write for any other node.
WORKING = "Working"
_EXECUTING = re.compile(r"^\s*Executing\s+(?P<node>[A-Za-z0-9_.\-]+)(?:\s+(?P<done>\d+)\s*/\s*(?P<total>\d+))?\s*$")
_OURS = re.compile(r"^(?:" + "|".join(sorted({re.escape(w) for _, w in _WORDS} | {WORKING})) + r")(?: \d+/\d+)?$")


def node_words(class_type: str) -> str:
    """What a node of this class does, e.g. ``KSamplerAdvanced`` → ``Sampling``."""
    key = class_type.lower().replace("_", "").replace(" ", "")
    return next((words for part, words in _WORDS if part in key), WORKING)


def progress_text(class_type: str | None, steps: tuple[float, float] | None = None) -> str | None:
    """The node running now, with its steps when it reports them (``Sampling 12/30``)."""
    if not class_type:
        return None
    words = node_words(class_type)
    if steps is not None and steps[1] > 0:
        return f"{words} {int(steps[0])}/{int(steps[1])}"
    return words


def humane(live_status: str) -> str:
    """A backend's live status with node class names put into words; any other text is kept as it is."""
    found = _EXECUTING.match(live_status)
    if found is None:
        return live_status
    done, total = found.group("done"), found.group("total")
    return progress_text(found.group("node"), (float(done), float(total)) if done and total else None) or WORKING


def is_progress_text(text: str | None) -> bool:
    """True for the words ``humane`` writes (which say what ran, never why a run failed)."""
    return bool(text) and _OURS.match(text or "") is not None
