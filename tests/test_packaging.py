"""What ``pip install`` puts on a machine: the wheel holds tideloop and no
benchmark code (the suite runs from a checkout: benchmarks/README.md); it is
the compiled build where a C compiler works, and the pure-Python build, with
one warning line, where none does (setup.py). On tideloop only: nothing here
has an asyncio counterpart.

Each wheel is built from a copy of the sources (the checkout's build/ and
egg-info are neither touched nor reused), with the setuptools and mypy of
this environment (the test extra requires them; no build isolation, no
index). Building the compiled wheel takes about 20 s on a 2-core machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .test_build import HOT_MODULES

ROOT = Path(__file__).resolve().parent.parent
WARNING = "tideloop: building the pure-Python build ("
HOT_PATHS = [name.replace(".", "/") for name in HOT_MODULES]


def build_wheel(tmp: Path, env: dict[str, str] | None = None) -> tuple[Path, str]:
    """Build a wheel of a copy of the checkout; (the wheel, pip's -v output)."""
    tree = tmp / "tree"
    tree.mkdir()
    for name in ("pyproject.toml", "README.md", "setup.py"):
        shutil.copy2(ROOT / name, tree / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "_build", "*.so")
    for name in ("src", "benchmarks"):  # benchmarks/: a wheel must leave it out
        shutil.copytree(ROOT / name, tree / name, ignore=ignore)
    dist = tmp / "dist"
    base = {k: v for k, v in os.environ.items() if k != "TIDELOOP_PURE_PYTHON"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-v",  # pip shows the build's own output (the warning) only with -v
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
        timeout=200,
        stdin=subprocess.DEVNULL,
        env={**base, **(env or {})},
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-5000:]
    (wheel,) = dist.glob("tideloop-*.whl")
    # The build wrote nothing into the sources (a .so there would shadow the .py).
    written = [p for p in (tree / "src").rglob("*") if p.suffix in (".so", ".c")]
    assert written + list((tree / "src").rglob("_build_info.py")) == []
    return wheel, output


def wheel_names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        return zf.namelist()


def warnings_in(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if line.strip().startswith(WARNING)]


def assert_pure_wheel(wheel: Path) -> None:
    names = wheel_names(wheel)
    for path in HOT_PATHS:
        assert f"{path}.py" in names
    assert [n for n in names if n.endswith((".so", ".pyd", ".c"))] == []
    with zipfile.ZipFile(wheel) as zf:
        info = zf.read("tideloop/_build_info.py").decode()
    assert "COMPILER = None" in info


@pytest.fixture(scope="module")
def compiled_wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return build_wheel(tmp_path_factory.mktemp("compiled"))


@pytest.mark.timeout(240)
def test_wheel_holds_no_benchmark_code(compiled_wheel: tuple[Path, str]) -> None:
    names = wheel_names(compiled_wheel[0])
    assert "tideloop/__init__.py" in names
    assert "tideloop/__main__.py" in names
    assert "tideloop/_backends/_epoll.py" in names
    top = {name.split("/", 1)[0] for name in names}
    assert all(t == "tideloop" or t.endswith(".dist-info") for t in top), sorted(top)
    assert [name for name in names if "bench" in name.lower()] == []


@pytest.mark.timeout(240)
def test_default_wheel_is_compiled(compiled_wheel: tuple[Path, str]) -> None:
    wheel, output = compiled_wheel
    fallback = warnings_in(output)
    if fallback and "no working C compiler" in fallback[0] and os.environ.get("CI") != "true":
        # scripts/test on a machine without a compiler tests the pure build only.
        pytest.skip(f"no C compiler here (CI=true makes this a failure): {fallback[0]}")
    assert fallback == []
    assert "-none-any" not in wheel.name  # a platform wheel
    names = wheel_names(wheel)
    for path in HOT_PATHS:
        # the extension module, and the .py file that TIDELOOP_PURE_PYTHON selects
        assert any(n.startswith(path + ".") and n.endswith(".so") for n in names), path
        assert f"{path}.py" in names
    # The selectors stay Python; mypyc's shared library stays inside the package.
    so_files = [n for n in names if n.endswith(".so")]
    assert not any(n.startswith(("tideloop/__init__.", "tideloop/_build.")) for n in so_files)
    assert any(n.startswith("tideloop/_compiled__mypyc.") for n in names)
    assert [n for n in names if n.endswith(".c")] == []
    with zipfile.ZipFile(wheel) as zf:
        info = zf.read("tideloop/_build_info.py").decode()
    assert "COMPILER = 'mypyc " in info


@pytest.mark.timeout(120)
def test_broken_compiler_falls_back_to_the_pure_build(tmp_path: Path) -> None:
    # A compiler that exits 1, as on a machine without one or without Python.h.
    wheel, output = build_wheel(tmp_path, {"CC": "false", "LDSHARED": "false"})
    (warning,) = warnings_in(output)
    assert "no working C compiler or Python headers" in warning
    assert "TIDELOOP_PURE_PYTHON=1" in warning
    assert wheel.name.endswith("-py3-none-any.whl")
    assert_pure_wheel(wheel)


@pytest.mark.timeout(120)
def test_pure_python_env_at_build_time_builds_pure(tmp_path: Path) -> None:
    wheel, output = build_wheel(tmp_path, {"TIDELOOP_PURE_PYTHON": "1"})
    assert warnings_in(output) == []  # chosen, not a fallback
    assert wheel.name.endswith("-py3-none-any.whl")
    assert_pure_wheel(wheel)
