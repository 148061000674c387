"""Discord: progress edits, rate limits, restarts and expired tokens on the way from the outbox to the user."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

from noema.domain.delivery import Delivery, DeliveryKind, DeliveryPayload, DeliveryStatus, dedupe_key
from noema.domain.generation import Generation
from noema.services import delivery
from tests.e2e.chat_harness import until
from tests.e2e.discord.harness import DEFAULT_USER, DiscordRig, discord_app
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.media_host import media_host


def _prompt(text: str) -> list[dict[str, Any]]:
    return [{"name": "prompt", "value": text}]


def _original(fake: FakeDiscord, hit: dict[str, Any]) -> dict[str, Any]:
    """The interaction's @original message, which the test expects to exist."""
    message = fake.original(hit)
    assert message is not None
    return message


def _result_patches(fake: FakeDiscord, hit: dict[str, Any]) -> list[Any]:
    return [c for c in fake.calls_to("PATCH", hit["token"]) if c.files]


async def _terminal(rig: DiscordRig, account: str) -> Generation:
    async def check() -> Generation | None:
        found = await rig.generations(account)
        return found[0] if found and found[0].is_terminal else None

    deadline = asyncio.get_running_loop().time() + 20
    while (generation := await check()) is None:
        assert asyncio.get_running_loop().time() < deadline, "the run did not end"
        await asyncio.sleep(0.05)
    return generation


async def test_progress_edits_the_original_at_most_every_three_seconds_then_the_result(
    db_url: str, tmp_path: Path, fake: FakeDiscord
) -> None:
    async with discord_app(db_url, tmp_path, fake, sandbox_run_seconds=5) as rig:
        await rig.fund("1")
        hit = await rig.slash("txt2img", _prompt("a slow sunrise"))
        await until(lambda: _result_patches(fake, hit), seconds=30, what="the result")
        patches = [c for c in fake.calls_to("PATCH", hit["token"]) if c.ok]
        progress = [c for c in patches if not c.files]
        titles = [c.json["embeds"][0]["title"] for c in progress]
        assert any("Running" in t for t in titles), titles
        assert any("%" in c.json["embeds"][0]["description"] for c in progress)
        gaps = [b.time - a.time for a, b in itertools.pairwise(progress)]
        assert len(progress) >= 2 and all(gap >= 2.9 for gap in gaps), gaps
        assert patches[-1].files and fake.followups(hit) == []  # one message, edited until it is the result


async def test_a_429_on_the_result_edit_is_delivered_later_exactly_once(
    db_url: str, tmp_path: Path, fake: FakeDiscord
) -> None:
    async with discord_app(db_url, tmp_path, fake, workers_enabled=False) as rig:
        account = await rig.fund("1")
        hit = await rig.slash("txt2img", _prompt("a busy day"))
        generation = await _terminal(rig, account)
        c = rig.container
        fake.fail_next("PATCH", "/messages/@original", retry_after=2.1)
        assert await delivery.deliver_due(c.uow, c.clock, c.notifiers, metrics=c.metrics) == 1
        async with c.uow() as uow:
            row = await uow.deliveries.by_key(dedupe_key(generation.id, DeliveryKind.RESULT))
        assert row is not None and row.status is DeliveryStatus.PENDING and "wait 2.1" in (row.last_error or "")
        assert (row.next_attempt_at - c.clock.now()).total_seconds() > 2
        assert await delivery.deliver_due(c.uow, c.clock, c.notifiers, metrics=c.metrics) == 0  # not yet due
        await asyncio.sleep((row.next_attempt_at - c.clock.now()).total_seconds() + 0.1)
        assert await delivery.deliver_due(c.uow, c.clock, c.notifiers, metrics=c.metrics) == 1
        assert await delivery.deliver_due(c.uow, c.clock, c.notifiers, metrics=c.metrics) == 0
        assert [call.status for call in _result_patches(fake, hit)] == [429, 200]
        assert len(_original(fake, hit)["attachments"]) == 1


