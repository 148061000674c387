"""Tool visibility at every door: a hidden or admin-only tool answers like an unknown one to whoever may not use it.

``txt2img`` is hidden (presets may route to it; accounts may not name it), ``animate`` is for the admin only.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from noema.bootstrap import Container
from noema.ports import GenerationFilter
from noema.services import economy
from tests.conftest import ADMIN, PLATFORM, funded_key, running_app, wait_terminal

OVERRIDES = json.dumps({"txt2img": {"visibility": "hidden"}, "animate": {"visibility": "admin"}})
PRESETS = """
[presets.picture]
description = "A picture (through a hidden deployment)"
tools = ["txt2img"]

[presets.motion]
description = "Routes to an admin-only tool"
tools = ["animate"]
"""
INTERNAL = "/internal/v1/data"


@pytest.fixture
async def app_client(db_url: str, tmp_path: Path) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with one hidden and one admin-only tool, and presets over them."""
    presets = tmp_path / "presets.toml"
    presets.write_text(PRESETS)
    async with running_app(db_url, tmp_path, tool_overrides=OVERRIDES, presets_file=str(presets)) as pair:
        yield pair


async def _generations(app: FastAPI, aid: str) -> int:
    c: Container = app.state.container
    async with c.uow() as uow:
        return len((await uow.generations.search(GenerationFilter(account_id=aid), limit=50, cursor=None)).items)


def _same_as_unknown(r: httpx.Response, unknown: httpx.Response, name: str) -> None:
    assert r.status_code == unknown.status_code == 404, r.text
    mine, theirs = r.json()["error"], unknown.json()["error"]
    assert mine["code"] == theirs["code"] == "NOT_FOUND"
    assert mine["message"] == theirs["message"].replace("nosuchtool", name)


async def test_hidden_and_admin_only_tools_answer_like_unknown_ones_on_the_public_api(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_client
    aid, auth = await funded_key(app, "1")
    listed = {t["command"] for t in (await client.get("/api/v1/tools", headers=auth)).json()}
    assert "img2img" in listed and not listed & {"txt2img", "animate"}
    unknown = await client.get("/api/v1/tools/nosuchtool", headers=auth)
    unknown_run = await client.post("/api/v1/generations", headers=auth, json={"toolId": "nosuchtool", "inputs": {}})
    for name in ("animate", "txt2img"):
        _same_as_unknown(await client.get(f"/api/v1/tools/{name}", headers=auth), unknown, name)
        run = await client.post(
            "/api/v1/generations", headers=auth, json={"toolId": name, "inputs": {"input_text": "a fox"}}
        )
        _same_as_unknown(run, unknown_run, name)
        defaults = await client.get(f"/api/v1/tools/{name}/defaults", headers=auth)
        assert defaults.status_code == 404, defaults.text
    assert await _generations(app, aid) == 0
    assert (await economy.wallet(app.state.container.uow(), aid)).balance_nanos == 1_000_000_000


async def test_a_preset_runs_a_hidden_candidate_but_never_an_admin_only_one(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_client
    aid, auth = await funded_key(app, "1")
    motion = await client.post("/api/v1/presets/motion/generations", headers=auth, json={"inputs": {"input_text": "x"}})
    assert motion.status_code == 404 and motion.json()["error"]["code"] == "NOT_FOUND", motion.text
    assert await _generations(app, aid) == 0
    picture = await client.post(
        "/api/v1/presets/picture/generations", headers=auth, json={"inputs": {"input_text": "a barn"}}
    )
    assert picture.status_code == 202, picture.text
    assert (await wait_terminal(client, picture.json()["id"], auth))["status"] == "succeeded"


async def test_only_the_admin_client_runs_an_admin_only_tool_and_accounts_cannot_rerun_it(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_client
    aid, auth = await funded_key(app, "1")
    body = {"masterAccountId": aid, "toolId": "animate", "inputs": {"input_text": "a wave"}}
    refused = await client.post(f"{INTERNAL}/generations", headers=PLATFORM, json=body)
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "NOT_FOUND", refused.text
    ran = await client.post(f"{INTERNAL}/generations", headers=ADMIN, json=body)
    assert ran.status_code == 201, ran.text
    done = await wait_terminal(client, ran.json()["id"], auth)
    assert done["status"] == "succeeded", done
    before = (await economy.wallet(app.state.container.uow(), aid)).balance_nanos
    rerun = await client.post(f"/api/v1/generations/{done['id']}/rerun", headers=auth)
    assert rerun.status_code == 404 and rerun.json()["error"]["code"] == "NOT_FOUND", rerun.text
    assert await _generations(app, aid) == 1
    assert (await economy.wallet(app.state.container.uow(), aid)).balance_nanos == before


async def test_the_web_form_neither_shows_nor_runs_hidden_or_admin_only_tools(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _app, client = app_client
    page = await client.get("/")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    await client.post("/signin/sandbox", data={"csrf": csrf.group(1)})
    form = await client.get("/app?tool=animate")
    assert form.status_code == 200
    assert 'value="animate"' not in form.text and 'value="txt2img"' not in form.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf is not None
    for name in ("animate", "txt2img"):
        r = await client.post("/app/run", data={"csrf": csrf.group(1), "tool": name, "input_text": "a fox"})
        assert r.status_code == 404 and "no tool called" in r.text, r.text[:300]
    history = await client.get("/app/history")
    assert "Nothing yet" in history.text
