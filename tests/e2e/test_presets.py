"""Presets: defaults, allowed inputs, feature variants, deployment selection and failover with the right price."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image

from noema.adapters.backends.sandbox.catalog import InputDef
from noema.adapters.backends.sandbox.catalog_data import L40S
from noema.bootstrap import Container
from noema.domain.generation import Generation
from noema.domain.pricing import max_cost_nanos
from noema.ports import GenerationFilter
from tests.conftest import funded_key, running_app, wait_terminal
from tests.fakes.sandbox_catalog import copy_of, publish, withdraw

PRESETS = """
[presets.make]
description = "A picture with good defaults"
tools = ["ghost", "txt2img"]
user_inputs = ["input_text", "negative_prompt", "input_seed"]
defaults = { width = 1024, height = 1024, steps = 30, negative_prompt = "lowres, watermark" }

[presets.make.features]
style = "input_image"
pose = "pose_image"

[presets.make.variants]
style = ["img2img_style"]
"style+pose" = ["img2img_style_pose"]

[presets.turns]
tools = ["txt2img", "txt2img_twin"]
selection = "round_robin"

[presets.idle]
tools = ["txt2img", "txt2img_twin"]
selection = "least_busy"
"""


def _png(color: str) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 96), color).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture
async def app_client(
    db_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with the presets above; ``indirect`` parameters set how long a sandbox run takes."""
    presets = tmp_path / "presets.toml"
    presets.write_text(PRESETS)
    seconds = getattr(request, "param", 0.4)
    async with running_app(db_url, tmp_path, presets_file=str(presets), sandbox_run_seconds=seconds) as (app, client):
        c: Container = app.state.container
        sandbox = c.sandbox
        assert sandbox is not None
        pose = InputDef("97", "pose_image", "ComfyUIDeployExternalImage", "Pose", "The pose to follow.")
        style_pose = copy_of(sandbox, "img2img", as_name="img2img_style_pose")
        ghost = copy_of(sandbox, "txt2img", as_name="ghost", machine=L40S)
        publish(
            sandbox,
            ghost,
            copy_of(sandbox, "txt2img", as_name="txt2img_twin"),
            copy_of(sandbox, "img2img", as_name="img2img_style"),
            style_pose.__class__(**{**style_pose.__dict__, "inputs": (*style_pose.inputs, pose)}),
        )
        await c.catalog.refresh()
        withdraw(sandbox, ghost.id)  # Noema still lists it; the backend no longer runs it
        yield app, client


async def _generation(app: FastAPI, gid: str) -> Generation:
    c: Container = app.state.container
    async with c.uow() as uow:
        found = await uow.generations.get(gid)
    assert found is not None, gid
    return found


async def test_a_preset_fills_its_defaults_and_fails_over_to_the_next_deployment_at_its_price(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_client
    _aid, auth = await funded_key(app, "1")
    r = await client.post("/api/v1/presets/make/generations", headers=auth, json={"inputs": {"input_text": "a barn"}})
    assert r.status_code == 202, r.text
    done = await wait_terminal(client, r.json()["id"], auth)
    assert done["status"] == "succeeded", done
    g = await _generation(app, done["id"])
    assert g.tool_command == "txt2img" and g.gpu == "A10G" and g.rate_nanos_per_second == 337_000
    assert (g.inputs["width"], g.inputs["height"], g.inputs["steps"]) == (1024, 1024, 30)
    assert g.inputs["negative_prompt"] == "lowres, watermark"
    # The hold covered the dearer L40S; the charge is the A10G seconds that ran.
    assert g.hold_nanos > g.cost_nanos > 0
    assert g.cost_nanos == round(int(done["durationSeconds"] * 1000) * 337_000 / 1000)
    listed = (await client.get("/api/v1/presets", headers=auth)).json()
    assert {p["command"] for p in listed} == {"make", "turns", "idle"}
    assert next(p for p in listed if p["command"] == "make")["features"] == {
        "style": "input_image",
        "pose": "pose_image",
    }


async def test_a_feature_runs_its_variant_and_features_compose(app_client: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = app_client
    _aid, auth = await funded_key(app, "1")
    style = await client.post(
        "/api/v1/presets/make/generations",
        headers=auth,
        json={"inputs": {"input_text": "in this style", "input_image": _png("orange")}, "features": ["style"]},
    )
    both = await client.post(
        "/api/v1/presets/make/generations",
        headers=auth,
        json={
            "inputs": {"input_text": "a dancer", "input_image": _png("blue"), "pose_image": _png("gray")},
            "features": ["pose", "style"],
        },
    )
    assert style.status_code == both.status_code == 202, (style.text, both.text)
    for r, command in ((style, "img2img_style"), (both, "img2img_style_pose")):
        done = await wait_terminal(client, r.json()["id"], auth)
        assert done["status"] == "succeeded", done
        assert (await _generation(app, done["id"])).tool_command == command


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"inputs": {"input_text": "x"}, "features": ["canny"]}, "has no feature 'canny'; it has: pose, style"),
        ({"inputs": {"input_text": "x", "pose_image": _png("red")}, "features": ["pose"]}, "no variant for pose"),
        ({"inputs": {"input_text": "x"}, "features": ["style"]}, "needs an image in 'input_image'"),
        ({"inputs": {"input_text": "x", "steps": 5}}, "does not let you set 'steps'"),
    ],
)
async def test_a_preset_request_it_cannot_run_is_refused_by_name_and_holds_nothing(
    app_client: tuple[FastAPI, httpx.AsyncClient], body: dict[str, object], message: str
) -> None:
    app, client = app_client
    aid, auth = await funded_key(app, "1")
    r = await client.post("/api/v1/presets/make/generations", headers=auth, json=body)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]["message"]
    unknown = await client.post("/api/v1/presets/nosuch/generations", headers=auth, json={"inputs": {}})
    assert unknown.status_code == 404
    c: Container = app.state.container
    async with c.uow() as uow:
        assert (await uow.generations.search(GenerationFilter(account_id=aid), limit=5, cursor=None)).items == []


