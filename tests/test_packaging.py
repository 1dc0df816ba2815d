"""What ``pip install`` puts on a machine: the wheel holds tideloop and no
benchmark code (the suite runs from a checkout: benchmarks/README.md)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(120)
def test_wheel_holds_no_benchmark_code(tmp_path: Path) -> None:
    # Built from a copy of the sources (the checkout's build/ and egg-info are
    # neither touched nor reused), with the setuptools of this environment
    # (the test extra requires one that builds wheels by itself).
    tree = tmp_path / "tree"
    tree.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, tree / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "_build")
    for name in ("src", "benchmarks"):  # benchmarks/: a wheel must leave it out
        shutil.copytree(ROOT / name, tree / name, ignore=ignore)
    dist = tmp_path / "dist"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "--wheel-dir",
            str(dist),
            str(tree),
        ],
        capture_output=True,
        text=True,
        timeout=100,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = dist.glob("tideloop-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    assert "tideloop/__init__.py" in names
    assert "tideloop/__main__.py" in names
    assert "tideloop/_backends/_epoll.py" in names
    top = {name.split("/", 1)[0] for name in names}
    assert all(t == "tideloop" or t.endswith(".dist-info") for t in top), sorted(top)
    assert [name for name in names if "bench" in name.lower()] == []
