"""A public picture link as a ComfyUI input.

Fetched under ``NOEMA_COMFYUI_INPUT_HOSTS`` by the guard the chats use for result files (allow-list,
public addresses only, redirects checked, a size cap), or refused in words with nothing charged. The
fake ComfyUI runs the blur; the internet is a MockTransport at the HTTP edge with a resolver the test
chooses, and it counts every request it gets.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image

from noema.adapters.backends.comfyui.links import LinkFetcher
from noema.bootstrap import Container
from noema.services import economy
from tests.conftest import funded_key, running_app, wait_terminal
from tests.e2e.chat_harness import png_bytes
from tests.e2e.test_comfyui_backend import start
from tests.fakes.comfyui import FakeComfyUI

EXAMPLES = Path(__file__).parents[2] / "examples" / "workflows"


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeComfyUI]:
    server = FakeComfyUI(tmp_path / "fake-comfyui", node_seconds=0.05)
    server.start()
    try:
        yield server
    finally:
        server.stop()


ADDRESSES = {"pictures.example": "93.184.216.34", "elsewhere.example": "93.184.216.35", "inside.example": "10.0.0.9"}


class Internet:
    """Public hosts as the fetcher sees them: a picture, a redirect off the list, a non-picture, a huge file."""

    def __init__(self) -> None:
        self.hits: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.hits.append(f"{request.url.host}{request.url.path}")
        path = request.url.path
        if path == "/fox.png":
            return httpx.Response(200, headers={"content-type": "image/png"}, content=png_bytes())
        if path == "/hop":
            return httpx.Response(302, headers={"location": "https://elsewhere.example/fox.png"})
        if path == "/notes.bin":
            return httpx.Response(200, headers={"content-type": "application/octet-stream"}, content=bytes(2048))
        if path == "/huge.png":
            return httpx.Response(200, headers={"content-type": "image/png", "content-length": str(30 * 2**20)})
        return httpx.Response(404)

    async def resolve(self, host: str, port: int) -> list[str]:
        return [ADDRESSES[host]] if host in ADDRESSES else []


def with_internet(app: FastAPI, internet: Internet) -> None:
    """The container's link fetcher, as bootstrap builds it from the settings, reaching the test's internet."""
    c: Container = app.state.container
    assert c.comfyui is not None
    http = httpx.AsyncClient(transport=httpx.MockTransport(internet.handle), follow_redirects=False)
    c.comfyui.links = LinkFetcher(http, c.settings.comfyui_input_hosts, resolver=internet.resolve)


def comfyui(tmp_path: Path, fake: FakeComfyUI, input_hosts: str | None) -> dict[str, object]:
    folder = tmp_path / "workflows"
    folder.mkdir()
    for name in ("blur.json", "blur.toml"):
        shutil.copy(EXAMPLES / name, folder / name)
    more = {} if input_hosts is None else {"comfyui_input_hosts": input_hosts}
    return {
        "backend": "comfyui",
        "comfyui_servers": f"{fake.url}=A10G",
        "comfyui_workflows_dir": str(folder),
        "media_dir": str(tmp_path / "media"),
        **more,
    }


async def test_a_link_to_a_listed_host_is_fetched_and_the_picture_blurred(
    db_url: str, tmp_path: Path, fake: FakeComfyUI
) -> None:
    internet = Internet()
    async with running_app(db_url, tmp_path, **comfyui(tmp_path, fake, "pictures.example")) as (app, client):
        with_internet(app, internet)
        _, auth = await funded_key(app, "1")
        gid = await start(client, auth, "blur", {"image": "https://pictures.example/fox.png", "radius": 2})
        body = await wait_terminal(client, gid, auth, seconds=60)
        assert body["status"] == "succeeded", body
        served = await client.get(body["outputs"][0]["url"])
        assert Image.open(io.BytesIO(served.content)).size == (320, 240)  # the linked picture
        assert internet.hits == ["pictures.example/fox.png"]


@pytest.mark.parametrize(
    ("listed", "url", "says", "asked"),
    [
        (None, "https://pictures.example/fox.png", "links are not fetched on this server", []),
        ("media.example", "https://pictures.example/fox.png", "not one of the backend's media hosts", []),
        ("pictures.example", "https://pictures.example/hop", "not one of the backend's media hosts", ["/hop"]),
        ("*.example", "https://inside.example/fox.png", "resolves to a private address", []),
        ("pictures.example", "https://pictures.example/notes.bin", "is not a picture", ["/notes.bin"]),
        ("pictures.example", "https://pictures.example/huge.png", "larger than 25 MB", ["/huge.png"]),
        ("pictures.example", "https://pictures.example/gone.png", "could not be fetched", ["/gone.png"]),
    ],
)
async def test_a_link_that_is_not_allowed_or_not_a_picture_fails_in_words_and_charges_nothing(
    db_url: str, tmp_path: Path, fake: FakeComfyUI, listed: str | None, url: str, says: str, asked: list[str]
) -> None:
    internet = Internet()
    async with running_app(db_url, tmp_path, **comfyui(tmp_path, fake, listed)) as (app, client):
        with_internet(app, internet)
        aid, auth = await funded_key(app, "1")
        body = await wait_terminal(client, await start(client, auth, "blur", {"image": url}), auth, seconds=30)
        assert body["status"] == "failed", body
        assert says in body["failureReason"] and "Traceback" not in body["failureReason"], body["failureReason"]
        assert body["costUsd"] == "0.000000000"
        c: Container = app.state.container
        account = await economy.wallet(c.uow(), aid)
        assert (account.balance_nanos, account.held_nanos) == (1_000_000_000, 0)
        assert internet.hits == [f"pictures.example{path}" for path in asked]  # nothing off the list is asked
        async with httpx.AsyncClient() as direct:
            assert (await direct.get(f"{fake.url}/history")).json() == {}  # no prompt reached the server
