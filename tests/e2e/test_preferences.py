"""Per-account defaults: set through the API and Telegram, filled in under explicit inputs, moved on a merge."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from noema.domain.accounts import Platform
from noema.domain.linking import CodePurpose
from noema.ports import GenerationFilter
from noema.services import accounts, api_keys, linking
from tests.conftest import funded_key, running_app, wait_terminal
from tests.e2e.telegram.harness import TelegramRig, telegram_app
from tests.fakes.telegram_api import FakeTelegram


async def test_defaults_set_through_the_api_fill_in_under_explicit_inputs(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path) as (app, client):
        _aid, auth = await funded_key(app, "1")
        put = await client.put(
            "/api/v1/preferences/txt2img",
            headers=auth,
            json={"inputs": {"steps": 33, "negative_prompt": "blurry", "sampler": None}},
        )
        assert put.status_code == 200, put.text
        assert put.json()["inputs"] == {"steps": 33, "negative_prompt": "blurry"}
        assert "steps" in put.json()["settable"] and "input_text" not in put.json()["settable"]
        got = await client.get("/api/v1/preferences/txt2img", headers=auth)
        assert got.json() == put.json()

        first = await client.post(
            "/api/v1/generations", headers=auth, json={"toolId": "txt2img", "inputs": {"input_text": "a fox"}}
        )
        body = await wait_terminal(client, first.json()["id"], auth)
        assert body["status"] == "succeeded"
        explicit = await client.post(
            "/api/v1/generations",
            headers=auth,
            json={"toolId": "txt2img", "inputs": {"input_text": "a fox", "steps": 12}},
        )
        c = app.state.container
        async with c.uow() as uow:
            made = {g.id: g for g in (await uow.generations.search(GenerationFilter(), limit=5, cursor=None)).items}
        assert made[first.json()["id"]].inputs["steps"] == 33
        assert made[first.json()["id"]].inputs["negative_prompt"] == "blurry"
        assert made[explicit.json()["id"]].inputs["steps"] == 12  # what the request says wins


async def test_a_bad_default_is_refused_with_the_reason_and_changes_nothing(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path) as (app, client):
        _aid, auth = await funded_key(app, "1")
        await client.put("/api/v1/preferences/txt2img", headers=auth, json={"inputs": {"steps": 25}})
        for body, status in (
            ({"inputs": {"width": 99999}}, 400),
            ({"inputs": {"input_text": "a prompt is not a default"}}, 400),
            ({"inputs": {"nope": 1}}, 400),
            ({"inputs": {"steps": [1, 2]}}, 400),
            ({"inputs": {}, "extra": 1}, 400),
        ):
            r = await client.put("/api/v1/preferences/txt2img", headers=auth, json=body)
            assert r.status_code == status, (body, r.text)
            assert r.json()["error"]["code"] == "INVALID_INPUT"
        unknown = await client.put("/api/v1/preferences/nosuchtool", headers=auth, json={"inputs": {}})
        assert unknown.status_code == 404
        assert (await client.get("/api/v1/preferences/txt2img", headers=auth)).json()["inputs"] == {"steps": 25}
        assert (await client.get("/api/v1/preferences/txt2img")).status_code == 401


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


async def _answer(rig: TelegramRig, chat: int, text: str) -> str:
    message = await rig.say(chat, text)
    (reply,) = rig.replies(chat, message["message_id"])
    return reply.text or ""


async def test_set_and_settings_in_telegram_keep_defaults_that_commands_can_override(
    db_url: str, tmp_path: Path, fake: FakeTelegram
) -> None:
    chat = 8101
    async with telegram_app(db_url, tmp_path, fake) as rig:
        account = await rig.fund(chat, "1")
        text = await _answer(rig, chat, '/set txt2img steps=31 negative_prompt="low quality"')
        assert "steps = 31" in text and "negative_prompt = low quality" in text
        assert "steps = 31" in await _answer(rig, chat, "/settings txt2img")
        assert "is not an input of /txt2img" in await _answer(rig, chat, "/set txt2img input_text=hi")
        assert "must be" in await _answer(rig, chat, "/set txt2img width=5")
        assert "Write name=value pairs" in await _answer(rig, chat, "/set txt2img just words")
        assert "no tool /nosuch" in await _answer(rig, chat, "/set nosuch steps=3")

        await rig.say(chat, "/txt2img a lake")
        await rig.say(chat, "/txt2img a lake steps=9")
        async with rig.container.uow() as uow:
            page = await uow.generations.search(GenerationFilter(account_id=account), limit=5, cursor=None)
        steps = sorted(g.inputs["steps"] for g in page.items)
        assert steps == [9, 31]
        assert "None: the tool's own defaults apply." in await _answer(rig, chat, "/set txt2img clear")


async def test_linking_moves_the_merged_accounts_defaults_and_the_survivors_own_win(
    db_url: str, tmp_path: Path
) -> None:
    async with running_app(db_url, tmp_path) as (app, client):
        c = app.state.container
        keep_aid, keep_auth = await funded_key(app, "0")
        web = await accounts.find_or_create(c.uow, c.clock, platform=Platform.WEB, platform_id="web-prefs-1")
        gone_aid = web.account.id
        gone_auth = {
            "Authorization": f"Bearer {(await api_keys.create(c.uow(), c.clock, gone_aid, secrets=c.secrets)).plain}"
        }
        await client.put("/api/v1/preferences/txt2img", headers=keep_auth, json={"inputs": {"steps": 10}})
        await client.put("/api/v1/preferences/txt2img", headers=gone_auth, json={"inputs": {"steps": 40}})
        await client.put("/api/v1/preferences/animate", headers=gone_auth, json={"inputs": {}})
        put = await client.put("/api/v1/preferences/img2img", headers=gone_auth, json={"inputs": {"input_seed": 77}})
        assert put.status_code == 200, put.text
        code = await linking.issue(c.uow(), c.clock, keep_aid, CodePurpose.LINK, secrets=c.secrets, platform="api")
        await linking.redeem_link(c.uow(), c.clock, code.code, account_id=gone_aid)
        survivor = await accounts.get(c.uow(), keep_aid)
        assert {i.platform for i in survivor.identities} == {Platform.API, Platform.WEB}
        txt = (await client.get("/api/v1/preferences/txt2img", headers=keep_auth)).json()["inputs"]
        img = (await client.get("/api/v1/preferences/img2img", headers=keep_auth)).json()["inputs"]
        assert txt == {"steps": 10} and img == {"input_seed": 77}


async def test_the_web_form_can_keep_its_settings_as_defaults_and_starts_from_them(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path) as (_app, client):
        page = await client.get("/")
        csrf = _csrf(page.text)
        await client.post("/signin/sandbox", data={"csrf": csrf})
        form = await client.get("/app?tool=txt2img")
        csrf = _csrf(form.text)
        assert 'name="save_defaults"' in form.text
        run = await client.post(
            "/app/run",
            data={"csrf": csrf, "tool": "txt2img", "input_text": "a kite", "steps": "27", "save_defaults": "yes"},
        )
        assert run.status_code == 303, run.text
        again = await client.get("/app?tool=txt2img")
        assert re.search(r'id="in-steps" name="steps" type="number"[^>]*value="27"', again.text), "steps not pre-filled"
        assert "a kite" not in again.text  # the prompt is never a default
        bad = await client.post(
            "/app/run",
            data={"csrf": csrf, "tool": "txt2img", "input_text": "a kite", "width": "5", "save_defaults": "yes"},
        )
        assert bad.status_code == 400 and "width" in bad.text
        assert re.search(r'name="steps"[^>]*value="27"', (await client.get("/app?tool=txt2img")).text)
