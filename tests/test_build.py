"""Which build runs: compiled (mypyc) or pure Python, and selecting the pure
build at run time with ``TIDELOOP_PURE_PYTHON``. On tideloop only: asyncio has
no builds to choose between. (Building the wheels: test_packaging.py.)

``scripts/test`` sets ``TIDELOOP_EXPECT_BUILD`` to ``compiled`` or ``pure`` for
each run; the first test fails if the running build is not that one, so a
compiled run cannot pass after silently falling back to the pure build.
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tideloop import _build

ROOT = Path(__file__).resolve().parent.parent


def compiled_module_names() -> list[str]:
    """setup.py's MYPYC_MODULES as module names (read, not executed)."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        if isinstance(target, ast.Name) and target.id == "MYPYC_MODULES":
            assert node.value is not None
            paths: list[str] = ast.literal_eval(node.value)
            return [p.removesuffix(".py").replace("/", ".") for p in paths]
    raise AssertionError("setup.py has no MYPYC_MODULES")


HOT_MODULES = compiled_module_names()
EXTENSION_SUFFIXES = tuple(importlib.machinery.EXTENSION_SUFFIXES)


def is_extension(module_name: str) -> bool:
    module = importlib.import_module(module_name)
    return str(module.__file__).endswith(EXTENSION_SUFFIXES)


def test_hot_module_list_leaves_the_selectors_uncompiled() -> None:
    assert HOT_MODULES
    assert "tideloop" not in HOT_MODULES
    assert "tideloop.__init__" not in HOT_MODULES
    assert "tideloop._build" not in HOT_MODULES


def test_running_build_is_the_expected_one() -> None:
    expected = os.environ.get("TIDELOOP_EXPECT_BUILD", "")
    compiled = [name for name in HOT_MODULES if is_extension(name)]
    description = _build.describe()
    pure_env = os.environ.get("TIDELOOP_PURE_PYTHON", "") not in ("", "0")
    assert _build.pure_selected() is pure_env
    if expected == "compiled":
        assert compiled == HOT_MODULES, description
        assert description.startswith("compiled (mypyc "), description
        assert _build.compiler() == description.removeprefix("compiled (").removesuffix(")")
    elif expected == "pure":
        assert compiled == [], description
        assert description.startswith("pure Python"), description
    else:
        # Not set (a plain pytest run): the description agrees with what is loaded.
        assert expected == "", f"TIDELOOP_EXPECT_BUILD={expected!r}: compiled or pure"
        assert compiled in ([], HOT_MODULES)
        assert description.startswith("compiled" if compiled else "pure Python"), description


def run_python(code: str, pure: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TIDELOOP_PURE_PYTHON"}
    if pure is not None:
        env["TIDELOOP_PURE_PYTHON"] = pure
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=40,
        cwd=ROOT / "tests",  # not the checkout's root: the installed tideloop
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )


# Imports the hot modules, runs a TCP echo on the loop, prints what ran.
PROBE = """
import asyncio, importlib, json, sys, tideloop
from tideloop import _build

async def main():
    async def echo(reader, writer):
        writer.write(await reader.read(100))
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])
    writer.write(b"ping")
    data = await reader.read(100)
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()
    return data.decode()

echoed = tideloop.run(main())
files = {name: importlib.import_module(name).__file__ for name in MODULES}
print(json.dumps({"echoed": echoed, "files": files, "build": _build.describe(),
                  "compiler": _build.compiler(), "pure_selected": _build.pure_selected()}))
"""


def probe(pure: str | None) -> dict[str, object]:
    proc = run_python(f"MODULES = {HOT_MODULES!r}\n{PROBE}", pure)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout)
    assert result["echoed"] == "ping"
    return result


@pytest.mark.timeout(60)
@pytest.mark.parametrize("value", ["1", "yes", "0x"])
def test_pure_python_env_selects_the_py_modules(value: str) -> None:
    result = probe(value)
    files = result["files"]
    assert isinstance(files, dict)
    assert sorted(files) == sorted(HOT_MODULES)
    assert all(str(path).endswith(".py") for path in files.values()), files
    assert result["pure_selected"] is True
    build = str(result["build"])
    if result["compiler"] is None:  # no compiled build installed
        assert build == "pure Python"
    else:
        assert build == (
            f"pure Python (TIDELOOP_PURE_PYTHON selected it; the compiled build, "
            f"{result['compiler']}, is installed)"
        )


@pytest.mark.timeout(60)
@pytest.mark.parametrize("value", [None, "", "0"])
def test_unset_empty_or_zero_keeps_the_installed_build(value: str | None) -> None:
    result = probe(value)
    files = result["files"]
    assert isinstance(files, dict)
    in_process = {name: importlib.import_module(name).__file__ for name in HOT_MODULES}
    if os.environ.get("TIDELOOP_PURE_PYTHON", "") in ("", "0"):
        # This process runs the installed build as chosen: so does the child.
        assert files == in_process
    assert result["pure_selected"] is False
    compiled = any(str(path).endswith(EXTENSION_SUFFIXES) for path in files.values())
    assert compiled is (result["compiler"] is not None)


@pytest.mark.timeout(60)
def test_info_names_the_build() -> None:
    env = dict(os.environ, TIDELOOP_PURE_PYTHON="1")
    proc = subprocess.run(
        [sys.executable, "-m", "tideloop", "info"],
        capture_output=True,
        text=True,
        timeout=40,
        cwd=ROOT / "tests",
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("build ")]
    assert len(lines) == 1, proc.stdout
    assert lines[0].split(None, 1)[1].startswith("pure Python"), lines[0]
    if _build.compiler() is not None:
        assert "TIDELOOP_PURE_PYTHON selected it" in lines[0]
    proc = subprocess.run(
        [sys.executable, "-m", "tideloop", "info", "--json"],
        capture_output=True,
        text=True,
        timeout=40,
        cwd=ROOT / "tests",
        env={k: v for k, v in os.environ.items() if k != "TIDELOOP_PURE_PYTHON"},
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["build_compiler"] == _build.compiler()
    if _build.compiler() is None:
        assert info["build"] == "pure Python"
    else:
        assert info["build"] == f"compiled ({_build.compiler()})"
