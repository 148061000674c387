"""What the bot says on Discord: message bodies, embeds and buttons (user text is markdown-escaped).

Every message carries ``allowed_mentions: {parse: []}``: a prompt that says ``@everyone`` pings no one.
"""

from __future__ import annotations

import re
from typing import Any

from noema.adapters.platforms.wording import (
    EXP_EXPLAINED,
    POINTS_EXPLAINED,
    STATUS_WORDS,
    account_facts,
    help_lines,
    lora_lines,
    nanos_of,
)
from noema.domain.accounts import Account, Identity
from noema.domain.delivery import DeliveryPayload
from noema.domain.generation import Generation
from noema.domain.ids import short_id
from noema.domain.inputs import stands_for_a_file
from noema.domain.money import display_usd
from noema.domain.tools import PrimaryInput, Tool
from noema.services.status import StatusReport

EPHEMERAL = 1 << 6
BLURPLE, GREEN, RED, GREY = 0x5865F2, 0x57F287, 0xED4245, 0x99AAB5
_MARKDOWN = re.compile(r"([\\*_~`|>\[\]()#])")


def escape(text: str) -> str:
    """Text shown as written, not as markdown."""
    return _MARKDOWN.sub(r"\\\1", text)


def message(
    content: str | None = None,
    *,
    embeds: list[dict[str, Any]] | None = None,
    components: list[dict[str, Any]] | None = None,
    ephemeral: bool = False,
) -> dict[str, Any]:
    """A message body (content cut to Discord's 2000 characters)."""
    body: dict[str, Any] = {"allowed_mentions": {"parse": []}}
    if content is not None:
        body["content"] = content[:2000]
    if embeds is not None:
        body["embeds"] = embeds
    if components is not None:
        body["components"] = components
    if ephemeral:
        body["flags"] = EPHEMERAL
    return body


def bar(progress: float, cells: int = 10) -> str:
    """A text progress bar."""
    filled = max(0, min(cells, round(progress * cells)))
    return "▰" * filled + "▱" * (cells - filled)


def buttons(generation_id: str) -> list[dict[str, Any]]:
    """Rerun and info buttons under a result."""
    return [
        {
            "type": 1,
            "components": [
                {
                    "type": 2,
                    "style": 1,
                    "label": "Rerun",
                    "emoji": {"name": "🔁"},
                    "custom_id": f"rerun:{generation_id}",
                },
                {"type": 2, "style": 2, "label": "Info", "emoji": {"name": "ℹ️"}, "custom_id": f"info:{generation_id}"},
            ],
        }
    ]


def cancel_button(generation_id: str) -> list[dict[str, Any]]:
    """The Cancel button under a run's progress (the result or failure replaces it)."""
    button = {"type": 2, "style": 4, "label": "Cancel", "emoji": {"name": "🛑"}, "custom_id": f"cancel:{generation_id}"}
    return [{"type": 1, "components": [button]}]


def _head(status: str, tool: str) -> str:
    return f"{STATUS_WORDS.get(status, status)} · /{escape(tool)}"


def progress_embed(payload: DeliveryPayload) -> dict[str, Any]:
    """The progress shown in the original response while the run moves."""
    status = payload.status or "pending"
    fraction = payload.progress
    lines = []
    if status in ("running", "uploading") or fraction > 0:
        lines.append(f"{bar(fraction)} {round(fraction * 100)}%")
    if payload.live_status:
        lines.append(f"*{escape(payload.live_status[:300])}*")
    estimate = display_usd(nanos_of(payload.estimated_cost_usd))
    return {
        "title": _head(status, payload.tool),
        "description": "\n".join(lines) or "Starting…",
        "color": BLURPLE,
        "footer": {"text": f"id {payload.short_id} · estimate {estimate}"},
    }


def result_embed(payload: DeliveryPayload, *, image: str | None, notes: list[str]) -> dict[str, Any]:
    """The result: the tool, what it cost, the short id, and the first picture shown large."""
    lines = [f"Cost **{display_usd(nanos_of(payload.cost_usd))}** · id `{payload.short_id}`"]
    if nanos_of(payload.shortfall_usd):
        lines.append("Your balance did not cover the whole run; the rest was waived.")
    lines += notes
    embed: dict[str, Any] = {"title": f"✅ /{escape(payload.tool)}", "color": GREEN}
    embed["description"] = "\n".join(lines)[:4000]
    if image is not None:
        embed["image"] = {"url": f"attachment://{image}"}
    return embed


def failure_embed(payload: DeliveryPayload) -> dict[str, Any]:
    """Why a run gave no result, and what (if anything) was charged."""
    reason = escape(payload.failure_reason or "The run did not finish.")[:1500]
    cost = nanos_of(payload.cost_usd)
    money = f"You were charged {display_usd(cost)} for the GPU time used." if cost else "Nothing was charged."
    return {
        "title": _head(payload.status or "failed", payload.tool),
        "description": f"{reason}\n{money}",
        "color": GREY if payload.status == "cancelled" else RED,
        "footer": {"text": f"id {payload.short_id}"},
    }


def usage(tool: Tool, problem: str) -> str:
    """What to send when a call is missing something."""
    how = f"/{tool.command}"
    if tool.prompt_input is not None:
        how += " prompt: a red fox in the snow"
    if tool.image_input is not None:
        how += " image: (attach a picture)"
    return f"{problem}\nExample: `{how}`"


