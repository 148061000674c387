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


def _fake_tool(path: Path, log: Path) -> None:
    """An executable that only records how it was called."""
    path.write_text(f'#!/usr/bin/env bash\necho "$(basename "$0") $*" >> "{log}"\n', encoding="utf-8")
    path.chmod(0o755)


def test_scripts_test_fast_runs_only_the_unit_lane_without_installing_or_linting(tmp_path: Path) -> None:
    repo, calls = tmp_path / "repo", tmp_path / "calls.log"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy2(ROOT / "scripts" / "test", repo / "scripts" / "test")
    (repo / ".venv" / "bin").mkdir(parents=True)
    for tool in ("python", "pip", "pytest", "ruff", "mypy", "lint-imports"):
        _fake_tool(repo / ".venv" / "bin" / tool, calls)
    r = subprocess.run(
        [str(repo / "scripts" / "test"), "--fast", "-x"], capture_output=True, text=True, timeout=30, check=False
    )
    assert r.returncode == 0, r.stderr
    [call] = calls.read_text(encoding="utf-8").splitlines()  # pytest alone: no pip, no lint
    assert call.startswith("pytest ") and call.endswith("-m not slow tests/unit -x")
    assert "--basetemp=.cache/pytest" in call and "-n 0" in call
