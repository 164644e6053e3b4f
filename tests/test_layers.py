"""The house: the import contract of the rooms (import-linter), file sizes, and lint/format cleanliness."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LIB = REPO / "lib" / "hamforge"
BIN = Path(sys.executable).parent


def _lint_imports(cwd: Path, lib: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(lib)}  # the tree under test shadows the editable install
    return subprocess.run(
        [str(BIN / "lint-imports"), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_import_contract_holds():
    r = _lint_imports(REPO, REPO / "lib")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 kept, 0 broken" in r.stdout


@pytest.mark.parametrize(
    "room, line, broken",
    [
        (
            "io/_matrices.py",
            "import hamforge.graph  # deliberate violation",
            "hamforge.io is not allowed to import hamforge.graph",
        ),
        (
            "so3/_wigner.py",
            "from hamforge.model import ModelConfig  # deliberate violation",
            "hamforge.so3 is not allowed to import hamforge.model",
        ),
        # independent siblings of one layer may not import each other either
        (
            "validate/__init__.py",
            "import hamforge.train  # deliberate violation",
            "hamforge.validate is not allowed to import hamforge.train",
        ),
    ],
)
def test_import_contract_fails_when_a_lower_room_imports_a_higher_one(tmp_path, room, line, broken):
    shutil.copytree(LIB, tmp_path / "lib" / "hamforge", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "lib" / "hamforge" / room
    target.write_text(target.read_text() + f"\n{line}\n")
    r = _lint_imports(tmp_path, tmp_path / "lib")
    assert r.returncode != 0, r.stdout
    assert "BROKEN" in r.stdout and broken in r.stdout, r.stdout


def test_no_library_file_over_500_lines():
    big = {str(p.relative_to(REPO)): n for p in LIB.rglob("*.py") if (n := p.read_text().count("\n")) > 500}
    assert not big, f"split these by purpose: {big}"


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]])
def test_ruff_is_clean(args):
    """Lint and formatting as pyproject's [tool.ruff] says (line length 120), over lib, tests, benchmarks, workflow."""
    r = subprocess.run([str(BIN / "ruff"), *args], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
