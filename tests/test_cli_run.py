"""``python -m tideloop run``: programs get tideloop loops from asyncio.run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parent.parent / "src")

PROGRAM = """
import asyncio, sys

async def main():
    loop = asyncio.get_running_loop()
    return type(loop).__module__ + "." + type(loop).__name__

print(asyncio.run(main()), sys.argv[1:])
"""


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "tideloop", "run", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=cwd,
        env=env,
    )


@pytest.mark.timeout(60)
def test_run_file_uses_tideloop(tmp_path: Path) -> None:
    script = tmp_path / "prog.py"
    script.write_text(PROGRAM)
    proc = _run(str(script), "a", "--b", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "tideloop._loop.EventLoop ['a', '--b']"


@pytest.mark.timeout(60)
def test_run_module_uses_tideloop(tmp_path: Path) -> None:
    (tmp_path / "progmod.py").write_text(PROGRAM)
    env_dir = tmp_path
    proc = _run("-m", "progmod", "x", cwd=env_dir)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "tideloop._loop.EventLoop ['x']"


@pytest.mark.timeout(60)
def test_run_exit_code_passes_through(tmp_path: Path) -> None:
    script = tmp_path / "exits.py"
    script.write_text("import sys; sys.exit(3)\n")
    assert _run(str(script), cwd=tmp_path).returncode == 3


@pytest.mark.timeout(60)
def test_run_missing_file(tmp_path: Path) -> None:
    proc = _run("nope.py", cwd=tmp_path)
    assert proc.returncode == 2
    assert "can't open file" in proc.stderr and "nope.py" in proc.stderr


@pytest.mark.timeout(60)
def test_run_missing_module(tmp_path: Path) -> None:
    proc = _run("-m", "no_such_module_xyz", cwd=tmp_path)
    assert proc.returncode == 1
    assert "No module named no_such_module_xyz" in proc.stderr
