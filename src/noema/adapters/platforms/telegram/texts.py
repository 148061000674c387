"""What the bot says, in Telegram's HTML parse mode (every user-supplied text is escaped)."""

from __future__ import annotations

from datetime import datetime
from html import escape
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
from noema.domain.chat_commands import example
from noema.domain.delivery import DeliveryPayload
from noema.domain.generation import Generation
from noema.domain.ids import short_id
from noema.domain.inputs import stands_for_a_file
from noema.domain.money import display_usd
from noema.domain.preferences import settable
from noema.domain.tools import PrimaryInput, Tool
from noema.services.status import StatusReport


def bar(progress: float, cells: int = 10) -> str:
    """A text progress bar."""
    filled = max(0, min(cells, round(progress * cells)))
    return "▰" * filled + "▱" * (cells - filled)


def help_text(tools: list[Tool]) -> str:
    """The /start and /help message."""
    return "\n".join(
        help_lines(
            f"/{tools[0].command if tools else 'txt2img'} a red fox",
            code=lambda text: f"<code>{escape(text)}</code>",
            bold=lambda text: f"<b>{escape(text)}</b>",
            image="Reply to a photo with a tool's command to use that photo as its input",
            options="Add options after the prompt: <code>steps=30 seed=7</code>",
            other="Discord",
        )
    )


def tools_text(tools: list[Tool], backend_label: str) -> str:
    """The /tools list: every callable tool with its price basis, disabled ones with the reason."""
    lines = [f"<b>Tools</b> ({escape(backend_label)})" if backend_label else "<b>Tools</b>"]
    for tool in tools:
        how = {
            PrimaryInput.IMAGE: " (reply to a photo)",
            PrimaryInput.IMAGE_TEXT: " (reply to a photo)",
        }.get(tool.primary_input, "")
        line = f"/{tool.command}{how} — {escape(tool.description or tool.display_name)[:120]}"
        if not tool.enabled:
            line += f" <i>(disabled: {escape(tool.disabled_reason or 'unavailable')})</i>"
        lines.append(line)
    if len(lines) == 1:
        lines.append("No tools are available right now.")
    return "\n".join(lines)


def split_lines(text: str, limit: int = 4000) -> list[str]:
    """A long message as several, cut between lines (Telegram takes at most 4096 characters)."""
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        line = line[:limit]
        if current and len(current) + 1 + len(line) > limit:
            parts.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    return [*parts, current] if current else parts


def tool_usage(tool: Tool, problem: str) -> str:
    """What to send when a call is missing something, with an example."""
    options = settable(tool)
    text = f"{escape(problem)}\n\nExample: <code>{escape(example(tool))}</code>"
    if options:
        text += "\nOptions: " + ", ".join(f"<code>{escape(o)}=…</code>" for o in options[:12])
    return text


def received(tool: Tool, estimate_nanos: int) -> str:
    """The acknowledgement sent the moment a tool command arrives."""
    return f"👀 /{escape(tool.command)} received — about {display_usd(estimate_nanos)}. Starting…"


def progress(payload: DeliveryPayload) -> str:
    """The one progress message, edited as the run moves."""
    status = payload.status or "pending"
    lines = [f"{STATUS_WORDS.get(status, status)} · /{escape(payload.tool)} · {payload.short_id}"]
    fraction = payload.progress
    if status in ("running", "uploading") or fraction > 0:
        lines.append(f"{bar(fraction)} {round(fraction * 100)}%")
    if payload.live_status:
        lines.append(f"<i>{escape(payload.live_status)[:300]}</i>")
    lines.append(f"Estimate: {display_usd(nanos_of(payload.estimated_cost_usd))}")
    return "\n".join(lines)


def result_caption(payload: DeliveryPayload, *, part: int = 1, parts: int = 1) -> str:
    """The caption of a result: the tool, what it cost and the short id."""
    cost = display_usd(nanos_of(payload.cost_usd))
    text = f"✅ /{escape(payload.tool)} · {cost} · <code>{payload.short_id}</code>"
    if parts > 1:
        text += f" · {part}/{parts}"
    if nanos_of(payload.shortfall_usd):
        text += "\n(Your balance did not cover the whole run; the rest was waived.)"
    return text


