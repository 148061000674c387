"""Self-hosted ComfyUI end to end: Noema's public API with ``NOEMA_BACKEND=comfyui`` on the fake and the real server.

Each test runs against the fake ComfyUI (one per test, its knobs its own) and the real 0.3.64 peer
(the session's shared one, marker ``comfyui``), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import random
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image

from noema.bootstrap import Container
from noema.domain.pricing import charge_nanos
from noema.services import economy
from tests.conftest import funded_key, running_app, wait_terminal
from tests.fakes.comfyui import FakeComfyUI
from tests.fakes.comfyui_peer import Server

EXAMPLES = Path(__file__).parents[2] / "examples" / "workflows"
A10G_RATE = 337_000  # nanos per second


@dataclass
class Comfy:
    """The server under test and how big a "long" job must be to run for a few seconds on it."""

    server: Server
    long_side: int
    long_batch: int
    long_rounds: int  #: blur-and-sharpen rounds: an interrupt lands between nodes, so many small ones


@pytest.fixture(params=["fake", pytest.param("real", marks=pytest.mark.comfyui)])
def comfy(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Comfy]:
    if request.param == "real":
        yield Comfy(request.getfixturevalue("real_comfyui"), long_side=1024, long_batch=2, long_rounds=8)
        return
    fake = FakeComfyUI(tmp_path_factory.mktemp("fake-comfyui"), node_seconds=0.2)
    url = fake.start()
    try:
        yield Comfy(Server("fake", url, fake), long_side=64, long_batch=2, long_rounds=1)
    finally:
        fake.stop()


def workflows(folder: Path, comfy: Comfy) -> Path:
    """The examples the tests use, a workflow the server refuses, and a long job."""
    folder.mkdir()
    for name in ("blur.json", "blur.toml", "sdxl_txt2img.json", "sdxl_txt2img.toml"):
        shutil.copy(EXAMPLES / name, folder / name)
    refused = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "no-such-picture.png"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "refused"}},
    }
    (folder / "refused.json").write_text(json.dumps(refused))
    side, batch = comfy.long_side, comfy.long_batch
    # A colour of its own: ComfyUI caches nodes by their inputs, and a cached job would not run for long.
    color = random.randrange(1, 0xFFFFFF)
    long: dict[str, Any] = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": side, "height": side, "batch_size": batch, "color": color},
        },
    }
    last = "1"
    for n in range(comfy.long_rounds):
        blur, sharpen = str(2 * n + 2), str(2 * n + 3)
        long[blur] = {"class_type": "ImageBlur", "inputs": {"image": [last, 0], "blur_radius": 9, "sigma": 4.0}}
        sharp = {"image": [blur, 0], "sharpen_radius": 9, "sigma": 4.0, "alpha": 2.0}
        long[sharpen] = {"class_type": "ImageSharpen", "inputs": sharp}
        last = sharpen
    long[str(2 * comfy.long_rounds + 2)] = {
        "class_type": "SaveImage",
        "inputs": {"images": [last, 0], "filename_prefix": "long"},
    }
    (folder / "long.json").write_text(json.dumps(long))
    return folder


def settings(tmp_path: Path, comfy: Comfy, **more: object) -> dict[str, object]:
    return {
        "backend": "comfyui",
        "comfyui_servers": f"{comfy.server.url}=A10G",
        "comfyui_workflows_dir": str(workflows(tmp_path / "workflows", comfy)),
        "media_dir": str(tmp_path / "media"),
        **more,
    }


def picture_uri(width: int = 24, height: int = 16) -> str:
    image = Image.new("RGB", (width, height))
    image.putdata([(x * 10 % 256, y * 15 % 256, 40) for y in range(height) for x in range(width)])
    out = io.BytesIO()
    image.save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


async def start(client: httpx.AsyncClient, auth: dict[str, str], tool: str, inputs: dict[str, Any]) -> str:
    r = await client.post("/api/v1/generations", headers=auth, json={"toolId": tool, "inputs": inputs})
    assert r.status_code == 202, r.text
    gid: str = r.json()["id"]
    return gid


async def balance(app: FastAPI, aid: str) -> tuple[int, int]:
    c: Container = app.state.container
    account = await economy.wallet(c.uow(), aid)
    return account.balance_nanos, account.held_nanos


def server_history(comfy: Comfy) -> dict[str, Any]:
    with comfy.server.client() as http:
        found: dict[str, Any] = http.get("/history").json()
        return found


def server_queue(comfy: Comfy) -> list[str]:
    with comfy.server.client() as http:
        queue = http.get("/queue").json()
    return [item[1] for item in queue["queue_running"] + queue["queue_pending"]]


async def prompt_of(app: FastAPI, gid: str) -> str | None:
    c: Container = app.state.container
    assert c.comfyui is not None
    async with c.uow() as tx:
        generation = await tx.generations.get(gid)
    assert generation is not None and generation.run_id is not None
    return c.comfyui.scheduler.runs[generation.run_id].prompt_id


async def until(check: Any, seconds: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the condition did not come true in time")
        await asyncio.sleep(0.05)


async def test_an_uploaded_picture_is_blurred_served_from_noemas_media_and_charged_the_servers_gpu_time(
    db_url: str, tmp_path: Path, comfy: Comfy
) -> None:
    async with running_app(db_url, tmp_path, **settings(tmp_path, comfy)) as (app, client):
        aid, auth = await funded_key(app, "1")
        gid = await start(client, auth, "blur", {"image": picture_uri(), "radius": 3})
        body = await wait_terminal(client, gid, auth, seconds=60)
        assert body["status"] == "succeeded", body
        output = body["outputs"][0]
        assert output["kind"] == "image" and output["url"].startswith("http://noema.test/media/")
        served = await client.get(output["url"])
        assert served.status_code == 200 and served.headers["x-content-type-options"] == "nosniff"
        assert served.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(served.content)).size == (24, 16)
        # The bill is the server's own execution_start → execution_success, at the A10G rate.
        prompt_id = await prompt_of(app, gid)
        messages = dict(server_history(comfy)[str(prompt_id)]["status"]["messages"])
        ms = messages["execution_success"]["timestamp"] - messages["execution_start"]["timestamp"]
        cost = charge_nanos(A10G_RATE, ms)
        assert int(body["costUsd"].replace(".", "")) == cost
        assert await balance(app, aid) == (1_000_000_000 - cost, 0)
        c: Container = app.state.container
        assert await economy.verify(c.uow()) == (1, [])


async def test_a_workflow_the_server_refuses_fails_in_words_and_charges_nothing(
    db_url: str, tmp_path: Path, comfy: Comfy
) -> None:
    async with running_app(db_url, tmp_path, **settings(tmp_path, comfy)) as (app, client):
        aid, auth = await funded_key(app, "1")
        body = await wait_terminal(client, await start(client, auth, "refused", {}), auth, seconds=60)
        assert body["status"] == "failed", body
        assert (
            "ComfyUI refused the workflow" in body["failureReason"] and "no-such-picture.png" in body["failureReason"]
        )
        assert "Traceback" not in body["failureReason"]
        assert body["costUsd"] == "0.000000000"
        assert await balance(app, aid) == (1_000_000_000, 0)


async def test_a_runtime_error_on_the_server_fails_in_words_and_charges_nothing(
    db_url: str, tmp_path: Path, comfy: Comfy
) -> None:
    async with running_app(db_url, tmp_path, **settings(tmp_path, comfy)) as (app, client):
        aid, auth = await funded_key(app, "1")
        gid = await start(client, auth, "blur", {"image": picture_uri(4, 4), "radius": 31})
        body = await wait_terminal(client, gid, auth, seconds=60)
        assert body["status"] == "failed", body
        assert "ImageBlur" in body["failureReason"] and "nothing was charged" in body["failureReason"]
        assert body["costUsd"] == "0.000000000"
        assert await balance(app, aid) == (1_000_000_000, 0)


async def test_a_run_waiting_in_noema_is_cancelled_and_never_reaches_the_server(
    db_url: str, tmp_path: Path, comfy: Comfy
) -> None:
    async with running_app(db_url, tmp_path, **settings(tmp_path, comfy, comfyui_slots=1)) as (app, client):
        aid, auth = await funded_key(app, "1")
        first = await start(client, auth, "long", {})
        second = await start(client, auth, "blur", {"image": picture_uri()})
        waiting = (await client.get(f"/api/v1/generations/{second}", headers=auth)).json()
        assert waiting["status"] in {"queued", "submitted"}, waiting
        r = await client.post(f"/api/v1/generations/{second}/cancel", headers=auth)
        assert r.status_code == 200, r.text
        assert (await client.get(f"/api/v1/generations/{second}", headers=auth)).json()["status"] == "cancelled"
        assert await prompt_of(app, second) is None  # never sent to the server
        body = await cancel_the_long_run(client, auth, first, comfy)
        assert await prompt_of(app, second) is None  # nor once the server was free
        wallet = await balance(app, aid)
        assert wallet == (1_000_000_000 - int(body["costUsd"].replace(".", "")), 0)


async def cancel_the_long_run(
    client: httpx.AsyncClient, auth: dict[str, str], gid: str, comfy: Comfy
) -> dict[str, Any]:
    """Stop the long job that kept the server busy, and wait until the server has nothing left to run.

    Waiting for the job to end by itself costs up to a minute on the CPU; what the tests check (a
    run cancelled before it ran never runs, the wallet holds nothing) is the same either way.
    """
    r = await client.post(f"/api/v1/generations/{gid}/cancel", headers=auth)
    assert r.status_code == 200, r.text
    body = await wait_terminal(client, gid, auth, seconds=60)
    assert body["status"] == "cancelled", body

    async def idle() -> bool:
        return not server_queue(comfy)

    await until(idle, 30)
    await asyncio.sleep(0.5)  # a prompt handed over late would show up in this time
    assert not server_queue(comfy)
    return body


def server_pending(comfy: Comfy) -> list[str]:
    with comfy.server.client() as http:
        return [item[1] for item in http.get("/queue").json()["queue_pending"]]


async def test_a_run_queued_on_the_server_is_deleted_from_its_queue_never_runs_and_costs_nothing(
    db_url: str, tmp_path: Path, comfy: Comfy
) -> None:
    if comfy.server.fake is not None:
        comfy.server.fake.node_seconds = 2.0
        # The second prompt sits in the server's queue while Noema still waits for the answer to its
        # POST: a cancel then must still reach the server once the answer comes.
        comfy.server.fake.prompt_answer_delay = 1.5
    async with running_app(db_url, tmp_path, **settings(tmp_path, comfy)) as (app, client):
        aid, auth = await funded_key(app, "1")
        first = await start(client, auth, "long", {})
        second = await start(client, auth, "blur", {"image": picture_uri()})

        async def queued_behind() -> bool:
            prompt = await prompt_of(app, second)
            return prompt is not None and prompt in server_pending(comfy)

        await until(queued_behind, 60)
        prompt_id = await prompt_of(app, second)
        r = await client.post(f"/api/v1/generations/{second}/cancel", headers=auth)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "cancelled" and r.json()["costUsd"] == "0.000000000"

        async def gone() -> bool:  # deleted from the server's queue (a cancel during the submit, once it lands)
            return prompt_id not in server_queue(comfy)

        await until(gone, 30)
        # Still behind the first (the server runs one prompt at a time): it left the queue deleted, not run.
        assert await prompt_of(app, first) in server_queue(comfy)
        body = await cancel_the_long_run(client, auth, first, comfy)  # had the second stayed queued, it would run now
        assert str(prompt_id) not in server_history(comfy), "a deleted prompt must never run"
        assert await balance(app, aid) == (1_000_000_000 - int(body["costUsd"].replace(".", "")), 0)


async def test_a_running_run_is_interrupted_and_gone_from_the_servers_queue(
    db_url: str, tmp_path: Path, comfy: Comfy
) -> None:
    if comfy.server.fake is not None:
        comfy.server.fake.node_seconds = 2.0
    async with running_app(db_url, tmp_path, **settings(tmp_path, comfy)) as (app, client):
        _, auth = await funded_key(app, "1")
        gid = await start(client, auth, "long", {})

        async def running() -> bool:
            status = (await client.get(f"/api/v1/generations/{gid}", headers=auth)).json()["status"]
            return bool(status == "running")

        await until(running, 60)
        prompt_id = await prompt_of(app, gid)
        assert prompt_id in server_queue(comfy)
        r = await client.post(f"/api/v1/generations/{gid}/cancel", headers=auth)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "cancelled"

        async def gone() -> bool:
            return prompt_id not in server_queue(comfy)

        await until(gone, 30)
        entry = server_history(comfy)[str(prompt_id)]
        assert "execution_interrupted" in dict(entry["status"]["messages"])


async def test_a_run_past_its_max_seconds_is_interrupted_on_the_server_and_ends_timed_out_charging_nothing(
    db_url: str, tmp_path: Path, comfy: Comfy
) -> None:
    if comfy.server.fake is not None:
        comfy.server.fake.node_seconds = 10.0
    limit = json.dumps({"long": {"max_seconds": 2}})
    more = settings(tmp_path, comfy, tool_overrides=limit, poll_seconds=0.5, workers_enabled=True)
    async with running_app(db_url, tmp_path, **more) as (app, client):
        aid, auth = await funded_key(app, "1")
        gid = await start(client, auth, "long", {})
        body = await wait_terminal(client, gid, auth, seconds=60)
        assert body["status"] == "timed_out", body
        assert "took longer than 2 seconds" in body["failureReason"], body["failureReason"]
        assert body["costUsd"] == "0.000000000"
        assert await balance(app, aid) == (1_000_000_000, 0)
        prompt_id = await prompt_of(app, gid)

        async def interrupted() -> bool:
            entry = server_history(comfy).get(str(prompt_id))
            return entry is not None and "execution_interrupted" in dict(entry["status"]["messages"])

        await until(interrupted, 30)  # stopped at the server, not left to run on for nothing
        assert prompt_id not in server_queue(comfy)
        again = (await client.get(f"/api/v1/generations/{gid}", headers=auth)).json()
        assert again["status"] == "timed_out" and again["costUsd"] == "0.000000000"
        c: Container = app.state.container
        assert await economy.verify(c.uow()) == (1, [])


async def test_the_sdxl_example_is_listed_disabled_naming_the_missing_model_and_the_server(
    db_url: str, tmp_path: Path, comfy: Comfy
) -> None:
    async with running_app(db_url, tmp_path, **settings(tmp_path, comfy)) as (app, client):
        _, auth = await funded_key(app, "1")
        tools = (await client.get("/api/v1/tools", headers=auth)).json()
        listed = tools["items"] if isinstance(tools, dict) else tools
        by_id = {t["id"]: t for t in listed}
        sdxl = by_id["sdxl_txt2img"]
        # The real server has SDXL's nodes but no checkpoint; the fake lacks its text-encoder nodes too.
        lacking = "needs the model sd_xl_base_1.0.safetensors" if comfy.server.fake is None else "needs the node"
        assert sdxl["enabled"] is False
        assert lacking in sdxl["disabledReason"] and comfy.server.url in sdxl["disabledReason"]
        assert by_id["blur"]["enabled"] is True
        r = await client.post("/api/v1/generations", headers=auth, json={"toolId": "sdxl_txt2img", "inputs": {}})
        assert r.status_code >= 400 and lacking in r.text


@pytest.mark.parametrize("comfy", ["fake"], indirect=True)
async def test_a_server_restart_fails_the_run_it_was_running_and_sends_the_waiting_one_again(
    db_url: str, tmp_path: Path, comfy: Comfy
) -> None:
    fake = comfy.server.fake
    assert fake is not None
    fake.node_seconds = 1.0
    async with running_app(db_url, tmp_path, **settings(tmp_path, comfy)) as (app, client):
        aid, auth = await funded_key(app, "1")
        running = await start(client, auth, "long", {})

        async def first_sent() -> bool:  # two submits run concurrently: keep their order on the server
            return await prompt_of(app, running) in server_queue(comfy)

        await until(first_sent, 30)
        queued = await start(client, auth, "blur", {"image": picture_uri()})

        async def both_on_the_server() -> bool:
            first, second = await prompt_of(app, running), await prompt_of(app, queued)
            status = (await client.get(f"/api/v1/generations/{running}", headers=auth)).json()["status"]
            return status == "running" and first is not None and second is not None and second in server_queue(comfy)

        await until(both_on_the_server, 30)
        lost = await prompt_of(app, queued)
        fake.restart()
        fake.node_seconds = 0.05
        ended = await wait_terminal(client, running, auth, seconds=30, application=app)
        assert ended["status"] == "failed" and "restarted" in ended["failureReason"], ended
        assert ended["costUsd"] == "0.000000000"
        again = await wait_terminal(client, queued, auth, seconds=30, application=app)
        assert again["status"] == "succeeded", again
        assert await prompt_of(app, queued) != lost  # it really went to the server a second time
        assert await balance(app, aid) == (1_000_000_000 - int(again["costUsd"].replace(".", "")), 0)


@pytest.mark.parametrize("comfy", ["fake"], indirect=True)
async def test_runs_reach_the_servers_queue_in_the_order_they_were_asked_for_though_the_first_uploads_a_picture(
    db_url: str, tmp_path: Path, comfy: Comfy
) -> None:
    fake = comfy.server.fake
    assert fake is not None
    fake.upload_delay = 1.0  # the first run's picture takes a second to upload; the second has none
    async with running_app(db_url, tmp_path, **settings(tmp_path, comfy)) as (app, client):
        _, auth = await funded_key(app, "1")
        first = await start(client, auth, "blur", {"image": picture_uri()})
        second = await start(client, auth, "long", {})
        for gid in (first, second):
            assert (await wait_terminal(client, gid, auth, seconds=30, application=app))["status"] == "succeeded"
        history = server_history(comfy)
        numbers = [history[str(await prompt_of(app, gid))]["prompt"][0] for gid in (first, second)]
        assert numbers[0] < numbers[1], numbers


async def test_the_web_form_runs_blur_on_the_server_and_its_card_shows_the_picture_from_noemas_media(
    db_url: str, tmp_path: Path, comfy: Comfy
) -> None:
    async with running_app(db_url, tmp_path, **settings(tmp_path, comfy)) as (app, client):
        aid, auth = await funded_key(app, "1")
        page = await client.get("/")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        key = auth["Authorization"].removeprefix("Bearer ")
        signed = await client.post("/signin", data={"api_key": key, "csrf": csrf.group(1)})
        assert signed.status_code == 303, signed.text
        tools = await client.get("/app")
        assert tools.status_code == 200 and "/blur" in tools.text
        token = re.search(r'name="csrf" value="([^"]+)"', tools.text)
        assert token is not None
        picture = base64.b64decode(picture_uri().split(",", 1)[1])
        r = await client.post(
            "/app/run",
            data={"tool": "blur", "radius": "3", "csrf": token.group(1)},
            files={"image": ("photo.png", picture, "image/png")},
        )
        assert r.status_code == 303, r.text
        card_url = r.headers["location"] + "/card"

        async def done() -> bool:
            return 'data-terminal="true"' in (await client.get(card_url)).text

        await until(done, 60)
        card = (await client.get(card_url)).text
        assert 'data-status="succeeded"' in card, card
        src = re.search(r'<img src="([^"]+)"', card)
        assert src is not None and src.group(1).startswith("http://noema.test/media/")
        served = await client.get(src.group(1))
        assert served.status_code == 200 and Image.open(io.BytesIO(served.content)).size == (24, 16)
        spent, held = await balance(app, aid)
        assert spent < 1_000_000_000 and held == 0
