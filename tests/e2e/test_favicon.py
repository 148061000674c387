"""``/favicon.ico`` answers with a small icon, and every page names it."""

from __future__ import annotations

import io

import httpx
from PIL import Image


async def test_the_favicon_is_a_small_icon_every_page_links(client: httpx.AsyncClient) -> None:
    r = await client.get("/favicon.ico")
    assert r.status_code == 200 and r.headers["content-type"] == "image/x-icon"
    assert "max-age" in r.headers["cache-control"] and len(r.content) < 4096
    icon = Image.open(io.BytesIO(r.content))
    assert icon.format == "ICO" and icon.size[0] >= 16
    page = await client.get("/")
    assert '<link rel="icon" href="/favicon.ico"' in page.text
    assert "/favicon.ico" not in (await client.get("/api/v1/openapi.json")).text
