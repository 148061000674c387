"""The README's first run, as written: a fresh directory, `noema serve`, then the block of commands.

The commands are read out of README.md (the ``sh`` block after the ``first-run`` marker), so this
test breaks when the README drifts. The only change made to them is the port: the README's server
listens on 8000, the test's on a free port (``NOEMA_PORT``, and ``localhost:8000`` in the curl URLs).
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.fakes.processes import NOEMA, free_port, noema_env, start_serve

README = Path(__file__).parents[2] / "README.md"
MARK = "<!-- first-run:"


def _sh_block_after(text: str, marker: str) -> str:
    after = text.split(marker, 1)[1]
    return after.split("```sh\n", 1)[1].split("\n```", 1)[0] + "\n"


def _json_values(text: str) -> list[Any]:
    """Every JSON object in ``text`` (curl prints them back to back), in order."""
    decoder, values, at = json.JSONDecoder(), [], text.find("{")
    while at != -1:
        value, end = decoder.raw_decode(text, at)
        values.append(value)
        at = text.find("{", end)
    return values


def test_the_readme_first_run_block_exists_and_starts_the_server_as_set_up_says() -> None:
    text = README.read_text(encoding="utf-8")
    setup = _sh_block_after(text, "## Set up")
    assert setup.strip().endswith(".venv/bin/noema serve"), setup
    block = _sh_block_after(text, MARK)
    assert "noema accounts create" in block and "noema apikey create" in block and "curl" in block
    assert "../" not in text, "the README points outside the repository"
    assert "telegram:12345" not in text


async def test_the_readme_first_run_works_on_a_fresh_install(tmp_path: Path) -> None:
    home = tmp_path / "fresh"
    (home / ".venv" / "bin").mkdir(parents=True)
    (home / ".venv" / "bin" / "noema").symlink_to(NOEMA[0])  # the installed console script
    port = free_port()
    env = noema_env({"NOEMA_PORT": str(port)})
    block = _sh_block_after(README.read_text(encoding="utf-8"), MARK).replace("localhost:8000", f"localhost:{port}")
    block += 'echo "key for the test: $key" >&2\n'  # appended, so the test can follow the run it started
    server = await start_serve(env, cwd=home, name="serve", port=port, seconds=120)
    try:
        ran = await asyncio.to_thread(
            subprocess.run,
            ["bash", "-euo", "pipefail", "-c", block],
            cwd=home,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert ran.returncode == 0, f"{ran.stdout}\n{ran.stderr}\n{server.tail()}"
        assert (home / "noema.db").exists(), "the README's commands and server share ./noema.db"
        credited = re.search(r"Credited \$5\.00 to ([0-9a-f-]{36})", ran.stdout)
        assert credited, ran.stdout
        status, generation = _json_values(ran.stdout)
        assert status["accountId"] == str(uuid.UUID(credited.group(1))), status
        assert status["usdCredit"] == "5.000000000", status
        assert generation["status"] in {"submitted", "queued", "started", "running"}, generation
        key = re.search(r"key for the test: (nk_\S+)", ran.stderr)
        assert key, ran.stderr
        finished = await _wait_terminal(port, key.group(1), generation["id"])
        assert finished["status"] == "succeeded" and finished["outputs"][0]["kind"] == "image", finished
    finally:
        server.stop()


async def _wait_terminal(port: int, key: str, generation_id: str, seconds: float = 120) -> dict[str, Any]:
    """The generation once it has ended, polled through the public API."""
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10, headers=headers) as client:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            body: dict[str, Any] = (await client.get(f"/api/v1/generations/{generation_id}")).json()
            if body["status"] in {"succeeded", "failed", "cancelled", "timed_out"} or loop.time() > deadline:
                return body
            await asyncio.sleep(0.2)
