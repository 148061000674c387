"""LoRA triggers end to end: the public API, the embedded sandbox, settlement's usage counts."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from noema.bootstrap import Container
from noema.domain.loras import Family, Lora, Visibility
from tests.conftest import ADMIN, funded_key, running_app, wait_terminal

CAT = Lora(
    slug="cat",
    display_name="Cat",
    triggers=("cat",),
    cognates=(),
    default_weight=0.8,
    family=Family.SDXL,
    owner_id=None,
    visibility=Visibility.PUBLIC,
)


async def _save(app: FastAPI, lora: Lora = CAT, **changes: Any) -> None:
    c: Container = app.state.container
    await c.loras.save(dataclasses.replace(lora, **changes))


async def _uses(app: FastAPI, slug: str) -> int:
    c: Container = app.state.container
    return (await c.loras.get(slug)).lora.usage_count


async def _run(client: httpx.AsyncClient, auth: dict[str, str], prompt: str, tool: str = "txt2img") -> httpx.Response:
    return await client.post(
        "/api/v1/generations", headers=auth, json={"toolId": tool, "inputs": {"input_text": prompt}}
    )


async def _sent_inputs(app: FastAPI, client: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    """What the sandbox backend received for a run (read with the sandbox's own key)."""
    c: Container = app.state.container
    assert c.sandbox is not None
    key = c.sandbox.config.api_key
    run = await client.get(f"/sandbox/api/run/{run_id}", headers={"Authorization": f"Bearer {key}"})
    assert run.status_code == 200, run.text
    inputs: dict[str, Any] = run.json()["workflow_inputs"]
    return inputs


async def test_a_trigger_word_puts_its_lora_into_the_submitted_prompt_and_the_answer(
    db_url: str, tmp_path: Path
) -> None:
    async with running_app(db_url, tmp_path) as (app, client):
        aid, auth = await funded_key(app, "1")
        await _save(app)
        r = await _run(client, auth, "a cat on a roof")
        assert r.status_code == 202, r.text
        body = r.json()
        assert body["loras"] == [{"slug": "cat", "weight": 0.8, "trigger": "cat", "source": "trigger"}]
        assert body["rawPrompt"] == "a cat on a roof" and body["loraWarnings"] == []
        assert body["inputs"]["input_text"] == "a <lora:cat:0.8> cat on a roof"
        assert (await _sent_inputs(app, client, body["runId"]))["input_text"] == "a <lora:cat:0.8> cat on a roof"
        done = await wait_terminal(client, body["id"], auth)
        assert done["status"] == "succeeded" and done["loras"] == body["loras"]
        assert await _uses(app, "cat") == 1
        internal = (await client.get(f"/internal/v1/data/generations/{body['id']}", headers=ADMIN)).json()
        assert internal["loras"] == body["loras"] and internal["rawPrompt"] == "a cat on a roof"
        created = await client.post(
            "/internal/v1/data/generations",
            headers=ADMIN,
            json={"masterAccountId": aid, "toolId": "txt2img", "inputs": {"input_text": "one cat"}},
        )
        assert created.status_code == 201 and created.json()["loras"][0]["slug"] == "cat"


async def test_a_failed_run_does_not_count_as_a_use(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path, sandbox_faults="run_fail=1") as (app, client):
        _, auth = await funded_key(app, "1")
        await _save(app)
        r = await _run(client, auth, "a cat")
        assert r.json()["loras"][0]["slug"] == "cat"
        assert (await wait_terminal(client, r.json()["id"], auth))["status"] == "failed"
        assert await _uses(app, "cat") == 0


async def test_a_private_lora_works_for_its_owner_only_and_is_not_revealed_to_others(
    db_url: str, tmp_path: Path
) -> None:
    async with running_app(db_url, tmp_path) as (app, client):
        owner, owner_auth = await funded_key(app, "1")
        _, stranger_auth = await funded_key(app, "1")
        await _save(app, slug="secret", triggers=("moon",), owner_id=owner, visibility=Visibility.PRIVATE)
        theirs = (await _run(client, stranger_auth, "moon <lora:secret:1>")).json()
        assert theirs["loras"] == [] and theirs["inputs"]["input_text"] == "moon"
        assert theirs["loraWarnings"] == ["Removed the tag of an unknown LoRA 'secret'."]
        mine = (await _run(client, owner_auth, "moon")).json()
        assert [a["slug"] for a in mine["loras"]] == ["secret"]
        assert mine["inputs"]["input_text"] == "<lora:secret:0.8> moon"


async def test_a_lora_of_another_family_is_left_out_and_applies_on_its_own_family(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path) as (app, client):
        _, auth = await funded_key(app, "1")
        await _save(app, slug="anime", triggers=("anime",), family=Family.SD15, default_weight=1.0)
        on_sdxl = (await _run(client, auth, "anime <lora:anime:1> girl")).json()
        assert on_sdxl["loras"] == [] and on_sdxl["inputs"]["input_text"] == "anime girl"
        assert on_sdxl["loraWarnings"] == [
            "Removed the tag of LoRA 'anime': it is for SD1.5 models, this tool uses SDXL."
        ]
        on_sd15 = (await _run(client, auth, "anime girl", tool="animate")).json()
        assert on_sd15["loras"] == [{"slug": "anime", "weight": 1.0, "trigger": "anime", "source": "trigger"}]
        assert (await _sent_inputs(app, client, on_sd15["runId"]))["input_text"] == "<lora:anime:1> anime girl"


async def test_malformed_tags_and_wild_weights_give_warnings_not_errors(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path) as (app, client):
        _, auth = await funded_key(app, "1")
        await _save(app)
        r = await _run(client, auth, "<lora:> <lora:x:abc> a cat:999 <lora:unfinished")
        assert r.status_code == 202, r.text
        assert r.json()["inputs"]["input_text"] == "a <lora:cat:2> cat"
        assert r.json()["loraWarnings"] == [
            "Removed the malformed LoRA tag '<lora:>'; write <lora:name:0.8>.",
            "Removed the malformed LoRA tag '<lora:x:abc>'; write <lora:name:0.8>.",
            "Weight '999' for 'cat' is outside -1..2; used 2.",
            "Removed the unfinished LoRA tag '<lora:unfinished'.",
        ]
        slider = (await _run(client, auth, "a <lora:cat:-1> cat")).json()
        assert slider["loras"] == [{"slug": "cat", "weight": -1.0, "trigger": "cat", "source": "tag"}]
        assert slider["loraWarnings"] == []  # a negative weight within the bounds serves slider LoRAs
        far = (await _run(client, auth, "cat:-7 dog")).json()
        assert far["loraWarnings"] == ["Weight '-7' for 'cat' is outside -1..2; used -1."]


async def test_a_ten_thousand_word_prompt_gets_the_length_error_not_a_500(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path) as (app, client):
        _, auth = await funded_key(app, "1")
        await _save(app)
        r = await _run(client, auth, "cat " * 10_000)
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["code"] == "INVALID_INPUT" and "too long: at most 4000 characters" in error["message"]
        assert error["details"] == {"field": "input_text"}
        assert (await client.get("/api/v1/generations", headers=auth)).json()["items"] == []


async def test_a_prompt_its_tags_push_past_the_limit_is_refused_saying_so(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path) as (app, client):
        _, auth = await funded_key(app, "1")
        await _save(app)
        r = await _run(client, auth, "cat " + "x" * 3990)
        assert r.status_code == 400
        assert r.json()["error"]["message"].startswith("With its LoRA tags the prompt is 4009 characters")
        assert (await client.get("/api/v1/generations", headers=auth)).json()["items"] == []


async def test_loras_past_the_configured_maximum_are_dropped_with_a_warning(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path, max_loras_per_prompt=1) as (app, client):
        _, auth = await funded_key(app, "1")
        await _save(app)
        await _save(app, slug="dog", triggers=("dog",))
        body = (await _run(client, auth, "a cat and a dog")).json()
        assert [a["slug"] for a in body["loras"]] == ["cat"]
        assert body["inputs"]["input_text"] == "a <lora:cat:0.8> cat and a dog"
        assert body["loraWarnings"] == ["At most 1 LoRAs per prompt; left out: dog."]
        await wait_terminal(client, body["id"], auth)
        assert (await _uses(app, "cat"), await _uses(app, "dog")) == (1, 0)


async def test_a_tool_without_a_prompt_keeps_its_inputs_and_reports_no_loras(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path) as (app, client):
        _, auth = await funded_key(app, "1")
        await _save(app)
        r = await client.post(
            "/api/v1/generations",
            headers=auth,
            json={"toolId": "upscale", "inputs": {"input_image": "https://example.com/cat.png"}},
        )
        assert r.status_code == 202, r.text
        assert (r.json()["loras"], r.json()["loraWarnings"], r.json()["rawPrompt"]) == ([], [], None)


async def test_the_sandbox_tools_carry_the_family_of_their_checkpoints(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path) as (app, client):
        _, auth = await funded_key(app, "0")
        tools = {t["command"]: t["baseModel"] for t in (await client.get("/api/v1/tools", headers=auth)).json()}
        assert tools == {
            "txt2img": "SDXL",
            "img2img": "SDXL",
            "animate": "SD1.5",
            "flux_pro": "FLUX",
            "upscale": None,
            "caption": None,
        }


async def test_the_web_card_shows_the_applied_loras_and_the_warnings(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path) as (app, client):
        await _save(app)
        page = await client.get("/")
        await client.post("/signin/sandbox", data={"csrf": _csrf(page.text)})
        form = {"csrf": _csrf((await client.get("/app?tool=txt2img")).text), "tool": "txt2img"}
        r = await client.post("/app/run", data={**form, "input_text": "a cat <lora:>"})
        assert r.status_code == 303, r.text
        card = await client.get(r.headers["location"])
        assert "LoRAs: cat (0.8)" in card.text and "Removed the malformed LoRA tag" in card.text


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)
