"""Validation of message payloads and interaction callback data, with Discord's limits and error codes.

Limits: content 2000 characters; 10 embeds (title 256, description 4096, 25 fields of name 256 and
value 1024, footer 2048, author 256, 6000 characters in all); 5 action rows of 1 to 5 buttons, or of
one select menu; custom ids of 100 characters, unique in a message. With ``IS_COMPONENTS_V2`` a
message holds only components (40 at most, nested ones counted).
"""

from __future__ import annotations

from typing import Any

from tests.fakes.discord_api_wire import FieldErrors

IS_COMPONENTS_V2 = 1 << 15
SELECT_TYPES = frozenset({3, 5, 6, 7, 8})
Path = tuple[str | int, ...]


def validate_message(payload: dict[str, Any], errs: FieldErrors, prefix: Path = ()) -> None:
    """Record every limit the message payload breaks (fields absent from it are not checked)."""
    errs.length((*prefix, "content"), payload.get("content"), 0, 2000)
    _validate_embeds(payload.get("embeds"), errs, (*prefix, "embeds"))
    flags = payload.get("flags") or 0
    if not isinstance(flags, int):
        errs.add((*prefix, "flags"), "NUMBER_TYPE_COERCE", f'Value "{flags}" is not int.')
        flags = 0
    v2 = bool(flags & IS_COMPONENTS_V2)
    seen: set[str] = set()
    if v2:
        for name in ("content", "embeds", "poll"):
            if payload.get(name):
                errs.add(
                    (*prefix, name),
                    "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
                    f"The '{name}' field cannot be used when using MessageFlags.IS_COMPONENTS_V2",
                )
        items = errs.max_items((*prefix, "components"), payload.get("components"), 40)
        if _count_v2(items, errs, (*prefix, "components"), seen) > 40:
            errs.add((*prefix, "components"), "BASE_TYPE_MAX_LENGTH", "Must be 40 or fewer in length.")
        return
    rows = errs.max_items((*prefix, "components"), payload.get("components"), 5)
    for i, row in enumerate(rows):
        _validate_row(row, errs, (*prefix, "components", i), seen)


def _text(value: Any) -> int:
    return len(value) if isinstance(value, str) else 0


