"""Words every chat platform uses the same way: run statuses, the apology, money read back from a message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from noema.domain.errors import InvalidInput
from noema.domain.generation import Generation
from noema.domain.money import parse_usd
from noema.services.lora_prompts import applied_loras, lora_warnings

STATUS_WORDS = {
    "pending": "⏳ Waiting for the GPU",
    "submitted": "⏳ Submitted",
    "queued": "⏳ Queued",
    "started": "⚙️ Starting",
    "running": "⚙️ Running",
    "uploading": "📤 Uploading the result",
    "succeeded": "✅ Done",
    "failed": "❌ Failed",
    "cancelled": "🛑 Cancelled",
    "timed_out": "⌛ Timed out",
}
#: What a user reads when something broke on our side (the traceback goes to the log).
OOPS = "Something went wrong on our side. Nothing was charged; please try again in a moment."


def nanos_of(value: Any) -> int:
    """A JSON decimal string of USD (from a queued message) as nano-dollars; 0 when absent or unreadable."""
    try:
        return parse_usd(str(value), allow_zero=True) if value is not None else 0
    except InvalidInput:
        return 0


def lora_lines(g: Generation, escape: Callable[[str], str]) -> list[str]:
    """What a result's info says about LoRAs: the ones applied, then the warnings about the rest."""
    applied = applied_loras(g)
    lines = ["LoRAs: " + ", ".join(f"{escape(a['slug'])} ({a.get('weight')})" for a in applied)] if applied else []
    return lines + [f"⚠️ {escape(str(w)[:200])}" for w in lora_warnings(g)]
