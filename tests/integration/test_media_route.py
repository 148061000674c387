"""``GET /media/{key}/{filename}``: Noema's own files, an extension allow-list, nosniff, nothing else reachable."""

from __future__ import annotations

from pathlib import Path

from noema.adapters.media_store import MediaStore
from noema.bootstrap import Container
from tests.conftest import running_app


async def test_stored_files_are_served_inline_only_for_allowed_types_and_never_outside_the_store(
    db_url: str, tmp_path: Path
) -> None:
    async with running_app(db_url, tmp_path, media_dir=str(tmp_path / "media")) as (app, client):
        c: Container = app.state.container
        assert c.media_store is not None
        png = await c.media_store.save(b"\x89PNG fake", "out.png")
        html = await c.media_store.save(b"<script>alert(1)</script>", "page.html")
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
            f"/media/{key}%0A/out.png",
            f"/media/{key}/out.png%0A",
        ):
            assert (await client.get(path)).status_code == 404, path


def test_a_key_or_name_with_a_trailing_newline_is_not_a_stored_file(tmp_path: Path) -> None:
    store = MediaStore(tmp_path, "http://noema.test")
    key = "0" * 32
    (tmp_path / key).mkdir()
    (tmp_path / key / "out.png").write_bytes(b"x")
    assert store.path(key, "out.png") == tmp_path / key / "out.png"
    # Folders and files that save() never makes, but that exist: only store-shaped paths are served.
    (tmp_path / f"{key}\n").mkdir()
    (tmp_path / f"{key}\n" / "out.png").write_bytes(b"x")
    (tmp_path / key / "out.png\n").write_bytes(b"x")
    assert store.path(key + "\n", "out.png") is None
    assert store.path(key, "out.png\n") is None