def failure(payload: DeliveryPayload) -> str:
    """Why a run did not give a result, and that nothing was charged for what did not run."""
    reason = escape(payload.failure_reason or "The run did not finish.")[:800]
    cost = nanos_of(payload.cost_usd)
    money = f"You were charged {display_usd(cost)} for the GPU time used." if cost else "Nothing was charged."
    head = f"{STATUS_WORDS.get(str(payload.status), '❌ Failed')} · /{escape(payload.tool)} · {payload.short_id}"
    return f"{head}\n{reason}\n{money}"


def status_text(report: StatusReport, now: datetime) -> str:
    """/status: points, balance, level with its bar, and the live tasks."""
    lines = [
        f"<b>{report.points:,}</b> points · {display_usd(report.balance_nanos - report.held_nanos)}",
        f"Level {report.level} {report.level_bar} {round(report.level_progress * 100)}%  ({report.exp:,} EXP)",
    ]
    if report.owed_nanos:
        lines.append(f"⚠️ Owed from a refunded payment: {display_usd(report.owed_nanos)} (top up to run again)")
    if report.held_nanos:
        lines.append(f"Held for running tasks: {display_usd(report.held_nanos)}")
    if not report.live_tasks:
        lines.append("Nothing running.")
    lines.append(f"<i>{POINTS_EXPLAINED} {EXP_EXPLAINED}</i>")
    for task in report.live_tasks:
        pct = f" {round((task.progress or 0) * 100)}%" if task.progress else ""
        live = f" — <i>{escape(task.live_status)[:80]}</i>" if task.live_status else ""
        lines.append(
            f"• <code>{task.id_hash}</code> /{escape(task.tool_name)} {escape(task.status)}{pct}{live} · "
            f"{display_usd(task.cost_nanos)} so far"
        )
    return "\n".join(lines)


def preferences_text(tool: Tool, values: dict[str, Any]) -> str:
    """/settings: the account's defaults for a tool, and how to change them."""
    lines = [f"<b>Your defaults for /{escape(tool.command)}</b>"]
    lines += [f"{escape(k)} = <code>{escape(str(v))[:200]}</code>" for k, v in sorted(values.items())]
    if not values:
        lines.append("None: the tool's own defaults apply.")
    lines.append(
        f"Change with <code>/set {escape(tool.command)} name=value</code>, remove all with "
        f"<code>/set {escape(tool.command)} clear</code>. What you write in a command always wins."
    )
    return "\n".join(lines)


def account_text(account: Account, identities: list[Identity]) -> str:
    """/account: the account record, without secrets or internal ids beyond what the user owns."""
    facts = account_facts(account, identities)
    return "\n".join(["<b>Your account</b>", *(f"{label}: {escape(value)}" for label, value in facts)])


def link_text(code: str, minutes: int, sign_in_url: str) -> str:
    """/link: the code for another platform and the one-time sign-in link for the web page."""
    return (
        f"Your link code: <code>{escape(code)}</code> (valid {minutes} minutes, once).\n"
        f"Enter <code>/link {escape(code)}</code> on Discord, or on the web page's account panel, to join "
        "the two into one account.\n\n"
        f"Or sign in to the web page once with this link:\n{escape(sign_in_url)}"
    )


def _short(g: Generation) -> str:
    return f"<code>{short_id(g.id)}</code>"


def _charged(g: Generation) -> str:
    if g.cost_nanos:
        return f"Charged {display_usd(g.cost_nanos)} for the GPU time used; the rest of the hold was released."
    return "Nothing was charged."


def info(g: Generation) -> str:
    """The Info button: the run's inputs, GPU time, LoRAs and cost."""
    lines = [f"<b>/{escape(g.tool_command)}</b> · {_short(g)} · {escape(g.status.value)}"]
    for name, value in list(g.inputs.items())[:12]:
        shown = "(image)" if stands_for_a_file(value) else str(value)
        lines.append(f"{escape(name)}: {escape(shown[:200])}")
    if g.started_at and g.finished_at:
        lines.append(f"GPU time: {(g.finished_at - g.started_at).total_seconds():.1f} s on {escape(g.gpu or '?')}")
    lines += lora_lines(g, escape)
    lines.append(f"Cost: {display_usd(g.cost_nanos)}")
    return "\n".join(lines)


def cancelled(g: Generation) -> str:
    """The answer to /cancel: what was stopped and what it cost."""
    return f"🛑 Cancelled /{escape(g.tool_command)} · {_short(g)}. {_charged(g)}"
