"""Generations end to end: the public API, the embedded sandbox, webhooks, settlement and the ledger."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from fastapi import FastAPI
from PIL import Image

from noema.bootstrap import Container
from noema.domain.money import format_usd
from noema.services import economy
from tests.conftest import funded_key, running_app, wait_terminal

A10G_RATE = 337_000  # nanos per second


async def _balance(app: FastAPI, aid: str) -> tuple[int, int]:
    c: Container = app.state.container
    account = await economy.wallet(c.uow(), aid)
    return account.balance_nanos, account.held_nanos


async def _entries(app: FastAPI, aid: str) -> list[str]:
    c: Container = app.state.container
    page = await economy.transactions(c.uow(), aid, limit=100, cursor=None)
    return [e.idempotency_key for e in page.items]


async def test_txt2img_runs_succeeds_and_charges_exactly_the_gpu_seconds(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path) as (app, client):
        aid, auth = await funded_key(app, "1")
        r = await client.post(
            "/api/v1/generations",
            headers=auth,
            json={"toolId": "txt2img", "inputs": {"input_text": "a red fox", "input_seed": 42}},
        )
        assert r.status_code == 202, r.text
        assert r.json()["status"] in {"submitted", "queued", "started", "running"}
        assert r.json()["estimatedCostUsd"] != "0.000000000"
        body = await wait_terminal(client, r.json()["id"], auth)
        assert body["status"] == "succeeded", body
        assert body["outputs"][0]["kind"] == "image" and body["outputs"][0]["mimeType"] == "image/png"
        png = await client.get(body["outputs"][0]["url"])
        assert Image.open(io.BytesIO(png.content)).format == "PNG"
        # The cost is the persisted running time × the A10G rate, and the balance moved by exactly that.
        seconds = body["durationSeconds"]
        assert seconds > 0
        cost = int(body["costUsd"].replace(".", ""))
        assert cost == round(int(seconds * 1000) * A10G_RATE / 1000)  # whole milliseconds × the A10G rate
        assert await _balance(app, aid) == (1_000_000_000 - cost, 0)
        keys = await _entries(app, aid)
        gid = body["id"]
        assert keys.count(f"settle:{gid}:debit") == 1 and keys.count(f"settle:{gid}:release") == 1
        c: Container = app.state.container
        assert await economy.verify(c.uow()) == (1, [])
        status = (await client.get("/api/v1/me/status", headers=auth)).json()
        assert status["liveTasks"] == [] and status["exp"] == body["expGained"]


async def test_the_event_stream_sends_progress_then_the_result(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path, sandbox_run_seconds=1.0) as (app, client):
        _, auth = await funded_key(app, "1")
        gid = (
            await client.post(
                "/api/v1/generations", headers=auth, json={"toolId": "txt2img", "inputs": {"input_text": "stream"}}
            )
        ).json()["id"]
        events = []
        async with client.stream("GET", f"/api/v1/generations/{gid}/events", headers=auth) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            async for line in stream.aiter_lines():
                if line.startswith("event: "):
                    events.append(line.removeprefix("event: "))
                if line.startswith("data: ") and events[-1] == "result":
                    assert json.loads(line.removeprefix("data: "))["status"] == "succeeded"
        assert events[0] == "progress" and events[-1] == "result" and events.count("result") == 1


async def test_the_same_idempotency_key_gives_the_same_generation_and_one_hold(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path) as (app, client):
        aid, auth = await funded_key(app, "1")
        body = {"toolId": "txt2img", "inputs": {"input_text": "once"}}
        headers = {**auth, "Idempotency-Key": "req-1"}
        first = await client.post("/api/v1/generations", headers=headers, json=body)
        again = await client.post("/api/v1/generations", headers=headers, json=body)
        assert first.json()["id"] == again.json()["id"]
        other = await client.post(
            "/api/v1/generations", headers=headers, json={"toolId": "txt2img", "inputs": {"input_text": "different"}}
        )
        assert other.status_code == 409
        await wait_terminal(client, first.json()["id"], auth)
        assert [k for k in await _entries(app, aid) if k.startswith("hold:")] == [f"hold:{first.json()['id']}"]


async def test_insufficient_funds_says_balance_and_estimate_and_creates_nothing(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path) as (app, client):
        aid, auth = await funded_key(app, "0")
        r = await client.post(
            "/api/v1/generations", headers=auth, json={"toolId": "txt2img", "inputs": {"input_text": "poor"}}
        )
        assert (r.status_code, r.json()["error"]["code"]) == (400, "INSUFFICIENT_FUNDS")
        assert "balance is $0.00" in r.json()["error"]["message"] and "Add funds" in r.json()["error"]["message"]
        assert r.json()["error"]["details"] == {
            "currentBalance": "0.000000000",
            "estimatedCost": r.json()["error"]["details"]["estimatedCost"],
            "heldUsd": "0.000000000",
        }
        assert r.json()["error"]["details"]["estimatedCost"] != "0.000000000"
        assert (await client.get("/api/v1/generations", headers=auth)).json()["items"] == []
        assert await _entries(app, aid) == []


@pytest.mark.parametrize(
    ("body", "status", "code", "words"),
    [
        ({"toolId": "nope", "inputs": {}}, 404, "NOT_FOUND", "no tool called"),
        ({"toolId": "txt2img", "inputs": {}}, 400, "INVALID_INPUT", "input_text"),
        ({"toolId": "txt2img", "inputs": {"input_text": "x" * 5000}}, 400, "INVALID_INPUT", "4000"),
        ({"toolId": "txt2img", "inputs": {"input_text": "x", "width": "wide"}}, 400, "INVALID_INPUT", "width"),
        ({"toolId": "txt2img", "inputs": {"input_text": "x", "bogus": 1}}, 400, "INVALID_INPUT", "bogus"),
        ({"toolId": "img2img", "inputs": {"input_image": "http://127.0.0.1/x.png"}}, 400, "INVALID_INPUT", "public"),
        ({"toolId": "flux_pro", "inputs": {"input_text": "x"}}, 400, "TOOL_DISABLED", "H200"),
        ({"toolId": "txt2img", "inputs": [1]}, 400, "INVALID_INPUT", ""),
    ],
)
async def test_bad_requests_get_a_clear_4xx_and_change_nothing(
    db_url: str, tmp_path: Path, body: dict[str, object], status: int, code: str, words: str
) -> None:
    async with running_app(db_url, tmp_path) as (app, client):
        aid, auth = await funded_key(app, "1")
        r = await client.post("/api/v1/generations", headers=auth, json=body)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text
        assert words in r.json()["error"]["message"] + json.dumps(r.json()["error"].get("details"))
        assert await _balance(app, aid) == (1_000_000_000, 0)


async def test_tools_list_shows_the_sandbox_catalog_and_the_unpriced_tool_disabled(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path) as (app, client):
        _, auth = await funded_key(app, "0")
        tools = {t["command"]: t for t in (await client.get("/api/v1/tools", headers=auth)).json()}
        assert {"txt2img", "img2img", "animate", "upscale", "caption", "flux_pro"} <= set(tools)
        assert tools["txt2img"]["enabled"] and tools["txt2img"]["gpu"] == "A10G"
        assert tools["txt2img"]["usdPerSecond"] == format_usd(A10G_RATE) and "Sandbox" in tools["txt2img"]["backend"]
        assert not tools["flux_pro"]["enabled"] and "H200" in tools["flux_pro"]["disabledReason"]
        assert tools["img2img"]["primaryInput"] == "image_text" and tools["upscale"]["primaryInput"] == "image"
        assert tools["animate"]["outputKind"] == "animation" and tools["caption"]["outputKind"] == "text"
        one = await client.get(f"/api/v1/tools/{tools['upscale']['id']}", headers=auth)
        assert one.json()["command"] == "upscale"


async def test_img2img_with_an_uploaded_image_returns_a_transformed_png(db_url: str, tmp_path: Path) -> None:
    import base64

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buffer, "PNG")
    data_uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    async with running_app(db_url, tmp_path) as (app, client):
        _, auth = await funded_key(app, "1")
        r = await client.post(
            "/api/v1/generations",
            headers=auth,
            json={"toolId": "img2img", "inputs": {"input_image": data_uri, "input_text": "blue"}},
        )
        assert r.status_code == 202, r.text
        assert "uploaded file" in r.json()["inputs"]["input_image"] or r.json()["inputs"]["input_image"].startswith(
            "http"
        )
        body = await wait_terminal(client, r.json()["id"], auth)
        assert body["status"] == "succeeded", body
        assert body["inputs"]["input_image"].startswith("http://noema.test/sandbox/")
        caption = await client.post(
            "/api/v1/generations", headers=auth, json={"toolId": "caption", "inputs": {"input_image": data_uri}}
        )
        text = await wait_terminal(client, caption.json()["id"], auth)
        assert text["outputs"][0]["kind"] == "text" and text["outputs"][0]["text"]


async def test_cancel_charges_what_was_used_and_releases_the_rest(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path, sandbox_run_seconds=6.0) as (app, client):
        aid, auth = await funded_key(app, "1")
        gid = (
            await client.post(
                "/api/v1/generations", headers=auth, json={"toolId": "txt2img", "inputs": {"input_text": "stop"}}
            )
        ).json()["id"]
        for _ in range(100):  # wait until it runs
            if (await client.get(f"/api/v1/generations/{gid}", headers=auth)).json()["status"] == "running":
                break
            await __import__("asyncio").sleep(0.05)
        r = await client.post(f"/api/v1/generations/{gid}/cancel", headers=auth)
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        cost = int(r.json()["costUsd"].replace(".", ""))
        assert 0 < cost < 6 * A10G_RATE
        assert await _balance(app, aid) == (1_000_000_000 - cost, 0)
        again = await client.post(f"/api/v1/generations/{gid}/cancel", headers=auth)
        assert again.status_code == 409
        _other_aid, other = await funded_key(app, "1")
        assert (await client.get(f"/api/v1/generations/{gid}", headers=other)).status_code == 404
        assert (await client.post(f"/api/v1/generations/{gid}/cancel", headers=other)).status_code == 404


async def test_the_concurrency_cap_refuses_a_fourth_run(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path, sandbox_run_seconds=5.0) as (app, client):
        _aid, auth = await funded_key(app, "5")
        codes = []
        for i in range(4):
            r = await client.post(
                "/api/v1/generations", headers=auth, json={"toolId": "txt2img", "inputs": {"input_text": f"n{i}"}}
            )
            codes.append(r.status_code)
        assert codes == [202, 202, 202, 429]
        status = (await client.get("/api/v1/me/status", headers=auth)).json()
        assert len(status["liveTasks"]) == 3 and all(len(t["idHash"]) == 5 for t in status["liveTasks"])


async def test_a_backend_that_refuses_fails_the_generation_and_charges_nothing(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path, sandbox_faults="submit_error=1") as (app, client):
        aid, auth = await funded_key(app, "1")
        r = await client.post(
            "/api/v1/generations", headers=auth, json={"toolId": "txt2img", "inputs": {"input_text": "nope"}}
        )
        assert r.status_code == 202 and r.json()["status"] == "failed"
        assert "could not start" in r.json()["failureReason"]
        assert await _balance(app, aid) == (1_000_000_000, 0)


async def test_a_failing_run_is_not_charged_and_says_why(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path, sandbox_faults="run_fail=1") as (app, client):
        aid, auth = await funded_key(app, "1")
        gid = (
            await client.post(
                "/api/v1/generations", headers=auth, json={"toolId": "txt2img", "inputs": {"input_text": "boom"}}
            )
        ).json()["id"]
        body = await wait_terminal(client, gid, auth)
        assert body["status"] == "failed" and body["costUsd"] == "0.000000000" and body["failureReason"]
        assert "object" not in body["failureReason"].lower()
        assert await _balance(app, aid) == (1_000_000_000, 0)


async def test_dropped_webhooks_are_caught_up_by_the_reconciler(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path, sandbox_faults="webhook_drop=1", quiet_seconds=0.5) as (app, client):
        aid, auth = await funded_key(app, "1")
        gid = (
            await client.post(
                "/api/v1/generations", headers=auth, json={"toolId": "txt2img", "inputs": {"input_text": "silent"}}
            )
        ).json()["id"]
        body = await wait_terminal(client, gid, auth, application=app)
        assert body["status"] == "succeeded" and body["startedAt"]
        assert (await _entries(app, aid)).count(f"settle:{gid}:debit") == 1


async def test_forged_and_malformed_webhooks_change_nothing(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path, sandbox_run_seconds=5.0) as (app, client):
        aid, auth = await funded_key(app, "1")
        created = (
            await client.post(
                "/api/v1/generations", headers=auth, json={"toolId": "txt2img", "inputs": {"input_text": "x"}}
            )
        ).json()
        gid, run_id = created["id"], created["runId"]
        success = {"event_type": "run.updated", "status": "success", "run_id": run_id, "progress": 1, "outputs": []}
        url = "/api/webhook/comfydeploy"
        forged = await client.post(url, params={"generation_id": gid, "token": "x" * 43}, json=success)
        assert forged.status_code == 403
        assert (await client.post(url, params={"generation_id": gid}, json=success)).status_code == 400
        twice = [("generation_id", gid), ("token", "x" * 43), ("token", "y" * 43)]
        short = {"generation_id": gid, "token": "x" * 15}
        for params in (twice, short):
            refused = await client.post(url, params=params, json=success)
            assert refused.status_code == 400 and "token" in refused.json()["error"]["message"]
        unknown = await client.post(
            url, params={"generation_id": "3f2b8c1e-5d4a-4c3b-9a8f-0e1d2c3b4a59", "token": "x" * 43}, json=success
        )
        assert unknown.status_code == 403
        bad = await client.post(url, params={"generation_id": gid, "token": "x" * 43}, content=b"{nope")
        assert bad.status_code == 400
        assert (await client.get(f"/api/v1/generations/{gid}", headers=auth)).json()["status"] != "succeeded"
        # Held: 15 minutes of A10G, the most the run may cost.
        assert (
            await _balance(app, aid)
            == (1_000_000_000, int(created["heldUsd"].replace(".", "")))
            == (
                1_000_000_000,
                303_300_000,
            )
        )


async def test_the_webhook_answers_an_unknown_generation_exactly_like_a_wrong_token(
    db_url: str, tmp_path: Path
) -> None:
    # Otherwise the answer tells a prober which generation ids exist.
    async with running_app(db_url, tmp_path, sandbox_run_seconds=5.0) as (app, client):
        _, auth = await funded_key(app, "1")
        created = (
            await client.post(
                "/api/v1/generations", headers=auth, json={"toolId": "txt2img", "inputs": {"input_text": "x"}}
            )
        ).json()
        update = {"event_type": "run.updated", "status": "running", "run_id": created["runId"], "progress": 0.5}
        same_id = {"X-Request-Id": "probe-1"}
        answers = []
        for gid in (created["id"], "3f2b8c1e-5d4a-4c3b-9a8f-0e1d2c3b4a59"):
            r = await client.post(
                "/api/webhook/comfydeploy",
                params={"generation_id": gid, "token": "x" * 43},
                json=update,
                headers=same_id,
            )
            answers.append((r.status_code, r.content))
        assert answers[0] == answers[1]
        assert answers[0][0] == 403


async def test_the_internal_api_runs_and_lists_generations(db_url: str, tmp_path: Path) -> None:
    from tests.conftest import ADMIN, PLATFORM

    async with running_app(db_url, tmp_path) as (app, client):
        aid, _ = await funded_key(app, "1")
        r = await client.post(
            "/internal/v1/data/generations",
            headers=PLATFORM,
            json={"masterAccountId": aid, "toolId": "txt2img", "inputs": {"input_text": "internal"}, "platform": "api"},
        )
        assert r.status_code == 201, r.text
        gid = r.json()["id"]
        listed = await client.get(
            "/internal/v1/data/generations", headers=PLATFORM, params={"metadata.run_id": r.json()["runId"]}
        )
        assert [g["id"] for g in listed.json()["items"]] == [gid]
        by_user = await client.get(f"/internal/v1/data/users/{aid}/generations", headers=PLATFORM)
        assert [g["id"] for g in by_user.json()["items"]] == [gid]
        put = await client.put(f"/internal/v1/data/generations/{gid}", headers=ADMIN, json={"status": "succeeded"})
        assert put.status_code == 400
        assert (
            await client.get("/internal/v1/data/generations", headers=PLATFORM, params={"status_in": "bogus"})
        ).status_code == 400


async def test_rerun_reproduces_a_run_with_its_recorded_seed_and_new_seed_draws_another(
    db_url: str, tmp_path: Path
) -> None:
    async with running_app(db_url, tmp_path) as (app, client):
        _aid, auth = await funded_key(app, "1")
        first = await client.post(
            "/api/v1/generations", headers=auth, json={"toolId": "txt2img", "inputs": {"input_text": "a red kite"}}
        )
        done = await wait_terminal(client, first.json()["id"], auth)
        seed = done["inputs"]["input_seed"]
        assert isinstance(seed, int) and seed >= 0  # -1 (the default) became a seed that was recorded

        same = await client.post(f"/api/v1/generations/{done['id']}/rerun", headers=auth)
        fresh = await client.post(f"/api/v1/generations/{done['id']}/rerun?newSeed=true", headers=auth)
        assert same.status_code == fresh.status_code == 202, (same.text, fresh.text)
        same_done = await wait_terminal(client, same.json()["id"], auth)
        fresh_done = await wait_terminal(client, fresh.json()["id"], auth)
        assert same_done["inputs"]["input_seed"] == seed and fresh_done["inputs"]["input_seed"] != seed
        images = [(await client.get(g["outputs"][0]["url"])).content for g in (done, same_done, fresh_done)]
        assert images[0] == images[1] and images[0] != images[2]


async def test_rerun_of_an_upload_asks_for_the_file_and_someone_elses_run_is_not_found(
    db_url: str, tmp_path: Path
) -> None:
    async with running_app(db_url, tmp_path) as (app, client):
        _aid, auth = await funded_key(app, "1")
        _other, other_auth = await funded_key(app, "1")
        buffer = io.BytesIO()
        Image.new("RGB", (64, 64), "purple").save(buffer, "PNG")
        data = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
        up = await client.post(
            "/api/v1/generations", headers=auth, json={"toolId": "upscale", "inputs": {"input_image": data}}
        )
        assert up.status_code == 202, up.text
        again = await client.post(f"/api/v1/generations/{up.json()['id']}/rerun", headers=auth)
        assert again.status_code == 400 and "uploaded file" in again.json()["error"]["message"]
        theirs = await client.post(f"/api/v1/generations/{up.json()['id']}/rerun", headers=other_auth)
        assert theirs.status_code == 404
