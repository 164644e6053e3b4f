"""A non-editable install carries everything the library reads at run time (issue 23): the config schema is
package data found through importlib.resources, not a file of the checkout."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_config_schema_is_package_data(tmp_path):
    from hamforge.config import default_schema_path

    assert default_schema_path().is_file() and "hamforge" in default_schema_path().parts
    assert "workflow" not in default_schema_path().parts
    src = tmp_path / "src"  # a copy: building leaves build/ and egg-info beside the sources
    shutil.copytree(ROOT / "lib", src / "lib", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copyfile(ROOT / name, src / name)
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=src)
    assert r.returncode == 0, r.stdout + r.stderr
    (wheel,) = tmp_path.glob("hamforge-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "hamforge/schemas/config.schema.yaml" in names
    assert "hamforge/config.py" in names
