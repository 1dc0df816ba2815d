"""``python -m tideloop run``: programs get tideloop loops from asyncio.run."""

from __future__ import annotations

import os
import re
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
def test_run_imports_no_benchmark_code(tmp_path: Path) -> None:
    # The benchmark suite is not part of the package: running a program under
    # tideloop loads tideloop, not benchmark code (and not its imports).
    script = tmp_path / "prog.py"
    script.write_text(
        "import asyncio, sys\n"
        "async def main():\n"
        "    return type(asyncio.get_running_loop()).__module__\n"
        "print(asyncio.run(main()))\n"
        "print(sorted(name for name in sys.modules if 'bench' in name.lower()))\n"
    )
    proc = _run(str(script), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["tideloop._loop", "[]"]


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
def test_run_module_gets_its_options_verbatim(tmp_path: Path) -> None:
    """As with ``python -m MODULE ARGS``: everything after the module name is
    the program's, options and ``--`` included."""
    (tmp_path / "progmod.py").write_text(PROGRAM)
    proc = _run("-m", "progmod", "--flag", "-P", "8080", "--", "x", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "tideloop._loop.EventLoop ['--flag', '-P', '8080', '--', 'x']"
    proc = _run("-mprogmod", "-v", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "tideloop._loop.EventLoop ['-v']"


@pytest.mark.timeout(60)
def test_run_file_keeps_double_dash(tmp_path: Path) -> None:
    (tmp_path / "prog.py").write_text(PROGRAM)
    proc = _run("prog.py", "--", "a", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "tideloop._loop.EventLoop ['--', 'a']"
    # A "--" before the file ends run's own options, as for python.
    proc = _run("--", "prog.py", "a", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "tideloop._loop.EventLoop ['a']"


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("module", "message"),
    [
        ("no_such_module_xyz", "No module named no_such_module_xyz"),
        ("no_such_pkg_xyz.sub", "No module named 'no_such_pkg_xyz'"),
        ("json", "No module named json.__main__; 'json' is a package and cannot be directly"),
    ],
)
def test_run_missing_module(tmp_path: Path, module: str, message: str) -> None:
    """One line and status 1, as ``python -m`` gives: no traceback."""
    proc = _run("-m", module, cwd=tmp_path)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.timeout(60)
def test_run_import_error_in_program_keeps_traceback(tmp_path: Path) -> None:
    (tmp_path / "badimport.py").write_text("import no_such_inner_module_xyz\n")
    proc = _run("-m", "badimport", cwd=tmp_path)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr
    assert "No module named 'no_such_inner_module_xyz'" in proc.stderr


@pytest.mark.timeout(60)
def test_run_usage(tmp_path: Path) -> None:
    proc = _run("--help", cwd=tmp_path)
    assert proc.returncode == 0
    assert "-m MODULE" in proc.stdout and "FILE" in proc.stdout
    proc = _run("-m", cwd=tmp_path)
    assert proc.returncode == 2
    assert "argument -m: expected one argument" in proc.stderr
    proc = _run("--bogus", cwd=tmp_path)
    assert proc.returncode == 2
    assert "unrecognized arguments: --bogus" in proc.stderr


@pytest.mark.timeout(120)
def test_installed_console_script(tmp_path: Path) -> None:
    """The ``tideloop`` command that ``pip install`` puts next to Python."""
    script = Path(sys.executable).parent / "tideloop"
    if not script.exists():
        pytest.skip("no tideloop console script next to this Python (scripts/test installs one)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    info = subprocess.run(
        [str(script), "info"], capture_output=True, text=True, timeout=60, env=env
    )
    assert info.returncode == 0, info.stderr
    assert "epoll" in info.stdout
    (tmp_path / "prog.py").write_text(PROGRAM)
    proc = subprocess.run(
        [str(script), "run", "prog.py", "a"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "tideloop._loop.EventLoop ['a']"


STATS_PROGRAM = """
import asyncio, sys, time

def hog():
    time.sleep(0.15)

async def main():
    loop = asyncio.get_running_loop()
    loop.set_debug(False)  # debug mode (PYTHONASYNCIODEBUG=1) would log the slow one
    loop.slow_callback_duration = 0.1
    for _ in range(30):
        await asyncio.sleep(0.001)
    loop.call_soon(hog)
    await asyncio.sleep(0)
    await asyncio.sleep(0)

asyncio.run(main())
print("ran", sys.argv[1:])
"""


@pytest.mark.timeout(60)
def test_run_stats_prints_a_summary(tmp_path: Path) -> None:
    script = tmp_path / "prog.py"
    script.write_text(STATS_PROGRAM)
    proc = _run("--stats", str(script), "--stats", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # An option after the program belongs to the program.
    assert proc.stdout == "ran ['--stats']\n"
    lines = proc.stderr.splitlines()
    assert lines[0] == "tideloop: 1 loop measured"
    assert re.fullmatch(
        r"loop 1 \(\w+\): \d+ iterations, \d+ callbacks, \d+ I/O events in .+", lines[1]
    ), lines[1]
    iterations, callbacks = (
        int(n) for n in re.findall(r"(\d+) (?:iterations|callbacks)", lines[1])
    )
    assert iterations >= 30 and callbacks >= 30
    assert re.fullmatch(r"  utilisation \d+\.\d% \(busy .+, idle .+\)", lines[2]), lines[2]
    assert re.fullmatch(
        r"  timer lag: 3\d timers, p50 <= .+, p90 <= .+, p99 <= .+, max .+", lines[3]
    ), lines[3]
    assert lines[4] == "  slow callbacks (>= 100.0 ms): 1"
    assert re.fullmatch(r" +\d+\.\d ms  <Handle hog\(\) at .*prog\.py:\d+>", lines[5]), lines[5]
    assert len(lines) == 6


@pytest.mark.timeout(60)
def test_run_stats_module_and_exit_status(tmp_path: Path) -> None:
    (tmp_path / "failing.py").write_text(
        "import asyncio, sys\nasyncio.run(asyncio.sleep(0))\nsys.exit(4)\n"
    )
    proc = _run("--stats", "-m", "failing", cwd=tmp_path)
    assert proc.returncode == 4
    assert proc.stderr.startswith("tideloop: 1 loop measured\n")
    assert "  timer lag: no timers ran\n" in proc.stderr


@pytest.mark.timeout(60)
def test_run_without_stats_prints_nothing_extra(tmp_path: Path) -> None:
    script = tmp_path / "prog.py"
    script.write_text(STATS_PROGRAM)
    proc = _run(str(script), cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == ""