async def test_a_restart_between_the_result_and_its_delivery_delivers_it_exactly_once(
    db_url: str, tmp_path: Path, fake: FakeDiscord
) -> None:
    async with discord_app(db_url, tmp_path, fake, workers_enabled=False) as first:
        account = await first.fund("1")
        hit = await first.slash("txt2img", _prompt("before the restart"))
        await _terminal(first, account)
    assert _result_patches(fake, hit) == []
    async with discord_app(db_url, tmp_path, fake) as second:
        await until(lambda: _result_patches(fake, hit), what="the result after the restart")
        await asyncio.sleep(0.6)  # more worker rounds: nothing is sent again
        (generation,) = await second.generations(account)
        async with second.container.uow() as uow:
            row = await uow.deliveries.by_key(dedupe_key(generation.id, DeliveryKind.RESULT))
        assert row is not None and row.status is DeliveryStatus.SENT
    assert len(_result_patches(fake, hit)) == 1 and fake.followups(hit) == []
    assert len(_original(fake, hit)["attachments"]) == 1


async def test_once_the_interaction_token_expired_the_result_is_posted_in_the_channel(
    db_url: str, tmp_path: Path, fake: FakeDiscord
) -> None:
    async with discord_app(db_url, tmp_path, fake, sandbox_run_seconds=1.0) as rig:
        await rig.fund("1")
        hit = rig.fake.slash("txt2img", _prompt("a long wait"))
        await rig.post(hit)
        fake.age(hit, 900)  # fifteen minutes later, as far as Discord is concerned
        await rig.discord.idle()
        (posted,) = await until(lambda: fake.channel_messages(), what="the channel post")
        assert posted["content"].startswith(f"<@{DEFAULT_USER}>") and len(posted["attachments"]) == 1
        assert posted["embeds"][0]["title"] == "✅ /txt2img"
        (call,) = fake.calls_to("POST", "/channels/")
        assert call.headers["authorization"] == f"Bot {fake.bot_token}"
        assert call.json["allowed_mentions"] == {"parse": [], "users": [DEFAULT_USER]}
        assert _result_patches(fake, hit) and all(c.status == 401 for c in _result_patches(fake, hit))


async def _result_from(rig: DiscordRig, generation: Generation, url: str) -> None:
    """Hand the notifier this generation's result as if its one image were at ``url``."""
    generation.outputs = [{"kind": "image", "url": url, "filename": "fox.png", "mime_type": "image/png"}]
    row = Delivery(
        id=f"d-{generation.id}",
        generation_id=generation.id,
        account_id=generation.account_id,
        kind=DeliveryKind.RESULT,
        platform="discord",
        key=dedupe_key(generation.id, DeliveryKind.RESULT),
        created_at=rig.container.clock.now(),
        next_attempt_at=rig.container.clock.now(),
        target=dict(generation.delivery),
        payload=DeliveryPayload.of(generation),
    )
    await rig.discord.notifier.send(row, generation)


async def test_a_result_on_a_host_that_is_not_the_backends_is_never_fetched_and_the_user_is_told(
    db_url: str, tmp_path: Path, fake: FakeDiscord
) -> None:
    with media_host() as host:
        async with discord_app(db_url, tmp_path, fake, workers_enabled=False) as rig:
            account = await rig.fund("1")
            hit = await rig.slash("txt2img", _prompt("a fox"))
            await _result_from(rig, await _terminal(rig, account), host.url("/fox.png"))
            shown = rig.reply_text(hit)
            original = fake.original(hit)
    assert host.hits == []
    assert "could not be fetched" in shown and "127.0.0.1" not in shown
    assert original is not None and original["attachments"] == []


async def test_a_media_host_the_operator_allows_is_fetched(db_url: str, tmp_path: Path, fake: FakeDiscord) -> None:
    with media_host() as host:
        async with discord_app(
            db_url, tmp_path, fake, workers_enabled=False, media_hosts=f"127.0.0.1:{host.port}"
        ) as rig:
            account = await rig.fund("1")
            hit = await rig.slash("txt2img", _prompt("a fox"))
            await _result_from(rig, await _terminal(rig, account), host.url("/fox.png"))
            original = fake.original(hit)
    assert host.hits == ["/fox.png"]
    assert original is not None and len(original["attachments"]) == 1
