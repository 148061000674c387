"""Words every chat platform uses the same way: run statuses, the apology, money read back from a message."""

from __future__ import annotations

from typing import Any

from noema.domain.errors import InvalidInput
from noema.domain.money import parse_usd

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
