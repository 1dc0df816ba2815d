"""The ``python -m tideloop`` command line: ``info``, ``--help``, and ``bench``,
which points to the benchmark suite of a checkout (``run``: test_cli_run.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import tideloop
from tideloop.__main__ import main

SRC = str(Path(__file__).resolve().parent.parent / "src")


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m tideloop ARGS``, this checkout's tideloop first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "tideloop", *args],
        capture_output=True,
        text=True,
        timeout=25,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.mark.timeout(30)
def test_info_text() -> None:
    proc = run("info")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert tideloop.__version__ in out
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in out
    for word in ("backends", "default backend", "pidfd", "sendfile", "eventfd"):
        assert word in out
    for backend in tideloop.available_backends():
        assert backend in out


@pytest.mark.timeout(30)
def test_info_json() -> None:
    proc = run("info", "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["tideloop"] == tideloop.__version__
    assert info["backends"] == list(tideloop.available_backends())
    assert info["default_backend"] in info["backends"]
    assert set(info["features"]) == {"pidfd", "sendfile", "eventfd"}
    assert info["features"]["pidfd"] is hasattr(os, "pidfd_open")
    assert all(isinstance(v, bool) for v in info["features"].values())


@pytest.mark.timeout(30)
@pytest.mark.parametrize("argv", [["--help"], ["info", "--help"], ["run", "--help"]])
def test_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage:" in out
    assert "bench" not in out  # not a command of the installed package


@pytest.mark.timeout(30)
@pytest.mark.parametrize("args", [["bench"], ["bench", "--quick", "--group", "micro"]])
def test_bench_points_to_the_checkout(args: list[str], tmp_path: Path) -> None:
    # The benchmarks are not installed: one line on stderr says where they
    # are, whatever options follow, and the exit status is 2 (a usage error).
    proc = run(*args, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("tideloop bench: ")
    assert "python -m benchmarks" in lines[0] and "checkout" in lines[0]
