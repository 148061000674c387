"""The repository's scripts: ``--help`` prints the usage and runs nothing; nothing is written outside the repo."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted([*(ROOT / "scripts").iterdir(), ROOT / ".ci" / "run"])


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_scripts_test_help_prints_its_usage_and_runs_nothing(tmp_path: Path, flag: str) -> None:
    copy = tmp_path / "repo" / "scripts" / "test"
    copy.parent.mkdir(parents=True)
    shutil.copy2(ROOT / "scripts" / "test", copy)
    r = subprocess.run([str(copy), flag], capture_output=True, text=True, timeout=30, check=False)
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout.startswith("Usage: scripts/test") and "pytest" in r.stdout and "scripts/test tests/unit" in r.stdout
    made = sorted(str(p.relative_to(tmp_path / "repo")) for p in (tmp_path / "repo").rglob("*"))
    assert made == ["scripts", "scripts/test"], made  # no .venv, no .cache: nothing ran


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_scripts_keep_their_files_inside_the_repository(script: Path) -> None:
    text = script.read_text(encoding="utf-8")
    assert not re.search(r"(?<![\w.$])/tmp\b", text), f"{script.name} writes to /tmp"
    for line in text.splitlines():
        if "mktemp" in line:
            assert '"$TMPDIR/' in line, f"{script.name}: mktemp outside the repository: {line.strip()}"


def test_scripts_test_points_temporary_files_and_caches_into_the_repository() -> None:
    text = (ROOT / "scripts" / "test").read_text(encoding="utf-8")
    setup = text.index('TMPDIR="$PWD/.cache/tmp"')
    assert setup < text.index("mktemp") and setup < text.index("pip install")
    assert 'PIP_CACHE_DIR="$PWD/.cache/pip"' in text and "export TMPDIR PIP_CACHE_DIR" in text
    assert "--basetemp=.cache/pytest" in text and "> .cache/lint-imports.log" in text
    assert ".cache/" in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
