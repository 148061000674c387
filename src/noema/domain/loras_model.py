"""The LoRA registry: what a LoRA is, which checkpoints it fits and who may use it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from noema.domain.errors import InvalidInput


class Family(str, Enum):
    """The base-model family a checkpoint or a LoRA belongs to."""

    SD15 = "SD1.5"
    SDXL = "SDXL"
    PONY = "PONY"
    FLUX = "FLUX"
    SD3 = "SD3"
    SD15_XL = "SD1.5-XL"  #: a LoRA published for both SD1.5 and SDXL checkpoints


class Visibility(str, Enum):
    """Who may use a LoRA."""

    PUBLIC = "public"  #: everyone, anonymous callers included
    PRIVATE = "private"  #: its owner only
    ALLOWED = "allowed"  #: its owner and the accounts listed in ``allowed_accounts``


#: Checkpoint family -> LoRA families that load on it. PONY is an SDXL fine-tune, so SDXL LoRAs
#: work on it; the reverse is not offered because Pony LoRAs mostly give poor results on plain SDXL.
ACCEPTS: dict[Family, frozenset[Family]] = {
    Family.SD15: frozenset({Family.SD15, Family.SD15_XL}),
    Family.SDXL: frozenset({Family.SDXL, Family.SD15_XL}),
    Family.PONY: frozenset({Family.PONY, Family.SDXL, Family.SD15_XL}),
    Family.FLUX: frozenset({Family.FLUX}),
    Family.SD3: frozenset({Family.SD3}),
    Family.SD15_XL: frozenset({Family.SD15_XL}),
}

_ALIASES: dict[str, Family] = {
    "SD15": Family.SD15,
    "SDXL": Family.SDXL,
    "SDXL10": Family.SDXL,
    "PONY": Family.PONY,
    "PONYXL": Family.PONY,
    "FLUX": Family.FLUX,
    "FLUX1": Family.FLUX,
    "SD3": Family.SD3,
    "SD35": Family.SD3,
    "SD15XL": Family.SD15_XL,
}


def family_or_none(raw: Family | str | None) -> Family | None:
    """The family ``raw`` names (``"sdxl"``, ``"SD 1.5"``, ``"Flux.1"`` …), or None when unknown."""
    if raw is None or isinstance(raw, Family):
        return raw
    return _ALIASES.get(re.sub(r"[^A-Z0-9]", "", raw.upper()))


def parse_family(raw: str) -> Family:
    """The family ``raw`` names, or InvalidInput listing the known ones."""
    family = family_or_none(raw)
    if family is None:
        known = ", ".join(f.value for f in Family)
        raise InvalidInput(f"Unknown base-model family {raw[:40]!r}; use one of: {known}.")
    return family


@dataclass(frozen=True)
class Cognate:
    """A word that calls a LoRA and is replaced by ``replace_with`` in the prompt."""

    word: str
    replace_with: str


@dataclass(frozen=True)
class Lora:
    """One entry of the LoRA library."""

    slug: str  #: the name used in ``<lora:slug:weight>`` tags; unique, case-insensitively
    display_name: str
    triggers: tuple[str, ...]
    cognates: tuple[Cognate, ...]
    default_weight: float
    family: Family
    owner_id: str | None
    visibility: Visibility
    allowed_accounts: frozenset[str] = frozenset()
    enabled: bool = True
    usage_count: int = 0

    def visible_to(self, account_id: str | None) -> bool:
        """Whether ``account_id`` may know this LoRA exists (None: an anonymous caller)."""
        if self.visibility is Visibility.PUBLIC:
            return True
        if account_id is None:
            return False
        if account_id == self.owner_id:
            return True
        return self.visibility is Visibility.ALLOWED and account_id in self.allowed_accounts

    def usable_by(self, account_id: str | None) -> bool:
        """Whether ``account_id`` may apply this LoRA now."""
        return self.enabled and self.visible_to(account_id)

    def fits(self, base_model: Family | str | None) -> bool:
        """Whether this LoRA loads on a checkpoint of ``base_model`` (unknown or None: never)."""
        family = family_or_none(base_model)
        return family is not None and self.family in ACCEPTS[family]


@dataclass(frozen=True)
class WeightBounds:
    """The weights a LoRA may be applied with; negative weights serve "slider" LoRAs."""

    minimum: float = -1.0
    maximum: float = 2.0

    def __post_init__(self) -> None:
        if not (self.maximum - self.minimum >= 0.01 and self.maximum > 0):
            raise InvalidInput("LoRA weight bounds need minimum + 0.01 <= maximum and maximum > 0.")

    def clamp(self, weight: float) -> float:
        """``weight`` moved into the bounds."""
        return min(max(weight, self.minimum), self.maximum)

    def fit(self, weight: float) -> float:
        """``weight`` moved into the bounds at tag precision, never rounded back out of them."""
        fitted = round_weight(self.clamp(weight))
        if fitted > self.maximum:
            fitted = round_weight(fitted - 0.001)
        elif fitted < self.minimum:
            fitted = round_weight(fitted + 0.001)
        return fitted


def round_weight(weight: float) -> float:
    """A weight at the precision tags carry (three decimals)."""
    rounded = round(weight, 3)
    return 0.0 if rounded == 0 else rounded


def format_weight(weight: float) -> str:
    """A weight written compactly: ``0.7``, ``1``, ``-0.25``."""
    text = f"{round_weight(weight):.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text
