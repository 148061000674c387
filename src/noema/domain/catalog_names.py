"""Command names of tools: normalised, never reserved, unique and independent of listing order."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

MAX_COMMAND_LENGTH = 32
COMMAND_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
#: Commands the chat platforms themselves answer; a tool taking one would shadow them.
RESERVED_COMMANDS = frozenset(
    {"start", "help", "tools", "status", "cancel", "link", "apikey", "account", "run", "set", "settings"}
)
RESERVED_SUFFIX = "_tool"
EMPTY_COMMAND = "tool"

_SEPARATORS = re.compile(r"[\s\-]+")
_NOT_ALLOWED = re.compile(r"[^a-z0-9_]")
_REPEATED_UNDERSCORES = re.compile(r"_{2,}")


def command_name(raw: str) -> str:
    """A valid command from any text: ``[a-z][a-z0-9_]{0,31}``, never a reserved name, "tool" if empty."""
    text = raw if isinstance(raw, str) else ""
    # Decompose accents first so "Crème" becomes "creme", not "crme".
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).lower()
    text = _NOT_ALLOWED.sub("", _SEPARATORS.sub("_", text))
    text = _REPEATED_UNDERSCORES.sub("_", text).strip("_")
    if not text:
        return EMPTY_COMMAND
    if not text[0].isalpha():
        text = "t_" + text
    text = text[:MAX_COMMAND_LENGTH].rstrip("_")
    if text in RESERVED_COMMANDS:
        text += RESERVED_SUFFIX
    return text


def with_suffix(base: str, number: int) -> str:
    """``base_<number>``, the base shortened so the result still fits in 32 characters."""
    suffix = f"_{number}"
    return base[: MAX_COMMAND_LENGTH - len(suffix)].rstrip("_") + suffix


def assign_commands(defaults: Mapping[str, str], explicit: Mapping[str, str] | None = None) -> dict[str, str]:
    """Unique commands by tool id: explicit names claim first, then defaults; losers get ``_2``, ``_3`` ….

    Both maps are keyed by tool id and hold raw names (normalised here). Ties go to the smaller id,
    so the result depends only on the maps' contents, never on their order.
    """
    explicit = explicit or {}
    wanted = {tool_id: command_name(explicit.get(tool_id, defaults.get(tool_id, ""))) for tool_id in defaults}
    wanted.update({tool_id: command_name(name) for tool_id, name in explicit.items() if tool_id not in wanted})
    order = sorted(wanted, key=lambda tool_id: (tool_id not in explicit, tool_id))
    taken: set[str] = set()
    result: dict[str, str] = {}
    # First pass: every exact name goes to its first claimant, so a suffix never steals a later
    # tool's exact name ("a", "a", "a_2" → "a", "a_3", "a_2").
    for tool_id in order:
        if wanted[tool_id] not in taken:
            taken.add(wanted[tool_id])
            result[tool_id] = wanted[tool_id]
    for tool_id in order:
        if tool_id in result:
            continue
        number = 2
        while (candidate := with_suffix(wanted[tool_id], number)) in taken:
            number += 1
        taken.add(candidate)
        result[tool_id] = candidate
    return result
