"""The tool picker opens on the tool you use most (txt2img on a fresh account) and says why a tool is unavailable."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.conftest import funded_key, running_app, wait_terminal


def _selected(html: str) -> str:
    found = re.search(r'<option value="([a-z0-9_]+)"\s+selected', html)
    assert found, "no tool is selected in the picker"
    return found.group(1)


async def _sign_in(client: httpx.AsyncClient, key: str) -> None:
    page = await client.get("/")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    assert (await client.post("/signin", data={"api_key": key, "csrf": csrf.group(1)})).status_code == 303


async def test_the_picker_opens_on_txt2img_then_on_the_most_used_tool_and_says_why_a_tool_is_off(
    db_url: str, tmp_path: Path
) -> None:
    async with running_app(db_url, tmp_path) as (app, client):
        _, auth = await funded_key(app, "1")
        await _sign_in(client, auth["Authorization"].removeprefix("Bearer "))
        fresh = (await client.get("/app")).text
        assert _selected(fresh) == "txt2img"
        # A disabled tool says why, as `noema tools list` does.
        disabled = re.findall(r"<option [^>]*disabled title=\"([^\"]+)\"[^>]*>\s*([^<]+?)\s*</option>", fresh)
        assert disabled, "the sandbox has a tool without a price; the picker should list it as unavailable"
        for reason, label in disabled:
            assert "unavailable: " in label and reason[:20] in label, (reason, label)

        for _ in range(2):
            run = await client.post(
                "/api/v1/generations", headers=auth, json={"toolId": "animate", "inputs": {"input_text": "waves"}}
            )
            assert run.status_code == 202, run.text
            assert (await wait_terminal(client, run.json()["id"], auth))["status"] == "succeeded"
        assert _selected((await client.get("/app")).text) == "animate"
        assert _selected((await client.get("/app?tool=txt2img")).text) == "txt2img"  # asking still wins
