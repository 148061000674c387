"""The ``noema`` command with ``NOEMA_BACKEND=comfyui``: tools list, a bad workflow file, media prune."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_cli import noema
from tests.fakes.comfyui import FakeComfyUI

EXAMPLES = Path(__file__).parents[2] / "examples" / "workflows"


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeComfyUI]:
    server = FakeComfyUI(tmp_path / "fake")
    server.start()
    yield server
    server.stop()


def comfy_env(tmp_path: Path, servers: str, workflows: Path) -> dict[str, str]:
    return {
        "NOEMA_BACKEND": "comfyui",
        "NOEMA_COMFYUI_SERVERS": servers,
        "NOEMA_COMFYUI_WORKFLOWS_DIR": str(workflows),
        "NOEMA_MEDIA_DIR": str(tmp_path / "media"),
    }


def test_tools_list_shows_each_workflow_priced_at_its_server_and_the_sdxl_example_disabled(
    tmp_path: Path, fake: FakeComfyUI
) -> None:
    env = comfy_env(tmp_path, f"{fake.url}=A10G", EXAMPLES)
    r = noema(f"sqlite+aiosqlite:///{tmp_path}/t.db", "tools", "list", env=env)
    assert r.returncode == 0, r.stderr
    assert "/blur" in r.stdout and "A10G" in r.stdout and "0.000337000" in r.stdout
    assert "disabled: No GPU server can run this workflow" in r.stdout and "sdxl" in r.stdout


def test_a_server_without_a_gpu_leaves_its_tools_disabled_for_want_of_a_price(
    tmp_path: Path, fake: FakeComfyUI
) -> None:
    env = comfy_env(tmp_path, fake.url, EXAMPLES)
    r = noema(f"sqlite+aiosqlite:///{tmp_path}/t.db", "tools", "list", env=env)
    assert r.returncode == 0, r.stderr
    assert "disabled: The deployment's machine reports no GPU" in r.stdout


def test_a_bad_workflow_file_stops_start_up_naming_the_file_and_the_problem(tmp_path: Path) -> None:
    folder = tmp_path / "workflows"
    folder.mkdir()
    shutil.copy(EXAMPLES / "blur.json", folder / "blur.json")
    (folder / "broken.json").write_text("{not json")
    env = comfy_env(tmp_path, "http://127.0.0.1:9=A10G", folder)
    r = noema(f"sqlite+aiosqlite:///{tmp_path}/t.db", "tools", "list", env=env)
    assert r.returncode == 2
    assert "NOEMA_COMFYUI_WORKFLOWS_DIR" in r.stderr and "broken.json" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_media_prune_deletes_stored_files_older_than_the_retention(tmp_path: Path) -> None:
    media = tmp_path / "media"
    old, new = media / ("a" * 32), media / ("b" * 32)
    for folder in (old, new):
        folder.mkdir(parents=True)
        (folder / "out.png").write_bytes(b"png")
    month_ago = time.time() - 31 * 86400
    os.utime(old, (month_ago, month_ago))
    env = {"NOEMA_MEDIA_DIR": str(media), "NOEMA_SANDBOX_DATA_DIR": str(tmp_path / "sandbox")}
    r = noema(f"sqlite+aiosqlite:///{tmp_path}/t.db", "media", "prune", env=env)
    assert r.returncode == 0, r.stderr
    assert "1 stored files removed" in r.stdout
    assert not old.exists() and (new / "out.png").exists()


def _queue_on(fake: FakeComfyUI, client_id: str) -> None:
    graph = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "held"}},
    }
    r = httpx.post(f"{fake.url}/prompt", json={"prompt": graph, "client_id": client_id}, timeout=10)
    assert r.status_code == 200, r.text


def test_backends_lists_each_server_up_or_down_with_its_gpu_queue_noemas_runs_and_tools(
    tmp_path: Path, fake: FakeComfyUI
) -> None:
    fake.node_seconds = 20  # the first prompt stays running, the second waits behind it
    _queue_on(fake, "noema-elsewhere")
    _queue_on(fake, "someone-else")
    env = comfy_env(tmp_path, f"{fake.url}=A10G,http://127.0.0.1:9=L40S", EXAMPLES)
    r = noema(f"sqlite+aiosqlite:///{tmp_path}/t.db", "backends", env=env)
    assert r.returncode == 0, r.stderr
    up_row = next(line for line in r.stdout.splitlines() if fake.url in line)
    assert "│ up" in up_row and "A10G" in up_row
    assert [cell.strip() for cell in up_row.split("│")[4:7]] == ["1", "1", "1"]  # running, pending, Noema's
    down_row = next(line for line in r.stdout.splitlines() if "127.0.0.1:9 " in line)
    assert "down:" in down_row and "L40S" in down_row
    assert "│ blur " in r.stdout and "sdxl_txt2img: cannot (needs the node" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr


def test_backends_with_the_sandbox_says_in_one_line_that_it_answers(tmp_path: Path) -> None:
    env = {"NOEMA_SANDBOX_DATA_DIR": str(tmp_path / "sandbox")}
    r = noema(f"sqlite+aiosqlite:///{tmp_path}/t.db", "backends", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "Sandbox (not a real GPU): answers"


def test_backends_with_an_unreachable_comfydeploy_says_it_does_not_answer(tmp_path: Path) -> None:
    env = {
        "NOEMA_BACKEND": "comfydeploy",
        "NOEMA_COMFYDEPLOY_API_KEY": "k",
        "NOEMA_COMFYDEPLOY_BASE_URL": "http://127.0.0.1:9/api",
    }
    r = noema(f"sqlite+aiosqlite:///{tmp_path}/t.db", "backends", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ComfyDeploy: does not answer:")
    assert "Traceback" not in r.stdout + r.stderr
