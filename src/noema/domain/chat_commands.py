"""Reading a chat command: ``/tool@bot a prompt steps=30`` into a name, its addressee and its inputs."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from noema.domain.tools import Tool

_COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,32})(?:@([A-Za-z0-9_]{1,64}))?(?=\s|$)")
_OPTION = re.compile(r"(?<!\S)([a-z][a-z0-9_]{0,63})=(\"[^\"]*\"|\S+)")


@dataclass(frozen=True)
class ParsedCommand:
    """A command as written: its lower-case name, the bot it names (if any) and the rest of the text."""

    name: str
    addressee: str | None
    args: str

    def is_for(self, bot_username: str | None) -> bool:
        """Whether this bot should answer: no ``@name``, or ours (case-insensitive)."""
        return self.addressee is None or (bot_username or "").lower() == self.addressee.lower()


def parse_command(text: str | None) -> ParsedCommand | None:
    """The command at the start of ``text``, or None when the text is not a command."""
    if not text:
        return None
    match = _COMMAND.match(text.strip())
    if match is None:
        return None
    rest = text.strip()[match.end() :].strip()
    return ParsedCommand(match.group(1).lower(), match.group(2), rest)


def parse_options(args: str, accept: Callable[[str], bool] = lambda _name: True) -> tuple[str, dict[str, Any]]:
    """The ``name=value`` options ``accept`` takes out of ``args`` (quotes keep spaces), and what is left."""
    options: dict[str, Any] = {}

    def take(match: re.Match[str]) -> str:
        name, value = match.group(1), match.group(2)
        if not accept(name):
            return match.group(0)
        options[name] = value[1:-1] if value.startswith('"') and value.endswith('"') else value
        return ""

    rest = re.sub(r"\s{2,}", " ", _OPTION.sub(take, args)).strip()
    return rest, options


def split_inputs(tool: Tool, args: str) -> tuple[str, dict[str, Any]]:
    """The prompt and ``name=value`` options naming the tool's non-media inputs (other words stay prompt)."""
    names = {spec.name for spec in tool.inputs if not spec.type.is_media}
    prompt_input = tool.prompt_input
    if prompt_input is not None:
        names.discard(prompt_input.name)
    return parse_options(args, names.__contains__)


def example(tool: Tool) -> str:
    """An example call of the tool, for help and for messages saying what is missing."""
    needs_image = tool.image_input is not None and tool.image_input.required
    prompt = " a red fox in the snow" if tool.prompt_input is not None else ""
    if needs_image:
        return f"reply to a photo with /{tool.command}{prompt}"
    return f"/{tool.command}{prompt}"
