"""The slash commands Noema registers: the built-in ones, ``/run`` and one per top tool.

Discord allows 100 chat commands per scope, 25 options per command (required ones first), names
of 1-32 lower-case characters, descriptions of 1-100 and about 8000 characters per command. Each
tool command takes ``prompt`` and ``image`` when the tool has such inputs, then a few of its other
inputs as typed options (numbers with their range, enums as choices); anything else can still be
written into the prompt as ``name=value``.
"""

from __future__ import annotations

import math
import re
from typing import Any

from noema.domain.chat_commands import split_inputs
from noema.domain.tools import InputType, Tool, ToolInput

COMMAND_LIMIT = 100
OPTION_LIMIT = 25
EXTRA_OPTIONS = 12  #: typed options beyond prompt and image, at most
COMMAND_SIZE = 7500  #: Discord's limit is 8000 characters per command; keep a margin
STRING, INTEGER, BOOLEAN, NUMBER, ATTACHMENT = 3, 4, 5, 10, 11
_JS_SAFE = 2**53 - 1
PROMPT, IMAGE = "prompt", "image"
BUILTINS = {
    "help": "How to use Noema",
    "run": "Run any tool: pick it, write a prompt, attach an image",
    "tools": "Every tool you can run",
    "status": "Balance, level and running tasks",
    "cancel": "Stop a running generation",
    "link": "Join this account with another platform",
    "apikey": "A personal key for the API (only you see it)",
    "account": "Your account record",
    "set": "Keep default inputs for a tool: steps=30 sampler=ddim (or clear)",
    "settings": "Show your default inputs for a tool",
    "topup": "Add credit by card on the web page (a one-time sign-in link only you see)",
}
_TYPES = {
    InputType.INTEGER: INTEGER,
    InputType.SEED: INTEGER,
    InputType.NUMBER: NUMBER,
    InputType.SLIDER: NUMBER,
    InputType.BOOLEAN: BOOLEAN,
    InputType.ENUM: STRING,
    InputType.TEXT: STRING,
}


def _option(name: str, kind: int, description: str, *, required: bool = False, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, "description": _describe(description, name), "required": required, **extra}


def _describe(text: str | None, fallback: str) -> str:
    lines = (text or "").strip().splitlines()
    return (lines[0].strip() if lines else "")[:100] or fallback[:100]


def builtin_commands() -> list[dict[str, Any]]:
    """The built-in commands (``BUILTINS``) with their options."""
    options: dict[str, list[dict[str, Any]]] = {
        "run": [
            _option("tool", STRING, "The tool to run", required=True, autocomplete=True),
            _option(PROMPT, STRING, "What you want (options as name=value)", max_length=6000),
            _option(IMAGE, ATTACHMENT, "An image, for tools that work on one"),
        ],
        "cancel": [_option("id", STRING, "The short id from /status (the only running one if left out)")],
        "link": [_option("code", STRING, "A code from /link on another platform (leave out to get one)")],
        "set": [
            _option("tool", STRING, "The tool", required=True, autocomplete=True),
            _option("values", STRING, "name=value pairs, or clear to remove them all", required=True, max_length=2000),
        ],
        "settings": [_option("tool", STRING, "The tool", required=True, autocomplete=True)],
    }
    return [
        {"name": name, "type": 1, "description": text, **({"options": options[name]} if name in options else {})}
        for name, text in BUILTINS.items()
    ]


def command_set(tools: list[Tool]) -> list[dict[str, Any]]:
    """Every command to register, within Discord's limits: built-ins first, then tools in order."""
    commands = builtin_commands()
    taken = set(BUILTINS)
    for tool in tools:
        if len(commands) >= COMMAND_LIMIT:
            break
        if tool.command in taken or not re.fullmatch(r"[a-z0-9_\-]{1,32}", tool.command):
            continue
        taken.add(tool.command)
        commands.append(tool_command(tool))
    return commands


def tool_command(tool: Tool) -> dict[str, Any]:
    """The slash command of one tool."""
    description = _describe(tool.description or tool.display_name, tool.command)
    command: dict[str, Any] = {"name": tool.command, "type": 1, "description": description}
    options = tool_options(tool)
    if options:
        command["options"] = options
    return command


def tool_options(tool: Tool) -> list[dict[str, Any]]:
    """The options of a tool's command, required ones first, within the option and size limits."""
    options = []
    prompt, image = tool.prompt_input, tool.image_input
    if prompt is not None:
        limit = min(prompt.max_length or 6000, 6000)
        options.append(_option(PROMPT, STRING, prompt.description or "What you want", required=prompt.required))
        options[-1]["max_length"] = limit
    if image is not None:
        options.append(_option(IMAGE, ATTACHMENT, image.description or "The image", required=image.required))
    for name, spec in list(typed_inputs(tool).items())[:EXTRA_OPTIONS]:
        options.append(_typed(name, spec))
    options = sorted(options, key=lambda o: not o["required"])[:OPTION_LIMIT]
    while options and _size(tool, options) > COMMAND_SIZE:
        options.pop()
    return options


def typed_inputs(tool: Tool) -> dict[str, ToolInput]:
    """Option name -> input for the inputs offered as typed options (not the prompt or the image)."""
    skip = {i.name for i in (tool.prompt_input, tool.image_input) if i is not None}
    result: dict[str, ToolInput] = {}
    for spec in tool.inputs:
        if spec.name in skip or spec.type not in _TYPES:
            continue
        name = re.sub(r"[^a-z0-9_\-]", "_", spec.name.lower())[:32]
        if name and name not in (PROMPT, IMAGE) and name not in result:
            result[name] = spec
    return dict(sorted(result.items(), key=lambda item: not item[1].required))


def _typed(name: str, spec: ToolInput) -> dict[str, Any]:
    kind = _TYPES[spec.type]
    if kind == NUMBER and spec.integer:
        kind = INTEGER
    option = _option(name, kind, spec.description or spec.display_name or spec.name, required=spec.required)
    if kind in (INTEGER, NUMBER):
        low, high = spec.minimum, spec.maximum
        if spec.type is InputType.SEED:
            low = -1
        if low is not None and abs(low) <= _JS_SAFE:
            option["min_value"] = math.ceil(low) if kind == INTEGER else low
        if high is not None and abs(high) <= _JS_SAFE:
            option["max_value"] = math.floor(high) if kind == INTEGER else high
    if spec.type is InputType.ENUM and 0 < len(spec.options) <= 25 and all(0 < len(o) <= 100 for o in spec.options):
        option["choices"] = [{"name": o, "value": o} for o in spec.options]
    if spec.type is InputType.TEXT:
        option["max_length"] = min(spec.max_length or 6000, 6000)
    return option


def _size(tool: Tool, options: list[dict[str, Any]]) -> int:
    total = len(tool.command) + 100
    for option in options:
        total += len(option["name"]) + len(option["description"])
        total += sum(len(c["name"]) + len(str(c["value"])) for c in option.get("choices", []))
    return total


def inputs_of(tool: Tool, options: dict[str, Any]) -> dict[str, Any]:
    """The tool inputs an invocation gives: ``name=value`` words of the prompt, then the typed options."""
    text = options.get(PROMPT)
    prompt, inputs = split_inputs(tool, text if isinstance(text, str) else "")
    values: dict[str, Any] = dict(inputs)
    if tool.prompt_input is not None and prompt:
        values[tool.prompt_input.name] = prompt
    for name, spec in typed_inputs(tool).items():
        if options.get(name) is not None:
            values[spec.name] = options[name]
    return values
