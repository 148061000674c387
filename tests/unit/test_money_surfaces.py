"""Every chat surface shows money in the one form: $0.50, or two significant digits below a cent."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from noema.adapters.platforms.discord import texts as discord
from noema.adapters.platforms.telegram import texts as telegram
from noema.domain.delivery import DeliveryPayload
from noema.domain.economy import level_of
from noema.domain.generation import GenerationStatus
from noema.services.status import LiveTask, StatusReport
from tests.fakes.generations import T0, make_generation

#: A run that cost a fraction of a cent, with an estimate and a hold that are not whole cents either.
PAYLOAD: dict[str, Any] = {
    "status": "succeeded",
    "tool": "txt2img",
    "shortId": "ab12c",
    "progress": 0.4,
    "costUsd": "0.000766338",
    "estimatedCostUsd": "0.010110000",
    "shortfallUsd": "0.000000000",
}
EXACT = re.compile(r"\d\.\d{9}|USD")  #: the machines' form
DOLLARS = re.compile(r"-?\$[\d,.]*\d")
SHOWN = re.compile(r"^-?\$(\d{1,3}(,\d{3})*|0)\.(\d\d|0*[1-9]\d?)$")  #: the people's form


def _stored(raw: dict[str, Any]) -> DeliveryPayload:
    """The payload as an outbox row holds it (read back from its JSON)."""
    return DeliveryPayload.from_json(raw)


def _only_shown_money(text: str) -> bool:
    return not EXACT.search(text) and all(SHOWN.match(m) for m in DOLLARS.findall(text))


def _flat(value: object) -> str:
    if isinstance(value, dict):
        return " ".join(_flat(v) for v in value.values())
    if isinstance(value, list):
        return " ".join(_flat(v) for v in value)
    return str(value)


def _report() -> StatusReport:
    task = LiveTask("ab12c", "txt2img", "running", 0.5, None, 766_338, 10_110_000, T0)
    return StatusReport(
        account_id="01a2511a-1ba4-73a2-b323-bc19ce90ecd4", points=1481, balance_nanos=499_233_662, held_nanos=10_110_000, exp=12, level=1, level_progress=0.14,
        level_bar="▰▱▱▱▱▱▱▱▱▱", wallet_address=None, live_tasks=[task],
    )  # fmt: skip


def test_telegram_texts_show_sub_cent_costs_as_two_significant_digits() -> None:
    g = make_generation(GenerationStatus.SUCCEEDED, cost_nanos=766_338, started_at=T0, finished_at=T0 + timedelta(1))
    shown = {
        "progress": telegram.progress(_stored({**PAYLOAD, "status": "running"})),
        "caption": telegram.result_caption(_stored(PAYLOAD)),
        "failure": telegram.failure(_stored({**PAYLOAD, "status": "failed"})),
        "status": telegram.status_text(_report(), T0),
        "info": telegram.info(g),
        "cancelled": telegram.cancelled(g),
    }
    assert "Estimate: $0.01" in shown["progress"]
    for name in ("caption", "failure", "info", "cancelled"):
        assert "$0.00077" in shown[name], (name, shown[name])
    assert "$0.49" in shown["status"] and "$0.01" in shown["status"] and "$0.00077 so far" in shown["status"]
    for name, text in shown.items():
        assert _only_shown_money(text), (name, text)


def test_discord_embeds_show_sub_cent_costs_as_two_significant_digits() -> None:
    g = make_generation(GenerationStatus.SUCCEEDED, cost_nanos=766_338)
    shown = {
        "progress": discord.progress_embed(_stored({**PAYLOAD, "status": "running"})),
        "result": discord.result_embed(_stored(PAYLOAD), image=None, notes=[]),
        "failure": discord.failure_embed(_stored({**PAYLOAD, "status": "failed"})),
        "status": discord.status_embed(_report()),
        "info": discord.info_embed(g),
        "cancelled": discord.cancelled(g),
    }
    assert "estimate $0.01" in _flat(shown["progress"])
    for name in ("result", "failure", "info", "cancelled"):
        assert "$0.00077" in _flat(shown[name]), (name, shown[name])
    for name, embed in shown.items():
        assert _only_shown_money(_flat(embed)), (name, embed)


def test_status_on_both_chats_explains_points_exp_and_levels_and_the_bar_is_not_empty_at_14_percent() -> None:
    report = StatusReport(
        account_id="01a2511a-1ba4-73a2-b323-bc19ce90ecd4", points=1481, balance_nanos=499_233_662, held_nanos=0, exp=2, level=1, level_progress=1 / 7,
        level_bar=level_of(2).bar, wallet_address=None,
    )  # fmt: skip
    tg = telegram.status_text(report, T0)
    dc = _flat(discord.status_embed(report))
    for text in (tg, dc):
        assert "Points: your balance in seconds of an A10G GPU" in text and "cube root of EXP" in text
        assert "▰▱▱▱▱▱ 14%" in text
