"""``NOEMA_BACKEND=comfyui,sandbox``: the own ComfyUI servers and the sandbox behind one Noema.

The own servers are the fake ComfyUI; the sandbox speaks ComfyDeploy's API. On SQLite and PostgreSQL.

The workflow ``upscale`` is on both (the sandbox's catalog has an ``upscale`` taking ``input_image``):
the own server runs it, the sandbox takes it when the server is down or full.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from noema.bootstrap import Container
from noema.domain.generation import Generation
from noema.domain.pricing import parse_rates
from noema.services import economy
from noema.services.settlement import cost_of_run
from tests.conftest import funded_key, running_app, wait_terminal
from tests.e2e.test_comfyui_backend import picture_uri, start, until
from tests.fakes.comfyui import FakeComfyUI

EXAMPLES = Path(__file__).parents[2] / "examples" / "workflows"
RATES = parse_rates({})
#: The sandbox's upscale, as one workflow file for both backends declares it (ComfyDeploy's input nodes).
UPSCALE = {
    "1": {
        "class_type": "ComfyUIDeployExternalImage",
        "inputs": {"input_id": "input_image", "display_name": "Image", "description": "The picture to work on."},
    },
    "2": {"class_type": "ImageScaleBy", "inputs": {"image": ["1", 0], "upscale_method": "lanczos", "scale_by": 2.0}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "both_upscale"}},
}
#: A job that keeps the server busy for a few node-seconds of the fake.
LONG = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 2, "color": 0x123456}},
    "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 9, "sigma": 4.0}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "long"}},
}


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeComfyUI]:
    server = FakeComfyUI(tmp_path / "fake-comfyui", node_seconds=0.1)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def both(tmp_path: Path, fake: FakeComfyUI, **more: object) -> dict[str, object]:
    folder = tmp_path / "workflows"
    folder.mkdir()
    for name in ("blur.json", "blur.toml"):
        shutil.copy(EXAMPLES / name, folder / name)
    (folder / "upscale.json").write_text(json.dumps(UPSCALE))
    (folder / "long.json").write_text(json.dumps(LONG))
    return {
        "backend": "comfyui,sandbox",
        "comfyui_servers": f"{fake.url}=A10G",
        "comfyui_workflows_dir": str(folder),
        "media_dir": str(tmp_path / "media"),
        **more,
    }


async def generation(app: FastAPI, gid: str) -> Generation:
    c: Container = app.state.container
    async with c.uow() as tx:
        found = await tx.generations.get(gid)
    assert found is not None
    return found


async def wallet(app: FastAPI, aid: str) -> tuple[int, int]:
    c: Container = app.state.container
    account = await economy.wallet(c.uow(), aid)
    return account.balance_nanos, account.held_nanos


async def test_both_catalogs_are_joined_and_each_tool_runs_on_the_backend_that_has_it(
    db_url: str, tmp_path: Path, fake: FakeComfyUI
) -> None:
    async with running_app(db_url, tmp_path, **both(tmp_path, fake)) as (app, client):
        aid, auth = await funded_key(app, "1")
        tools = {t["command"]: t for t in (await client.get("/api/v1/tools", headers=auth)).json()}
        assert tools["blur"]["backend"] == "ComfyUI" and tools["blur"]["gpu"] == "A10G"
        assert "Sandbox" in tools["txt2img"]["backend"] and tools["txt2img"]["enabled"]
        # The name on both is the own servers' tool; the sandbox's copy is a hidden stand-in.
        assert tools["upscale"]["backend"] == "ComfyUI" and "upscale_cloud" not in tools
        own = await start(client, auth, "blur", {"image": picture_uri(), "radius": 3})
        cloud = await start(client, auth, "txt2img", {"input_text": "a lighthouse"})
        costs = 0
        for gid, mine, url in ((own, True, "http://noema.test/media/"), (cloud, False, "http://noema.test/sandbox/")):
            body = await wait_terminal(client, gid, auth, seconds=60)
            assert body["status"] == "succeeded", body
            assert body["outputs"][0]["url"].startswith(url), body["outputs"]
            g = await generation(app, gid)
            assert g.run_id is not None and g.run_id.startswith("cui_") is mine
            costs += g.cost_nanos
        assert await wallet(app, aid) == (1_000_000_000 - costs, 0)
        c: Container = app.state.container
        assert await economy.verify(c.uow()) == (1, [])


async def test_a_tool_on_both_runs_on_the_own_server_and_crosses_to_the_sandbox_when_it_is_down(
    db_url: str, tmp_path: Path, fake: FakeComfyUI
) -> None:
    async with running_app(db_url, tmp_path, **both(tmp_path, fake)) as (app, client):
        aid, auth = await funded_key(app, "1")
        first = await wait_terminal(client, await start(client, auth, "upscale", {"input_image": picture_uri()}), auth)
        assert first["status"] == "succeeded", first
        on_own = await generation(app, first["id"])
        assert on_own.gpu == "A10G" and on_own.rate_nanos_per_second == RATES["A10G"]
        assert on_own.run_id is not None and on_own.run_id.startswith("cui_")

        fake.stop()
        c: Container = app.state.container
        comfyui = c.comfyui
        assert comfyui is not None
        server = comfyui.servers[0]

        async def down() -> bool:
            await comfyui.scheduler.check(server)
            return not server.up

        await until(down, 30)
        gid = await start(client, auth, "upscale", {"input_image": picture_uri()})
        second = await wait_terminal(client, gid, auth, seconds=60)
        assert second["status"] == "succeeded", second
        on_cloud = await generation(app, gid)
        # The sandbox's deployment ran it, at the sandbox machine's T4 price, charged once.
        assert on_cloud.tool_command == "upscale_cloud" and on_cloud.gpu == "T4"
        assert on_cloud.rate_nanos_per_second == RATES["T4"] and not str(on_cloud.run_id).startswith("cui_")
        assert on_cloud.cost_nanos == cost_of_run(on_cloud) > 0
        assert second["outputs"][0]["url"].startswith("http://noema.test/sandbox/")
        assert await wallet(app, aid) == (1_000_000_000 - on_own.cost_nanos - on_cloud.cost_nanos, 0)
        assert await economy.verify(c.uow()) == (1, [])


async def test_when_the_own_server_is_full_the_run_goes_to_the_sandbox_instead_of_waiting(
    db_url: str, tmp_path: Path, fake: FakeComfyUI
) -> None:
    fake.node_seconds = 1.0
    async with running_app(db_url, tmp_path, **both(tmp_path, fake, comfyui_slots=1)) as (app, client):
        aid, auth = await funded_key(app, "1")
        busy = await start(client, auth, "long", {})
        gid = await start(client, auth, "upscale", {"input_image": picture_uri()})
        body = await wait_terminal(client, gid, auth, seconds=60)
        assert body["status"] == "succeeded", body
        g = await generation(app, gid)
        assert g.gpu == "T4" and g.tool_command == "upscale_cloud"
        long = await wait_terminal(client, busy, auth, seconds=60)
        assert long["status"] == "succeeded", long
        assert (await generation(app, busy)).gpu == "A10G"
        assert await wallet(app, aid) == (1_000_000_000 - g.cost_nanos - (await generation(app, busy)).cost_nanos, 0)
