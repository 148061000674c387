"""Every number input has bounds, an out-of-range value is refused naming them, and an operator can change them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from noema.bootstrap import Container
from noema.services import economy
from tests.conftest import funded_key, running_app

_NUMERIC = ("number", "integer", "slider")


async def _state(app: FastAPI, aid: str, client: httpx.AsyncClient, auth: dict[str, str]) -> tuple[int, int, int]:
    c: Container = app.state.container
    wallet = await economy.wallet(c.uow(), aid)
    items = (await client.get("/api/v1/generations", headers=auth)).json()["items"]
    return wallet.balance_nanos, wallet.held_nanos, len(items)


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


async def _sign_in(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    csrf = _csrf(page.text)
    await client.post("/signin/sandbox", data={"csrf": csrf})


@pytest.mark.parametrize("steps", [99999999, -5, 10**12, "1e12"])
async def test_steps_out_of_range_are_refused_naming_the_bounds_and_nothing_is_held_or_created(
    db_url: str, tmp_path: Path, steps: object
) -> None:
    async with running_app(db_url, tmp_path) as (app, client):
        aid, auth = await funded_key(app, "1")
        body = {"toolId": "txt2img", "inputs": {"input_text": "a fox", "steps": steps}}
        r = await client.post("/api/v1/generations", headers=auth, json=body)
        assert (r.status_code, r.json()["error"]["code"]) == (400, "INVALID_INPUT"), r.text
        assert "must be between 1 and 100" in r.json()["error"]["message"]
        assert r.json()["error"]["details"]["field"] == "steps"
        assert await _state(app, aid, client, auth) == (1_000_000_000, 0, 0)


async def test_every_number_input_of_every_sandbox_tool_has_both_bounds(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path) as (app, client):
        _aid, auth = await funded_key(app, "1")
        tools = (await client.get("/api/v1/tools", headers=auth)).json()
        numbers = [(t["command"], i) for t in tools for i in t["inputs"] if i["type"] in _NUMERIC]
        assert {name for _, i in numbers for name in [i["name"]]} >= {"steps", "width", "height", "strength", "fps"}
        unbounded = [f"{cmd}.{i['name']}" for cmd, i in numbers if i["minimum"] is None or i["maximum"] is None]
        assert unbounded == []
        assert all(i["minimum"] <= i["default"] <= i["maximum"] for _, i in numbers if i["default"] is not None)


async def test_an_operator_override_changes_the_bounds_everywhere(db_url: str, tmp_path: Path) -> None:
    overrides = json.dumps({"txt2img": {"bounds": {"steps": [5, 10]}}})
    async with running_app(db_url, tmp_path, tool_overrides=overrides) as (app, client):
        aid, auth = await funded_key(app, "1")
        tool = (await client.get("/api/v1/tools/txt2img", headers=auth)).json()
        steps = next(i for i in tool["inputs"] if i["name"] == "steps")
        assert (steps["minimum"], steps["maximum"]) == (5, 10)
        body: dict[str, Any] = {"toolId": "txt2img", "inputs": {"input_text": "a fox", "steps": 20}}
        r = await client.post("/api/v1/generations", headers=auth, json=body)
        assert r.status_code == 400 and "must be between 5 and 10" in r.json()["error"]["message"]
        assert await _state(app, aid, client, auth) == (1_000_000_000, 0, 0)
        body["inputs"]["steps"] = 7
        assert (await client.post("/api/v1/generations", headers=auth, json=body)).status_code == 202
        await _sign_in(client)
        form = (await client.get("/app?tool=txt2img")).text
        assert re.search(r'<input id="in-steps"\s+name="steps" type="number" min="5" max="10"', form), form


async def test_the_web_form_carries_the_bounds_and_refuses_a_value_outside_them(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path) as (_app, client):
        await _sign_in(client)
        form = (await client.get("/app?tool=txt2img")).text
        assert re.search(r'<input id="in-steps"\s+name="steps" type="number" min="1" max="100"', form)
        csrf = _csrf(form)
        data = {"csrf": csrf, "tool": "txt2img", "input_text": "a fox", "steps": "99999999"}
        r = await client.post("/app/run", data=data)
        assert r.status_code == 400 and "/app/generations/" not in r.headers.get("location", "")
        assert re.search(r'<input id="in-steps" aria-invalid="true" aria-describedby="err-steps" autofocus', r.text)
        assert '<p class="field-error" id="err-steps" role="alert">Steps must be between 1 and 100.</p>' in r.text
        assert 'class="error"' not in r.text  # said at the field, not above the form


async def test_an_all_spaces_prompt_is_refused_at_the_field_by_its_display_name(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path) as (_app, client):
        await _sign_in(client)
        form = (await client.get("/app?tool=txt2img")).text
        csrf = _csrf(form)
        r = await client.post("/app/run", data={"csrf": csrf, "tool": "txt2img", "input_text": "   \t  "})
        assert r.status_code == 400
        assert '<p class="field-error" id="err-input_text" role="alert">Prompt is required.</p>' in r.text
        assert '<textarea id="in-input_text" aria-invalid="true" aria-describedby="err-input_text"' in r.text
        assert "(input_text)" not in r.text
