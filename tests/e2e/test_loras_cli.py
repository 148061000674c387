"""``noema loras``, run as a real process against SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

from noema.bootstrap import build_container
from noema.domain.loras import Family
from tests.conftest import make_settings
from tests.e2e.test_cli import noema


async def _stored(db_url: str) -> dict[str, tuple[Family, tuple[str, ...], float, bool]]:
    c = build_container(make_settings(db_url))
    try:
        return {
            lora.slug: (lora.family, lora.triggers, lora.default_weight, lora.enabled) for lora in await c.loras.loras()
        }
    finally:
        await c.close()


async def test_add_list_and_disable_a_lora(db_url: str) -> None:
    added = noema(db_url, "loras", "add", "cat", "--family", "sdxl", "--trigger", "cat", "--trigger", "kitty cat")
    assert added.returncode == 0, added.stderr
    assert "LoRA cat (SDXL) added." in added.stdout
    again = noema(db_url, "loras", "add", "cat", "--family", "SDXL", "--trigger", "cat", "--weight", "0.6")
    assert again.returncode == 0 and "updated" in again.stdout
    assert noema(db_url, "loras", "disable", "CAT").stdout.strip() == "LoRA cat is switched off."
    listed = noema(db_url, "loras", "list")
    assert listed.returncode == 0, listed.stderr
    assert "1 LoRAs" in listed.stdout and "cat" in listed.stdout and "disabled" in listed.stdout
    assert await _stored(db_url) == {"cat": (Family.SDXL, ("cat",), 0.6, False)}


async def test_import_adds_then_changes_nothing_and_says_so(db_url: str, tmp_path: Path) -> None:
    entries = [{"slug": f"style-{i:03d}", "family": "FLUX", "triggers": [f"style{i}"]} for i in range(250)]
    file = tmp_path / "loras.json"
    file.write_text(json.dumps({"loras": entries}))
    first = noema(db_url, "loras", "import", str(file))
    assert first.returncode == 0, first.stderr
    assert "Imported 250 LoRAs: 250 added, 0 updated, 0 unchanged." in first.stdout
    entries[0]["triggers"] = ["renamed"]
    file.write_text(json.dumps(entries))
    second = noema(db_url, "loras", "import", str(file))
    assert "Imported 250 LoRAs: 0 added, 1 updated, 249 unchanged." in second.stdout
    stored = await _stored(db_url)
    assert len(stored) == 250 and stored["style-000"] == (Family.FLUX, ("renamed",), 1.0, True)


async def test_bad_lora_commands_exit_non_zero_with_a_message_and_change_nothing(db_url: str, tmp_path: Path) -> None:
    broken, bad_entry = tmp_path / "broken.json", tmp_path / "bad.json"
    broken.write_text('{"loras": [')
    bad_entry.write_text(json.dumps([{"slug": "ok", "family": "SDXL"}, {"slug": "x", "family": "SD9"}]))
    for args, code, message in [
        (["loras", "import", str(broken)], 1, "is not valid JSON"),
        (["loras", "import", str(bad_entry)], 1, "LoRA entry 2 ('x'): family must be one of"),
        (["loras", "import", str(tmp_path / "missing.json")], 1, "Cannot read"),
        (["loras", "add", "cat", "--family", "SD9"], 1, "family must be one of"),
        (["loras", "add", "cat", "--family", "SDXL", "--cognate", "kitty"], 2, "WORD=REPLACEMENT"),
        (["loras", "disable", "nope"], 1, "There is no LoRA called 'nope'"),
    ]:
        r = noema(db_url, *args)
        assert (r.returncode, "Traceback" in r.stderr) == (code, False), (args, r.stderr)
        assert message in " ".join(r.stderr.split()), (args, r.stderr)
    assert await _stored(db_url) == {}
