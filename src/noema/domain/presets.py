"""Presets: a command with good defaults over one or more deployments, with optional image features.

An operator writes them in a TOML file (``NOEMA_PRESETS_FILE``)::

    [presets.make]
    description = "A picture from a prompt, with good defaults"
    tools = ["txt2img", "txt2img_backup"]      # tried in the selection's order; the next on failure
    selection = "least_busy"                   # first | round_robin | least_busy
    user_inputs = ["input_text", "negative_prompt", "input_seed"]   # what a user may set (default: all)
    defaults = { width = 1024, height = 1024, steps = 30, input_seed = -1 }

    [presets.make.features]
    style = "input_image"                      # feature -> the image input the variant takes
    pose = "pose_image"

    [presets.make.variants]                    # the tools to run for a set of features, joined by +
    style = ["txt2img_style"]
    "pose+style" = ["txt2img_style_pose"]

A request names the features it wants; the variant for exactly that set runs (a missing one is
refused by name), and each feature's image is required.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from noema.domain.errors import InvalidInput

_COMMAND = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_KNOWN_KEYS = {"description", "tools", "selection", "user_inputs", "defaults", "features", "variants"}


class Selection(str, Enum):
    FIRST = "first"  #: always the first candidate (the others are fallbacks)
    ROUND_ROBIN = "round_robin"  #: take turns
    LEAST_BUSY = "least_busy"  #: fewest runs in flight first


@dataclass(frozen=True)
class Preset:
    """A command over candidate tools, with defaults, allowed inputs and image features."""

    command: str
    tools: tuple[str, ...]
    selection: Selection = Selection.FIRST
    description: str = ""
    user_inputs: frozenset[str] | None = None  #: None: every input
    defaults: Mapping[str, Any] = field(default_factory=dict)
    features: Mapping[str, str] = field(default_factory=dict)  #: feature -> image input name
    variants: Mapping[frozenset[str], tuple[str, ...]] = field(default_factory=dict)

    def route(self, wanted: Iterable[str]) -> tuple[str, ...]:
        """The candidate tools for these features (none: the preset's own tools)."""
        chosen = frozenset(f.strip().lower() for f in wanted if f.strip())
        unknown = sorted(chosen - set(self.features))
        if unknown:
            has = ", ".join(sorted(self.features)) or "none"
            raise InvalidInput(f"The preset /{self.command} has no feature {unknown[0]!r}; it has: {has}.")
        if not chosen:
            return self.tools
        variant = self.variants.get(chosen)
        if not variant:
            raise InvalidInput(f"The preset /{self.command} has no variant for {'+'.join(sorted(chosen))}.")
        return variant

    def inputs(
        self, given: Mapping[str, Any], features: Iterable[str], *, takes: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """The preset's defaults (those the chosen tool ``takes``) under what the user gave.

        Inputs the preset does not open to users are refused by name.
        """
        images = {self.features[f] for f in features if f in self.features}
        if self.user_inputs is not None:
            closed = sorted(k for k in given if k not in self.user_inputs and k not in images)
            if closed:
                allowed = ", ".join(sorted(self.user_inputs))
                raise InvalidInput(f"/{self.command} does not let you set {closed[0]!r}; you can set: {allowed}.")
        missing = sorted(self.features[f] for f in features if self.features.get(f) not in given)
        if missing:
            raise InvalidInput(f"The feature you asked for needs an image in {missing[0]!r}.")
        known = set(takes) if takes is not None else None
        defaults = {k: v for k, v in self.defaults.items() if known is None or k in known}
        return {**defaults, **given}


def order(candidates: tuple[str, ...], selection: Selection, *, turn: int, busy: Mapping[str, int]) -> list[str]:
    """The order to try candidates in (every candidate stays a fallback)."""
    if selection is Selection.ROUND_ROBIN and candidates:
        start = turn % len(candidates)
        return list(candidates[start:] + candidates[:start])
    if selection is Selection.LEAST_BUSY:
        return sorted(candidates, key=lambda c: busy.get(c, 0))  # stable: ties keep the written order
    return list(candidates)


def parse_presets(text: str) -> dict[str, Preset]:
    """The presets of a TOML file; ValueError naming the preset and the problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"not valid TOML ({exc})") from None
    table = data.get("presets", {})
    if not isinstance(table, dict) or set(data) - {"presets"}:
        raise ValueError("the file must hold only [presets.<command>] tables")
    return {name: _preset(name, body) for name, body in table.items()}


def preset_from_json(name: str, body: Any) -> Preset:
    """One preset from the internal API's JSON (the same settings as a TOML table); ValueError if wrong."""
    return _preset(name, body)


def _preset(name: str, body: Any) -> Preset:
    where = f"preset {name!r}"
    if not _COMMAND.match(name) or not isinstance(body, dict):
        raise ValueError(f"{where}: a command name is [a-z][a-z0-9_]{{0,31}} with a table of settings")
    unknown = sorted(set(body) - _KNOWN_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown setting {unknown[0]!r}")
    features = _strings_map(body.get("features", {}), f"{where}: features")
    variants = {
        frozenset(part.strip().lower() for part in key.split("+")): _tools(value, f"{where}: variant {key!r}")
        for key, value in _table(body.get("variants", {}), f"{where}: variants").items()
    }
    for key in variants:
        if not key <= set(features):
            raise ValueError(f"{where}: variant {'+'.join(sorted(key))!r} names a feature not in [features]")
    user_inputs = body.get("user_inputs")
    if user_inputs is not None and not (isinstance(user_inputs, list) and all(isinstance(u, str) for u in user_inputs)):
        raise ValueError(f"{where}: user_inputs must be a list of input names")
    try:
        selection = Selection(body.get("selection", "first"))
    except ValueError:
        raise ValueError(f"{where}: selection must be first, round_robin or least_busy") from None
    return Preset(
        command=name,
        tools=_tools(body.get("tools"), f"{where}: tools"),
        selection=selection,
        description=str(body.get("description", ""))[:256],
        user_inputs=frozenset(user_inputs) if user_inputs is not None else None,
        defaults=dict(_table(body.get("defaults", {}), f"{where}: defaults")),
        features=features,
        variants=variants,
    )


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a table")
    return value


def _strings_map(value: Any, where: str) -> dict[str, str]:
    table = _table(value, where)
    if not all(isinstance(v, str) and v for v in table.values()):
        raise ValueError(f"{where}: each feature names the image input it takes")
    return {k.lower(): v for k, v in table.items()}


def _tools(value: Any, where: str) -> tuple[str, ...]:
    if not (isinstance(value, list) and value and all(isinstance(t, str) and t for t in value)):
        raise ValueError(f"{where} must be a non-empty list of tool ids or commands")
    return tuple(value)