def help_text(tools: list[Tool]) -> str:
    """/help: what Noema does and the commands, with the top tool as the example."""
    return "\n".join(
        help_lines(
            f"/{tools[0].command if tools else 'txt2img'} a red fox",
            code=lambda text: f"`{text.replace('`', '')}`",
            bold=lambda text: f"**{escape(text)}**",
            image="Tools that work on a picture take it in their `image` option: attach it there",
            options="Add options in the prompt: `steps=30 seed=7` (or use the command's own options)",
            other="Telegram",
        )
    )


def account_embed(account: Account, identities: list[Identity]) -> dict[str, Any]:
    """/account: the account record, without secrets or internal ids beyond what the user owns."""
    fields = [
        {"name": label, "value": escape(value)[:1024], "inline": True}
        for label, value in account_facts(account, identities)
    ]
    return {"title": "Your account", "color": BLURPLE, "fields": fields}


def tools_embed(tools: list[Tool], backend_label: str) -> dict[str, Any]:
    """/tools: every callable tool, disabled ones with the reason."""
    lines = []
    for tool in tools:
        needs = " (with an image)" if tool.primary_input in (PrimaryInput.IMAGE, PrimaryInput.IMAGE_TEXT) else ""
        line = f"**/{tool.command}**{needs} — {escape((tool.description or tool.display_name)[:120])}"
        if not tool.enabled:
            line += f" *(disabled: {escape(tool.disabled_reason or 'unavailable')})*"
        lines.append(line)
    text = "\n".join(lines) or "No tools are available right now."
    return {
        "title": f"Tools ({backend_label})" if backend_label else "Tools",
        "description": text[:4000],
        "color": BLURPLE,
    }


def status_embed(report: StatusReport) -> dict[str, Any]:
    """/status: points, balance, level with its bar, and the live tasks."""
    free = report.balance_nanos - report.held_nanos
    fields = [
        {"name": "Points", "value": f"{report.points:,}", "inline": True},
        {"name": "Balance", "value": display_usd(free), "inline": True},
        {
            "name": f"Level {report.level}",
            "value": f"{report.level_bar} {round(report.level_progress * 100)}% ({report.exp:,} EXP)",
            "inline": False,
        },
    ]
    if report.held_nanos:
        fields.append({"name": "Held for running tasks", "value": display_usd(report.held_nanos), "inline": True})
    tasks = [
        f"`{t.id_hash}` /{escape(t.tool_name)} {escape(t.status)}"
        + (f" {round(t.progress * 100)}%" if t.progress else "")
        + (f" — *{escape(t.live_status[:80])}*" if t.live_status else "")
        + f" · {display_usd(t.cost_nanos)} so far"
        for t in report.live_tasks[:15]
    ]
    fields.append({"name": "Running", "value": "\n".join(tasks)[:1024] or "Nothing running.", "inline": False})
    return {
        "title": "Your status",
        "color": BLURPLE,
        "fields": fields,
        "footer": {"text": f"{POINTS_EXPLAINED} {EXP_EXPLAINED}"},
    }


def info_embed(g: Generation) -> dict[str, Any]:
    """The info button: what was asked, how long it ran, what it cost."""
    lines = []
    for name, value in list(g.inputs.items())[:12]:
        shown = "(image)" if stands_for_a_file(value) else str(value)
        lines.append(f"**{escape(name)}**: {escape(shown[:200])}")
    if g.started_at and g.finished_at:
        lines.append(f"GPU time: {(g.finished_at - g.started_at).total_seconds():.1f} s on {escape(g.gpu or '?')}")
    lines += lora_lines(g, escape)
    lines.append(f"Cost: {display_usd(g.cost_nanos)}")
    title = f"/{escape(g.tool_command)} · {short_id(g.id)} · {g.status.value}"
    return {"title": title, "description": "\n".join(lines)[:4000], "color": BLURPLE}


def preferences_text(tool: Tool, values: dict[str, Any]) -> str:
    """/settings: the account's defaults for a tool, and how to change them."""
    lines = [f"**Your defaults for /{escape(tool.command)}**"]
    lines += [f"{escape(k)} = `{str(v)[:200].replace('`', '')}`" for k, v in sorted(values.items())]
    if not values:
        lines.append("None: the tool's own defaults apply.")
    lines.append(f"Change with `/set tool:{tool.command} values:name=value`; what you write in a command wins.")
    return "\n".join(lines)


def cancelled(g: Generation) -> str:
    """The answer to /cancel."""
    charged = (
        f"Charged {display_usd(g.cost_nanos)} for the GPU time used; the rest of the hold was released."
        if g.cost_nanos
        else "Nothing was charged."
    )
    return f"🛑 Cancelled /{escape(g.tool_command)} · `{short_id(g.id)}`. {charged}"


def link_text(code: str, minutes: int, sign_in_url: str) -> str:
    """/link: the code for another platform and the one-time sign-in link for the web page."""
    return (
        f"Your link code: `{code}` (valid {minutes} minutes, once).\n"
        f"Send `/link {code}` to the Telegram bot, or enter it on the web page's account panel, to join "
        f"the two into one account.\n\nOr sign in to the web page once with this link:\n{sign_in_url}"
    )


def topup_text(sign_in_url: str, minutes: int) -> str:
    """/topup: the one-time sign-in link to the web page's card top-up."""
    return (
        "💳 Pay by card on the web page: this link signs you in once and opens the top-up panel "
        f"(valid {minutes} minutes, keep it to yourself):\n{sign_in_url}"
    )


def api_key_text(plain: str, public_url: str) -> str:
    """/apikey: the new key, shown once."""
    return (
        f"Your new API key (shown once, keep it secret):\n`{plain}`\n"
        f"Use it as `Authorization: Bearer …` on {public_url}/api/v1"
    )
