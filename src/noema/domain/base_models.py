"""Which base-model family a workflow runs on, read from its checkpoint and UNet loaders (pure).

The family decides which LoRAs a tool's prompts may call. It comes from the model file names in
the API graph (``ckpt_name``, ``unet_name``), so it is a heuristic: a name that says nothing
about its family (``dreamshaper_8``) gives None, and a tool without a family applies no LoRAs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from noema.domain.loras_model import Family

#: Inputs of loader nodes that name the model a workflow samples with.
LOADER_KEYS = ("ckpt_name", "unet_name")

#: Checked in this order: a Pony model's name often says "XL" too, and an SD3 name may say "1.5".
_FAMILY_PATTERNS: tuple[tuple[Family, re.Pattern[str]], ...] = (
    (Family.PONY, re.compile(r"pony")),
    (Family.FLUX, re.compile(r"flux")),
    (Family.SD3, re.compile(r"sd[\s_.\-]?3")),
    (Family.SDXL, re.compile(r"sdxl|sd[\s_.\-]xl|(?<![a-z])xl|xl(?![a-z])")),
    (Family.SD15, re.compile(r"sd[\s_.\-]?1[\s_.\-]?5|v1[\s_.\-]5")),
)


def family_of_model_name(name: str) -> Family | None:
    """The family a checkpoint or UNet file name says (``sd_xl_base_1.0`` → SDXL), or None."""
    lowered = name.lower()[:300]
    return next((family for family, pattern in _FAMILY_PATTERNS if pattern.search(lowered)), None)


def base_model_of(workflow_api: Any) -> Family | None:
    """The family of the models a workflow's loaders name; None when none is known or they disagree."""
    if not isinstance(workflow_api, Mapping):
        return None
    families: set[Family] = set()
    for node in workflow_api.values():
        inputs = node.get("inputs") if isinstance(node, Mapping) else None
        if not isinstance(inputs, Mapping):
            continue
        for key in LOADER_KEYS:
            name = _model_name(inputs.get(key), workflow_api)
            family = family_of_model_name(name) if name else None
            if family is not None:
                families.add(family)
    # A workflow mixing families (a Flux pass and an SDXL refiner) gives no single place for a LoRA.
    return families.pop() if len(families) == 1 else None


def _model_name(value: Any, workflow_api: Mapping[Any, Any]) -> str | None:
    """A loader input's file name, following a link to an external checkpoint input's default."""
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str | int):
        source = workflow_api.get(value[0], workflow_api.get(str(value[0])))
        inputs = source.get("inputs") if isinstance(source, Mapping) else None
        value = inputs.get("default_value") if isinstance(inputs, Mapping) else None
    return value if isinstance(value, str) and value.strip() else None