@pytest.mark.parametrize("app_client", [30.0], indirect=True)  # runs stay in flight while the test counts them
async def test_round_robin_takes_turns_and_least_busy_picks_the_idle_deployment(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_client
    _aid, auth = await funded_key(app, "1")
    turns = []
    for _ in range(3):
        r = await client.post("/api/v1/presets/turns/generations", headers=auth, json={"inputs": {"input_text": "a"}})
        turns.append((await _generation(app, r.json()["id"])).tool_command)
    assert turns == ["txt2img", "txt2img_twin", "txt2img"]
    # The three above are still running: txt2img has two, its twin one, so the twin is the least busy.
    _other, other_auth = await funded_key(app, "1")
    r = await client.post("/api/v1/presets/idle/generations", headers=other_auth, json={"inputs": {"input_text": "b"}})
    assert r.status_code == 202, r.text
    assert (await _generation(app, r.json()["id"])).tool_command == "txt2img_twin"


async def test_a_request_may_choose_the_machine_and_an_unknown_one_is_refused(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_client
    _aid, auth = await funded_key(app, "1")
    r = await client.post(
        "/api/v1/presets/make/generations", headers=auth, json={"inputs": {"input_text": "a"}, "machine": "a10g"}
    )
    assert r.status_code == 202, r.text
    g = await _generation(app, r.json()["id"])
    assert g.tool_command == "txt2img" and g.gpu == "A10G"
    c: Container = app.state.container
    # Only the A10G candidate was priced for the hold (not the L40S one): its 15 minutes at most.
    assert g.hold_nanos == max_cost_nanos(await c.catalog.find("txt2img")) == 303_300_000
    bad = await client.post(
        "/api/v1/presets/make/generations", headers=auth, json={"inputs": {"input_text": "a"}, "machine": "H100"}
    )
    assert bad.status_code == 400 and "runs on 'H100'" in bad.json()["error"]["message"]


async def test_operators_define_and_remove_presets_through_the_internal_api(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    from tests.conftest import ADMIN, PLATFORM

    app, client = app_client
    _aid, auth = await funded_key(app, "1")
    url = "/internal/v1/data/presets/quick"
    body = {"tools": ["txt2img"], "defaults": {"steps": 12}, "description": "Fast drafts"}
    assert (await client.put(url, headers=PLATFORM, json=body)).status_code == 403
    made = await client.put(url, headers=ADMIN, json=body)
    assert made.status_code == 200, made.text
    assert made.json()["source"] == "api" and made.json()["defaults"] == {"steps": 12}
    listed = {p["command"]: p["source"] for p in (await client.get("/internal/v1/data/presets", headers=ADMIN)).json()}
    assert listed == {"make": "file", "turns": "file", "idle": "file", "quick": "api"}

    r = await client.post("/api/v1/presets/quick/generations", headers=auth, json={"inputs": {"input_text": "a"}})
    assert r.status_code == 202, r.text
    assert (await _generation(app, r.json()["id"])).inputs["steps"] == 12

    bad = await client.put(url, headers=ADMIN, json={"tools": [], "defaults": {}})
    assert bad.status_code == 400 and "non-empty list" in bad.json()["error"]["message"]
    clash = await client.put("/internal/v1/data/presets/make", headers=ADMIN, json=body)
    assert clash.status_code == 409 and "NOEMA_PRESETS_FILE" in clash.json()["error"]["message"]
    assert (await client.delete(url, headers=ADMIN)).status_code == 204
    assert (await client.delete(url, headers=ADMIN)).status_code == 404
    gone = await client.post("/api/v1/presets/quick/generations", headers=auth, json={"inputs": {}})
    assert gone.status_code == 404
