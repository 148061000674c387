"""The JSON import format of the LoRA library (``noema loras import FILE.json``).

The file is a list of objects, or ``{"loras": [...]}``. Keys may be camelCase or snake_case;
keys Noema does not know (``_id``, ``createdAt`` … of an export from elsewhere) are ignored.
``slug`` and ``family`` are required; everything else has a default.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from noema.domain.errors import InvalidInput
from noema.domain.loras_model import Cognate, Family, Lora, Visibility, family_or_none

MAX_ENTRIES = 10_000
MAX_PHRASES = 50  #: triggers, and cognates, per LoRA
_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")

_KEYS: dict[str, tuple[str, ...]] = {
    "slug": ("slug",),
    "display_name": ("display_name", "displayName", "name"),
    "triggers": ("triggers", "trigger_words", "triggerWords"),
    "cognates": ("cognates",),
    "default_weight": ("default_weight", "defaultWeight", "weight"),
    "family": ("family", "base_model", "baseModel", "checkpoint"),
    "owner_id": ("owner_id", "ownerId", "owner"),
    "visibility": ("visibility",),
    "allowed_accounts": ("allowed_accounts", "allowedAccounts"),
    "enabled": ("enabled",),
    "usage_count": ("usage_count", "usageCount"),
}


class _Bad(Exception):
    """A field's problem, turned into InvalidInput naming the entry by ``parse_lora_file``."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field, self.problem = field, problem


def parse_lora_file(data: object) -> list[Lora]:
    """The LoRAs of an import file, or InvalidInput naming the entry and the field at fault."""
    entries = data.get("loras") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise InvalidInput('A LoRA file is a list of LoRA objects, or {"loras": [...]}.')
    if len(entries) > MAX_ENTRIES:
        raise InvalidInput(f"A LoRA file may hold at most {MAX_ENTRIES} entries.")
    loras: list[Lora] = []
    seen: set[str] = set()
    for index, raw in enumerate(entries):
        label = f"LoRA entry {index + 1}"
        if isinstance(raw, dict) and isinstance(raw.get("slug"), str):
            label += f" ({raw['slug'][:40]!r})"
        try:
            lora = _entry(raw)
        except _Bad as bad:
            message = f"{label} {bad.problem}." if bad.field == "entry" else f"{label}: {bad.field} {bad.problem}."
            raise InvalidInput(message, details={"entry": index, "field": bad.field}) from None
        if lora.slug.lower() in seen:
            raise InvalidInput(f"{label}: slug is used by an earlier entry.", details={"entry": index, "field": "slug"})
        seen.add(lora.slug.lower())
        loras.append(lora)
    return loras


def _entry(raw: object) -> Lora:
    if not isinstance(raw, dict):
        raise _Bad("entry", "must be an object")
    get = _getter(raw)
    slug = get("slug")
    if slug is None:
        raise _Bad("slug", "is required")
    if not isinstance(slug, str) or not _SLUG.fullmatch(slug):
        raise _Bad("slug", "must be 1-100 letters, digits, '_', '.' or '-', starting with a letter or digit")
    owner, visibility = _owner(get("owner_id")), _visibility(get("visibility"))
    if visibility is not Visibility.PUBLIC and owner is None:
        raise _Bad("ownerId", f"is required for a {visibility.value} LoRA")
    return Lora(
        slug=slug,
        display_name=_text(get("display_name"), "displayName", default=slug, limit=200),
        triggers=tuple(_phrase(t, "triggers") for t in _phrases(get("triggers"))),
        cognates=_cognates(get("cognates")),
        default_weight=_default_weight(get("default_weight")),
        family=_family(get("family")),
        owner_id=owner,
        visibility=visibility,
        allowed_accounts=frozenset(_strings(get("allowed_accounts"), "allowedAccounts")),
        enabled=_flag(get("enabled")),
        usage_count=_count(get("usage_count")),
    )


def _getter(raw: dict[Any, Any]) -> Callable[[str], Any]:
    def get(name: str) -> Any:
        return next((raw[key] for key in _KEYS[name] if raw.get(key) is not None), None)

    return get


def _text(value: object, field: str, *, default: str, limit: int) -> str:
    if value is None:
        return default
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise _Bad(field, f"must be a non-empty text of at most {limit} characters")
    return value.strip()


def _phrases(value: object) -> list[object]:
    if value is None:
        return []
    if isinstance(value, str):  # "a, b" as written in some exports
        value = [p for p in value.split(",") if p.strip()]
    if not isinstance(value, list) or len(value) > MAX_PHRASES:
        raise _Bad("triggers", f"must be a list of at most {MAX_PHRASES} words or phrases")
    return value


def _phrase(value: object, field: str) -> str:
    if not isinstance(value, str) or len(value) > 100:
        raise _Bad(field, f"must be words or phrases of at most 100 characters, not {value!r:.40}")
    phrase = " ".join(value.split())
    if not re.search(r"\w", phrase) or re.search(r"[<>]", phrase):
        raise _Bad(field, f"holds {value[:40]!r}, which needs a letter or digit and no '<' or '>'")
    return phrase


def _cognates(value: object) -> tuple[Cognate, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_PHRASES:
        raise _Bad("cognates", f"must be a list of at most {MAX_PHRASES} objects")
    cognates = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise _Bad(f"cognates[{index}]", 'must be an object like {"word": "kitty", "replaceWith": "cat"}')
        replacement = item.get("replaceWith", item.get("replace_with"))
        field = f"cognates[{index}].replaceWith"
        replace_with = _text(replacement, field, default="", limit=200)
        if not replace_with or re.search(r"[<>]", replace_with):
            raise _Bad(field, "must be a non-empty text of at most 200 characters, without '<' or '>'")
        cognates.append(Cognate(_phrase(item.get("word"), f"cognates[{index}].word"), replace_with))
    return tuple(cognates)


def _default_weight(value: object) -> float:
    if value is None:
        return 1.0
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Bad("defaultWeight", "must be a number")
    if value == 0 or not -10 <= value <= 10:
        raise _Bad("defaultWeight", "must be between -10 and 10, and not 0")
    return float(value)


def _family(value: object) -> Family:
    family = family_or_none(value) if isinstance(value, str) else None
    if family is None:
        known = ", ".join(f.value for f in Family)
        raise _Bad("family", f"is required, one of: {known}" if value is None else f"must be one of: {known}")
    return family


def _owner(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 128:
        raise _Bad("ownerId", "must be an account id")
    return value.strip()


def _visibility(value: object) -> Visibility:
    if value is None:
        return Visibility.PUBLIC
    try:
        return Visibility(str(value).lower())
    except ValueError:
        raise _Bad("visibility", "must be one of: public, private, allowed") from None


def _strings(value: object, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _Bad(field, "must be a list of account ids")
    return [v.strip() for v in value]


def _flag(value: object) -> bool:
    if value is None:
        return True
    if not isinstance(value, bool):
        raise _Bad("enabled", "must be true or false")
    return value


def _count(value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Bad("usageCount", "must be a whole number, 0 or more")
    return value
