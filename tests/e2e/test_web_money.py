"""The web pages show money in the one form people see; the exact amount is there only for machines."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import httpx

from noema.domain.money import display_usd, parse_usd
from tests.conftest import funded_key, running_app, wait_terminal

#: A figure as the pages print it: the exact amount in ``value`` for machines, the shown form as its text.
FIGURE = re.compile(r'<data class="usd" value="(-?\d+\.\d{9})">([^<]*)</data>')
SHOWN = re.compile(r"^-?\$(\d{1,3}(,\d{3})*|0)\.(\d\d|0*[1-9]\d?)$")


def _visible(html: str) -> str:
    """The page's text without tags and attributes (what a person reads)."""
    return re.sub(r"<[^>]+>", " ", html)


async def _sign_in(client: httpx.AsyncClient, key: str) -> None:
    page = await client.get("/")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    r = await client.post("/signin", data={"api_key": key, "csrf": csrf.group(1)})
    assert r.status_code == 303, r.text


def assert_money_shown_one_way(html: str) -> list[Decimal]:
    """Every figure's text is display_usd of its exact value; no exact or "USD" amount is visible: the values."""
    figures = FIGURE.findall(html)
    for exact, shown in figures:
        assert SHOWN.match(shown) and shown == display_usd(parse_usd(exact, allow_zero=True)), (exact, shown)
    text = _visible(html)
    assert not re.search(r"\bUSD\b", text)
    for amount in re.findall(r"\$?[\d,]*\d\.\d{3,}", text):  # any long decimal a person sees is shown money
        assert SHOWN.match(amount), amount
    return [Decimal(exact) for exact, _ in figures]


async def test_every_web_page_shows_sub_cent_costs_in_the_one_form(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path) as (app, client):
        _, auth = await funded_key(app, "0.5")
        run = await client.post(
            "/api/v1/generations", headers=auth, json={"toolId": "txt2img", "inputs": {"input_text": "a fox"}}
        )
        assert run.status_code == 202, run.text
        body = await wait_terminal(client, run.json()["id"], auth)
        assert body["status"] == "succeeded" and Decimal(body["costUsd"]) < Decimal("0.01"), body
        await _sign_in(client, auth["Authorization"].removeprefix("Bearer "))

        card = (await client.get(f"/app/generations/{body['id']}")).text
        assert Decimal(body["costUsd"]) in assert_money_shown_one_way(card)
        assert display_usd(parse_usd(body["costUsd"])) in _visible(card)  # e.g. $0.00077, never $0.00
        history = (await client.get("/app/history")).text
        assert Decimal(body["costUsd"]) in assert_money_shown_one_way(history)
        account = (await client.get("/app/account")).text
        assert Decimal("0.5") - Decimal(body["costUsd"]) in assert_money_shown_one_way(account)
        tools = (await client.get("/app?tool=txt2img")).text
        assert assert_money_shown_one_way(tools)  # the estimate
        # Machines still read the exact amount from the API.
        assert re.fullmatch(r"0\.\d{9}", body["costUsd"])


async def test_the_result_card_names_the_settings_used_and_downloads_get_a_readable_name(
    db_url: str, tmp_path: Path
) -> None:
    async with running_app(db_url, tmp_path) as (app, client):
        _, auth = await funded_key(app, "0.5")
        inputs = {"input_text": "a fox", "input_seed": -1, "width": 640, "height": 384, "steps": 12, "sampler": "ddim"}
        run = await client.post("/api/v1/generations", headers=auth, json={"toolId": "txt2img", "inputs": inputs})
        assert run.status_code == 202, run.text
        body = await wait_terminal(client, run.json()["id"], auth)
        assert body["status"] == "succeeded", body
        seed = body["inputs"]["input_seed"]
        assert seed != -1  # the random seed actually used
        await _sign_in(client, auth["Authorization"].removeprefix("Bearer "))

        card = (await client.get(f"/app/generations/{body['id']}/card")).text
        used = re.search(r'<p class="settings-used".*?</p>', card, re.S)
        assert used, card[:500]
        settings = _visible(used.group(0))
        assert " ".join(settings.split()) == f"Seed {seed} · Size 640×384 · Steps 12 · Sampler ddim"
        name = f"txt2img-{body['shortId']}-1.png"
        assert f'href="/app/generations/{body["id"]}/download/1" download="{name}"' in card
        assert "ComfyUI_" not in _visible(card)

        file = await client.get(f"/app/generations/{body['id']}/download/1")
        assert file.status_code == 200 and file.headers["content-type"] == "image/png"
        assert file.headers["content-disposition"] == f'attachment; filename="{name}"'
        assert file.content[:8] == b"\x89PNG\r\n\x1a\n"
        assert (await client.get(f"/app/generations/{body['id']}/download/2")).status_code == 404
        # Another account cannot download it.
        _, other = await funded_key(app, "0")
        stranger = httpx.AsyncClient(transport=client._transport, base_url="http://noema.test")
        async with stranger:
            await _sign_in(stranger, other["Authorization"].removeprefix("Bearer "))
            assert (await stranger.get(f"/app/generations/{body['id']}/download/1")).status_code == 404


async def test_a_hold_shows_as_reserved_in_the_header_and_on_the_account_page(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path, sandbox_run_seconds=60) as (app, client):
        _, auth = await funded_key(app, "0.5")
        await _sign_in(client, auth["Authorization"].removeprefix("Bearer "))
        before = (await client.get("/app/account")).text
        assert 'id="reserved"' not in before and re.search(r'<span class="reserved"[^>]* hidden>', before)
        run = await client.post(
            "/api/v1/generations", headers=auth, json={"toolId": "txt2img", "inputs": {"input_text": "x"}}
        )
        assert run.status_code == 202, run.text
        held = display_usd(parse_usd(run.json()["heldUsd"]))
        account = (await client.get("/app/account")).text
        assert f"{held}</data> reserved for runs in progress" in account
        header = re.search(r'<span class="reserved"[^>]*>([^<]*)</span>', account)
        assert header and "hidden" not in header.group(0) and header.group(1) == f"{held} reserved"
        assert_money_shown_one_way(account)
        r = await client.post(f"/api/v1/generations/{run.json()['id']}/cancel", headers=auth)
        assert r.status_code == 200
