"""The LoRA library and its triggers: one place to import the registry, the resolver and the file format."""

from __future__ import annotations

from noema.domain.loras_import import parse_lora_file
from noema.domain.loras_model import (
    ACCEPTS,
    Cognate,
    Family,
    Lora,
    Visibility,
    WeightBounds,
    family_or_none,
    format_weight,
    parse_family,
)
from noema.domain.loras_resolver import Applied, AppliedSource, Resolution, resolve

__all__ = [
    "ACCEPTS",
    "Applied",
    "AppliedSource",
    "Cognate",
    "Family",
    "Lora",
    "Resolution",
    "Visibility",
    "WeightBounds",
    "family_or_none",
    "format_weight",
    "parse_family",
    "parse_lora_file",
    "resolve",
]
