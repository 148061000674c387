r"""Application commands of the fake Discord API: bulk overwrite with Discord's validation, and listing.

Validation follows the documented rules: 100 CHAT_INPUT, 5 USER and 5 MESSAGE commands per scope;
names unique per type; CHAT_INPUT and option names 1-32 characters of ``^[-_'\p{L}\p{N}]`` in lower
case; descriptions 1-100; at most 25 options and 25 choices (names 1-100, string values up to 100);
required options before optional ones; sub-commands not mixed with other option types; no choices
with autocomplete; at most 8000 characters of names, descriptions and choice values per command.
Commands keep their id across overwrites while their name and type stay; ``version`` changes when
their definition does.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.fakes.discord_api_wire import FieldErrors, Snowflakes

LIMITS = {1: 100, 2: 5, 3: 5, 4: 1}
VALUE_TYPES = frozenset(range(3, 12))
CHOICE_TYPES = frozenset({3, 4, 10})
COMMAND_SIZE_MAX = 8000
Path = tuple[str | int, ...]


def validate_commands(body: Any) -> None:
    """Raise Discord's 50035 for a bulk-overwrite body that Discord would refuse."""
    errs = FieldErrors()
    if not isinstance(body, list):
        errs.add((), "BASE_TYPE_ARRAY", "Must be an array.")
        errs.raise_if_any()
    counts: dict[int, int] = {}
    seen: set[tuple[int, str]] = set()
    for i, command in enumerate(body):
        if not isinstance(command, dict):
            errs.add((i,), "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
            continue
        ctype = command.get("type", 1)
        counts[ctype] = counts.get(ctype, 0) + 1
        key = (ctype, str(command.get("name")))
        if key in seen:
            errs.add((i,), "APPLICATION_COMMANDS_DUPLICATE_NAME", "Application command names must be unique")
        seen.add(key)
        _validate_command(command, errs, (i,))
    for ctype, count in sorted(counts.items()):
        if ctype in LIMITS and count > LIMITS[ctype]:
            errs.add((), "BASE_TYPE_MAX_LENGTH", f"Must be {LIMITS[ctype]} or fewer in length.")
    errs.raise_if_any()


def _validate_command(command: dict[str, Any], errs: FieldErrors, path: Path) -> None:
    ctype = command.get("type", 1)
    if ctype not in LIMITS:
        errs.add((*path, "type"), "BASE_TYPE_CHOICES", "Value must be one of {1, 2, 3, 4}.")
        return
    if ctype == 1:
        _chat_name(command.get("name"), errs, (*path, "name"))
        errs.length((*path, "description"), command.get("description"), 1, 100, required=True)
        _validate_options(command.get("options"), errs, (*path, "options"), allowed=frozenset(range(1, 12)))
        if _size(command) > COMMAND_SIZE_MAX:
            errs.add(path, "APPLICATION_COMMAND_TOO_LARGE", f"Command exceeds maximum size ({COMMAND_SIZE_MAX})")
    else:
        errs.length((*path, "name"), command.get("name"), 1, 32, required=True)
        if command.get("options"):
            errs.add(
                (*path, "options"), "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID", "Only CHAT_INPUT commands take options"
            )


def _chat_name(name: Any, errs: FieldErrors, path: Path) -> None:
    errs.length(path, name, 1, 32, required=True)
    if isinstance(name, str) and 1 <= len(name) <= 32:
        valid_chars = all(ch in "-_'" or ch.isalnum() for ch in name)
        if not valid_chars or name != name.lower():
            errs.add(path, "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")


def _validate_options(options: Any, errs: FieldErrors, path: Path, *, allowed: frozenset[int]) -> None:
    names: set[str] = set()
    optional_seen = False
    kinds: set[bool] = set()
    for i, option in enumerate(errs.max_items(path, options, 25)):
        kind = _validate_option(option, errs, (*path, i), allowed, names)
        if kind is None:
            continue
        kinds.add(kind)
        if kind:
            continue
        if option.get("required") and optional_seen:
            errs.add(
                (*path, i),
                "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                "Required options must be placed before non-required options",
            )
        optional_seen = optional_seen or not option.get("required")
    if len(kinds) > 1:
        errs.add(
            path,
            "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
            "Sub-command and sub-command group option types are mutually exclusive to all other types",
        )


def _validate_option(
    option: Any, errs: FieldErrors, where: Path, allowed: frozenset[int], names: set[str]
) -> bool | None:
    """Check one option; returns whether it is a sub-command or group (None when it is unusable)."""
    if not isinstance(option, dict):
        errs.add(where, "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
        return None
    otype = option.get("type")
    if otype not in allowed:
        choices = ", ".join(str(t) for t in sorted(allowed))
        errs.add((*where, "type"), "BASE_TYPE_CHOICES", f"Value must be one of {{{choices}}}.")
        return None
    _chat_name(option.get("name"), errs, (*where, "name"))
    errs.length((*where, "description"), option.get("description"), 1, 100, required=True)
    if option.get("name") in names:
        errs.add((*where, "name"), "APPLICATION_COMMAND_OPTION_NAME_ALREADY_EXISTS", "Option names must be unique")
    names.add(str(option.get("name")))
    if otype in (1, 2):
        inner = frozenset({1}) if otype == 2 else VALUE_TYPES
        _validate_options(option.get("options"), errs, (*where, "options"), allowed=inner)
        return True
    _validate_value_option(option, errs, where)
    return False


def _validate_value_option(option: dict[str, Any], errs: FieldErrors, path: Path) -> None:
    otype = option["type"]
    if "choices" in option:
        if otype not in CHOICE_TYPES:
            errs.add((*path, "choices"), "APPLICATION_COMMAND_OPTION_CHOICES_INVALID", "Choices are not allowed")
        if option.get("autocomplete"):
            errs.add((*path, "autocomplete"), "AUTOCOMPLETE_AND_CHOICES", "Autocomplete cannot be set with choices")
        for j, choice in enumerate(errs.max_items((*path, "choices"), option["choices"], 25)):
            choice = choice if isinstance(choice, dict) else {}
            errs.length((*path, "choices", j, "name"), choice.get("name"), 1, 100, required=True)
            value = choice.get("value")
            if otype == 3:
                errs.length((*path, "choices", j, "value"), value, 1, 100, required=True)
            elif not isinstance(value, int | float) or isinstance(value, bool):
                errs.add((*path, "choices", j, "value"), "NUMBER_TYPE_COERCE", f'Value "{value}" is not a number.')
    for key, low in (("min_length", 0), ("max_length", 1)):
        value = option.get(key)
        if value is not None and (otype != 3 or not isinstance(value, int) or not low <= value <= 6000):
            errs.add((*path, key), "NUMBER_TYPE_MAX", f"Must be between {low} and 6000.")


def _size(node: Any) -> int:
    """Characters of names, descriptions and choice values in a command, nested options included."""
    if not isinstance(node, dict):
        return 0
    total = sum(len(node[k]) for k in ("name", "description") if isinstance(node.get(k), str))
    if isinstance(node.get("value"), str):
        total += len(node["value"])
    for key in ("options", "choices"):
        if isinstance(node.get(key), list):
            total += sum(_size(child) for child in node[key])
    return total


class CommandRegistry:
    """Registered commands per scope (None for global, else a guild id)."""

    def __init__(self, application_id: str, ids: Snowflakes) -> None:
        self.application_id = application_id
        self._ids = ids
        self._lists: dict[str | None, list[dict[str, Any]]] = {}
        self.by_name: dict[tuple[str | None, str], dict[str, Any]] = {}

    def overwrite(self, guild_id: str | None, body: Any) -> list[dict[str, Any]]:
        """Bulk overwrite: validate, keep ids of commands that stay, return the new list."""
        validate_commands(body)
        old = {(c["type"], c["name"]): c for c in self._lists.get(guild_id, [])}
        new = [self._stored(guild_id, c, old.get((c.get("type", 1), c["name"]))) for c in body]
        self._lists[guild_id] = new
        for key in [k for k in self.by_name if k[0] == guild_id]:
            del self.by_name[key]
        for command in sorted(new, key=lambda c: c["type"] == 1):  # CHAT_INPUT wins a shared name
            self.by_name[(guild_id, command["name"])] = command
        return copy.deepcopy(new)

    def clear(self) -> None:
        """Forget every registered command."""
        self._lists.clear()
        self.by_name.clear()

    def listing(self, guild_id: str | None) -> list[dict[str, Any]]:
        return copy.deepcopy(self._lists.get(guild_id, []))

    def find(self, name: str, guild_id: str | None) -> dict[str, Any] | None:
        """The CHAT_INPUT command a user would invoke by ``name`` in ``guild_id`` (guild scope first)."""
        for scope in (guild_id, None) if guild_id else (None,):
            found = self.by_name.get((scope, name))
            if found is not None and found["type"] == 1:
                return found
        return None

    def _stored(self, guild_id: str | None, command: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
        stored: dict[str, Any] = {
            "id": previous["id"] if previous else self._ids.next(),
            "application_id": self.application_id,
            "version": "",
            "default_member_permissions": command.get("default_member_permissions"),
            "type": command.get("type", 1),
            "name": command["name"],
            "name_localizations": command.get("name_localizations"),
            "description": command.get("description", "") if command.get("type", 1) == 1 else "",
            "description_localizations": command.get("description_localizations"),
            "nsfw": bool(command.get("nsfw", False)),
        }
        if guild_id is not None:
            stored["guild_id"] = guild_id
        else:
            stored["dm_permission"] = command.get("dm_permission", True)
            stored["contexts"] = command.get("contexts")
            stored["integration_types"] = command.get("integration_types", [0])
        if command.get("options"):
            stored["options"] = _clean(command["options"])
        same = previous is not None and {**previous, "version": ""} == stored
        stored["version"] = previous["version"] if same and previous else self._ids.next()
        return stored


def _clean(value: Any) -> Any:
    """A deep copy without null members (Discord omits unset option fields)."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value