def _validate_embeds(embeds: Any, errs: FieldErrors, path: Path) -> None:
    items = errs.max_items(path, embeds, 10)
    total = 0
    for i, embed in enumerate(items):
        if not isinstance(embed, dict):
            errs.add((*path, i), "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
            continue
        total += _validate_embed(embed, errs, (*path, i))
    if total > 6000:
        errs.add(path, "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")


def _validate_embed(embed: dict[str, Any], errs: FieldErrors, path: Path) -> int:
    """Check one embed; returns the characters it counts towards the 6000 total."""
    errs.length((*path, "title"), embed.get("title"), 0, 256)
    errs.length((*path, "description"), embed.get("description"), 0, 4096)
    footer: dict[str, Any] = embed["footer"] if isinstance(embed.get("footer"), dict) else {}
    author: dict[str, Any] = embed["author"] if isinstance(embed.get("author"), dict) else {}
    if "footer" in embed:
        errs.length((*path, "footer", "text"), footer.get("text"), 1, 2048, required=True)
    if "author" in embed:
        errs.length((*path, "author", "name"), author.get("name"), 1, 256, required=True)
    total = _text(embed.get("title")) + _text(embed.get("description"))
    total += _text(footer.get("text")) + _text(author.get("name"))
    for j, item in enumerate(errs.max_items((*path, "fields"), embed.get("fields"), 25)):
        item = item if isinstance(item, dict) else {}
        errs.length((*path, "fields", j, "name"), item.get("name"), 1, 256, required=True)
        errs.length((*path, "fields", j, "value"), item.get("value"), 1, 1024, required=True)
        total += _text(item.get("name")) + _text(item.get("value"))
    return total


def _validate_row(row: Any, errs: FieldErrors, path: Path, seen: set[str]) -> None:
    if not isinstance(row, dict) or row.get("type") != 1:
        errs.add(path, "UNION_TYPE_CHOICES", 'Value of field "type" must be one of (1,).')
        return
    children = row.get("components")
    if not isinstance(children, list) or not 1 <= len(children) <= 5:
        errs.add((*path, "components"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")
        return
    selects = [c for c in children if isinstance(c, dict) and c.get("type") in SELECT_TYPES]
    if selects and len(children) > 1:
        errs.add(
            (*path, "components"),
            "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
            "The specified component exceeds the maximum width",
        )
    for j, child in enumerate(children):
        _validate_item(child, errs, (*path, "components", j), seen)


def _validate_item(item: Any, errs: FieldErrors, path: Path, seen: set[str]) -> None:
    if not isinstance(item, dict) or (item.get("type") != 2 and item.get("type") not in SELECT_TYPES):
        errs.add((*path, "type"), "UNION_TYPE_CHOICES", 'Value of field "type" must be one of (2, 3, 5, 6, 7, 8).')
        return
    if item["type"] == 2:
        _validate_button(item, errs, path, seen)
        return
    _custom_id(item, errs, path, seen, required=True)
    errs.length((*path, "placeholder"), item.get("placeholder"), 0, 150)
    if item["type"] == 3:
        options = item.get("options")
        if not isinstance(options, list) or not 1 <= len(options) <= 25:
            errs.add((*path, "options"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 25 in length.")
            return
        for k, option in enumerate(options):
            option = option if isinstance(option, dict) else {}
            errs.length((*path, "options", k, "label"), option.get("label"), 1, 100, required=True)
            errs.length((*path, "options", k, "value"), option.get("value"), 1, 100, required=True)


def _validate_button(item: dict[str, Any], errs: FieldErrors, path: Path, seen: set[str]) -> None:
    style = item.get("style")
    if style not in (1, 2, 3, 4, 5, 6):
        errs.add((*path, "style"), "BASE_TYPE_CHOICES", "Value must be one of {1, 2, 3, 4, 5, 6}.")
        return
    errs.length((*path, "label"), item.get("label"), 0, 80)
    if style == 5:
        errs.length((*path, "url"), item.get("url"), 1, 512, required=True)
    elif style == 6:
        if not item.get("sku_id"):
            errs.add((*path, "sku_id"), "BASE_TYPE_REQUIRED", "This field is required")
    else:
        _custom_id(item, errs, path, seen, required=True)


def _custom_id(item: dict[str, Any], errs: FieldErrors, path: Path, seen: set[str], *, required: bool) -> None:
    custom_id = item.get("custom_id")
    errs.length((*path, "custom_id"), custom_id, 1, 100, required=required)
    if isinstance(custom_id, str):
        if custom_id in seen:
            errs.add((*path, "custom_id"), "COMPONENT_CUSTOM_ID_DUPLICATED", "Component custom id cannot be duplicated")
        seen.add(custom_id)


def _count_v2(items: list[Any], errs: FieldErrors, path: Path, seen: set[str]) -> int:
    """Components in a v2 tree (nested ones included), checking custom ids on the way."""
    count = 0
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        count += 1
        if "custom_id" in item:
            _custom_id(item, errs, (*path, i), seen, required=False)
        for key in ("components", "items"):
            if isinstance(item.get(key), list):
                count += _count_v2(item[key], errs, (*path, i, key), seen)
        if isinstance(item.get("accessory"), dict):
            count += _count_v2([item["accessory"]], errs, (*path, i, "accessory"), seen)
    return count


def validate_choices(data: Any, errs: FieldErrors) -> list[dict[str, Any]]:
    """An APPLICATION_COMMAND_AUTOCOMPLETE_RESULT's choices: at most 25, names 1-100, string values ≤ 100."""
    data = data if isinstance(data, dict) else {}
    if "choices" not in data:
        errs.add(("data", "choices"), "BASE_TYPE_REQUIRED", "This field is required")
        return []
    choices = errs.max_items(("data", "choices"), data["choices"], 25)
    for i, choice in enumerate(choices):
        choice = choice if isinstance(choice, dict) else {}
        errs.length(("data", "choices", i, "name"), choice.get("name"), 1, 100, required=True)
        if "value" not in choice:
            errs.add(("data", "choices", i, "value"), "BASE_TYPE_REQUIRED", "This field is required")
        elif isinstance(choice["value"], str):
            errs.length(("data", "choices", i, "value"), choice["value"], 0, 100)
    return choices


def validate_modal(data: Any, errs: FieldErrors) -> None:
    """A MODAL callback: custom_id 1-100, title 1-45, 1 to 5 components."""
    data = data if isinstance(data, dict) else {}
    errs.length(("data", "custom_id"), data.get("custom_id"), 1, 100, required=True)
    errs.length(("data", "title"), data.get("title"), 1, 45, required=True)
    components = data.get("components")
    if not isinstance(components, list) or not 1 <= len(components) <= 5:
        errs.add(("data", "components"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")
