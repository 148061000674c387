"""Words every chat platform uses the same way: run statuses, the apology, /help and /account, money read back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from noema.domain.accounts import Account, Identity
from noema.domain.errors import InvalidInput
from noema.domain.generation import Generation
from noema.domain.money import NANOS_PER_POINT, display_usd, parse_usd
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
#: What points, EXP and levels are, wherever they are shown.
POINTS_EXPLAINED = f"Points: your balance in seconds of an A10G GPU (about {display_usd(NANOS_PER_POINT)} each)."
EXP_EXPLAINED = "EXP: one for each point you spend. Level: the cube root of EXP (level 2 at 8 EXP, 3 at 27, 4 at 64)."
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


def help_lines(
    example: str, *, code: Callable[[str], str], bold: Callable[[str], str], image: str, options: str, other: str
) -> list[str]:
    """/help on every platform: what Noema does and the commands to use.

    ``code`` and ``bold`` mark text up in the platform's own way (and escape it); ``image`` and
    ``options`` say how that platform takes a picture and extra inputs; ``other`` names the platform
    an account can be linked with.
    """
    return [
        f"{bold('Noema')} runs image, animation and video workflows for you, paid by the GPU second.",
        "",
        f"• {code('/tools')} lists what you can run; each tool is a command, e.g. {code(example)}",
        f"• {image}",
        f"• {options}",
        f"• {code('/status')} your balance, level and running tasks · {code('/cancel')} stop a run",
        f"• {code('/link')} join this account with {other} or the web page · {code('/apikey')} a key for the API",
        f"• {code('/account')} your account record",
    ]


def account_facts(account: Account, identities: list[Identity]) -> list[tuple[str, str]]:
    """/account on every platform: the record as (label, value) pairs, without secrets or internal ids."""
    return [
        ("Name", account.display_name or "—"),
        ("Username", account.username or "—"),
        ("Status", account.status.value),
        ("Linked platforms", ", ".join(sorted(i.platform.value for i in identities)) or "—"),
        ("Balance", f"{display_usd(account.balance_nanos)} · EXP {account.exp:,}"),
        ("Member since", f"{account.created_at:%Y-%m-%d}"),
    ]
