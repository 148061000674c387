"""Text as Telegram treats it: HTML parse mode, UTF-16 offsets, command entities, inline keyboards.

Only ``parse_mode=HTML`` is parsed (strictly, with Telegram's error texts, so an unescaped ``<``
in a user's prompt fails here as it fails on Telegram). Markdown modes are stored as sent.
"""

from __future__ import annotations

import html
import re
from typing import Any

from tests.fakes.telegram_api_core import bad_request

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64

_TAG_RE = re.compile(
    r"<(/?)([A-Za-z][A-Za-z0-9-]*)((?:\s+[A-Za-z-]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'>]+))?)*)\s*>"
)
_ATTR_RE = re.compile(r"([A-Za-z-]+)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s\"'>]+)))?")
_CHAR_REF_RE = re.compile(r"&(#\d+|#[xX][0-9A-Fa-f]+|lt|gt|amp|quot);")
_BAD_TAG_RE = re.compile(r"</?([^\s>]*)")
_COMMAND_RE = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{1,32})?(?![A-Za-z0-9_@/])")
_SIMPLE_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
}
_ALL_TAGS = {*_SIMPLE_TAGS, "span", "a", "blockquote", "tg-emoji"}


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram's entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def _entity_error(detail: str) -> Exception:
    return bad_request(f"can't parse entities: {detail}")


def _attrs(raw: str) -> dict[str, str]:
    return {m.group(1).lower(): m.group(2) or m.group(3) or m.group(4) or "" for m in _ATTR_RE.finditer(raw)}


def _open_entity(name: str, attrs: dict[str, str], offset: int, stack: list[tuple[str, dict[str, Any]]]) -> None:
    entity: dict[str, Any] = {"offset": offset}
    if name in _SIMPLE_TAGS:
        entity["type"] = _SIMPLE_TAGS[name]
        language = attrs.get("class", "")
        if name == "code" and stack and stack[-1][0] == "pre" and language.startswith("language-"):
            stack[-1][1]["language"] = language.removeprefix("language-")
            entity["type"] = None  # the language belongs to the enclosing pre
    elif name == "span":
        if attrs.get("class") != "tg-spoiler":
            raise _entity_error('Tag "span" must have class "tg-spoiler"')
        entity["type"] = "spoiler"
    elif name == "a":
        entity.update(type="text_link", url=attrs.get("href", ""))
    elif name == "blockquote":
        entity["type"] = "expandable_blockquote" if "expandable" in attrs else "blockquote"
    else:
        entity.update(type="custom_emoji", custom_emoji_id=attrs.get("emoji-id", ""))
    stack.append((name, entity))


def _close_entity(
    name: str,
    byte_offset: int,
    position: int,
    stack: list[tuple[str, dict[str, Any]]],
    entities: list[dict[str, Any]],
) -> None:
    if not stack:
        raise _entity_error(f"Unexpected end tag at byte offset {byte_offset}")
    if stack[-1][0] != name:
        expected = stack[-1][0]
        raise _entity_error(
            f'Unmatched end tag at byte offset {byte_offset}, expected "</{expected}>", found "</{name}>"'
        )
    entity = stack.pop()[1]
    entity["length"] = position - entity["offset"]
    if entity["type"] is not None and entity["length"] > 0:
        entities.append(entity)


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Plain text and entities of a ``parse_mode=HTML`` text; Telegram's error texts on bad markup."""
    out: list[str] = []
    position = 0
    stack: list[tuple[str, dict[str, Any]]] = []
    entities: list[dict[str, Any]] = []
    index = 0
    while index < len(source):
        char = source[index]
        if char == "<":
            byte_offset = len(source[:index].encode())
            match = _TAG_RE.match(source, index)
            bad = _BAD_TAG_RE.match(source, index)
            name = match.group(2).lower() if match else (bad.group(1) if bad else "")
            if match is None or name not in _ALL_TAGS:
                raise _entity_error(f'Unsupported start tag "{name}" at byte offset {byte_offset}')
            if match.group(1):
                _close_entity(name, byte_offset, position, stack, entities)
            else:
                _open_entity(name, _attrs(match.group(3)), position, stack)
            index = match.end()
            continue
        if char == "&" and (ref := _CHAR_REF_RE.match(source, index)):
            char = html.unescape(ref.group(0))
            index = ref.end()
        else:
            index += 1
        out.append(char)
        position += utf16_len(char)
    if stack:
        raise _entity_error(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), [{"type": e.pop("type"), **e} for e in entities]


def _strip(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Telegram trims surrounding whitespace; entity offsets follow."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    shift = utf16_len(text[: len(text) - len(text.lstrip())])
    end = utf16_len(stripped)
    kept = []
    for entity in entities:
        start = max(entity["offset"] - shift, 0)
        stop = min(entity["offset"] + entity["length"] - shift, end)
        if stop > start:
            kept.append({**entity, "offset": start, "length": stop - start})
    return stripped, kept


def format_text(
    raw: Any,
    parse_mode: Any,
    entities: Any,
    *,
    limit: int,
    too_long: str,
    empty: str | None,
) -> tuple[str, list[dict[str, Any]]]:
    """Text and entities as Telegram stores them; ``empty`` is the error for an empty text (None: allowed)."""
    text = "" if raw is None else str(raw)
    mode = str(parse_mode or "").lower()
    if mode == "html":
        text, found = parse_html(text)
    elif mode in ("", "markdown", "markdownv2"):
        found = [dict(e) for e in entities] if isinstance(entities, list) else []
    else:
        raise bad_request(f"unsupported parse_mode {parse_mode}")
    text, found = _strip(text, found)
    if not text and empty is not None:
        raise bad_request(empty)
    if utf16_len(text) > limit:
        raise bad_request(too_long)
    return text, found


def command_entities(text: str) -> list[dict[str, Any]]:
    """``bot_command`` entities for every ``/command`` or ``/command@bot`` that starts a word."""
    return [
        {"type": "bot_command", "offset": utf16_len(text[: m.start()]), "length": utf16_len(m.group(0))}
        for m in _COMMAND_RE.finditer(text)
    ]


def check_reply_markup(markup: Any) -> dict[str, Any] | None:
    """The markup if Telegram would take it; inline keyboards are checked as Telegram checks them."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    rows = markup.get("inline_keyboard")
    if rows is None:
        return markup
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
    for button in (button for row in rows for button in row):
        if not isinstance(button, dict) or not button.get("text"):
            raise bad_request("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
        if set(button) == {"text"}:
            raise bad_request("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
        data = button.get("callback_data")
        if data is not None and not 1 <= len(str(data).encode()) <= CALLBACK_DATA_LIMIT:
            raise bad_request("BUTTON_DATA_INVALID")
    return markup
