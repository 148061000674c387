"""``GET /media/{key}/{filename}``: Noema's own files, an extension allow-list, nosniff, nothing else reachable."""

from __future__ import annotations

from pathlib import Path

from noema.bootstrap import Container
from tests.conftest import running_app


async def test_stored_files_are_served_inline_only_for_allowed_types_and_never_outside_the_store(
    db_url: str, tmp_path: Path
) -> None:
    async with running_app(db_url, tmp_path, media_dir=str(tmp_path / "media")) as (app, client):
        c: Container = app.state.container
        assert c.media_store is not None
        png = c.media_store.save(b"\x89PNG fake", "out.png")
        html = c.media_store.save(b"<script>alert(1)</script>", "page.html")
        assert png.startswith("http://noema.test/media/")
        served = await client.get(png)
        assert served.status_code == 200 and served.content == b"\x89PNG fake"
        assert served.headers["content-type"] == "image/png"
        assert served.headers["x-content-type-options"] == "nosniff"
        page = await client.get(html)
        assert page.headers["content-type"] == "application/octet-stream"
        assert page.headers["content-disposition"].startswith("attachment")
        key = png.split("/")[-2]
        for path in (
            f"/media/{key}/other.png",
            f"/media/{'0' * 32}/out.png",
            f"/media/{key}/..%2Fout.png",
            "/media/x/y",
        ):
            assert (await client.get(path)).status_code == 404, path
