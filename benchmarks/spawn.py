"""Subprocess spawn benchmark: children started and waited for, per second.

What it measures is the loop's share of running a short-lived child:
``asyncio.create_subprocess_exec`` (Popen, connecting the pipes, watching the
exit) and ``Process.wait()``/``communicate()``. The child is ``/bin/true``
where it exists (an exec and an exit, ~1 ms), so the loop's overhead is not
drowned in interpreter start-up; ``python -I -S -c pass`` elsewhere.

- ``spawn_wait``: no pipes; spawn, then ``await proc.wait()``;
- ``spawn_communicate``: stdout and stderr piped; ``await proc.communicate()``.

Two figures per loop: children per second (wall clock: fork/exec and the
scheduler dominate it, so it is noisy on a busy machine) and the parent's CPU
time per child (``time.process_time``, all threads of the parent: the loop's
real cost, watcher threads included).

The functions follow the ``BenchFn`` contract of ``_core`` and ``GROUP`` is a
:class:`BenchGroup`: ``python -m benchmarks --group spawn`` runs it on
tideloop, asyncio and uvloop (when importable), each measurement in a fresh
interpreter; ``python -m benchmarks.spawn`` runs it with options of its own
(``--loop``, ``--rounds``).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence

from ._core import BenchGroup, Benchmark, Timer, close_loop, make_loop, parse_loop_spec
from ._env import child_env

__all__ = ["GROUP", "bench_spawn_communicate", "bench_spawn_wait", "main"]


def child_program() -> list[str]:
    """The cheapest child that really execs: /bin/true, else a bare Python."""
    for path in ("/bin/true", "/usr/bin/true"):
        if os.access(path, os.X_OK):
            return [path]
    return [sys.executable, "-I", "-S", "-c", "pass"]


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def bench_spawn_wait(loop: asyncio.AbstractEventLoop, n: int, timer: Timer) -> None:
    """create_subprocess_exec(true), then await proc.wait(), n times in a row."""
    program = child_program()
    done = 0

    async def main() -> None:
        nonlocal done
        for _ in range(n):
            proc = await asyncio.create_subprocess_exec(*program)
            if await proc.wait() == 0:
                done += 1

    with timer:
        loop.run_until_complete(main())
    _check(done == n, f"{done} of {n} children exited with 0")


def bench_spawn_communicate(loop: asyncio.AbstractEventLoop, n: int, timer: Timer) -> None:
    """create_subprocess_exec(true, stdout=PIPE, stderr=PIPE), then communicate()."""
    program = child_program()
    done = 0

    async def main() -> None:
        nonlocal done
        for _ in range(n):
            proc = await asyncio.create_subprocess_exec(
                *program, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            out, err = await proc.communicate()
            if proc.returncode == 0 and out == b"" and err == b"":
                done += 1

    with timer:
        loop.run_until_complete(main())
    _check(done == n, f"{done} of {n} children exited with 0")


GROUP = BenchGroup(
    name="spawn",
    description="subprocesses: spawn a short-lived child and wait for it",
    benchmarks=(
        Benchmark(
            "spawn_wait",
            "create_subprocess_exec('/bin/true') + wait()",
            "child",
            n=400,
            quick_n=100,
            fn=bench_spawn_wait,
        ),
        Benchmark(
            "spawn_communicate",
            "create_subprocess_exec('/bin/true', stdout/stderr=PIPE) + communicate()",
            "child",
            n=300,
            quick_n=80,
            fn=bench_spawn_communicate,
        ),
    ),
    rounds=3,
    repeats=3,
    quick_rounds=1,
    quick_repeats=2,
)


# ---------------------------------------------------------------------------
# Standalone runner: one fresh interpreter per (benchmark, loop, round)
# ---------------------------------------------------------------------------

#: bench -> loop -> one (children/s, parent CPU seconds per child) per round
Results = dict[str, dict[str, list[tuple[float, float]]]]


def _worker(loop_name: str, bench_name: str, n: int, repeats: int) -> dict[str, float]:
    bench = GROUP.get(bench_name)
    loop = make_loop(parse_loop_spec(loop_name))
    samples: list[tuple[float, float]] = []
    try:
        asyncio.set_event_loop(loop)
        bench.fn(loop, max(1, n // 10), Timer())  # warm-up
        for _ in range(repeats):
            timer = Timer()
            bench.fn(loop, n, timer)
            samples.append((timer.wall, timer.cpu))
    finally:
        close_loop(loop)
    return {"wall": min(w for w, _ in samples), "cpu": min(c for _, c in samples), "n": n}


def _run_worker(loop_name: str, bench_name: str, n: int, repeats: int) -> tuple[float, float]:
    """(children/s, parent CPU s per child) of one fresh interpreter, best passes."""
    env = child_env(
        base={
            k: v
            for k, v in os.environ.items()
            if k not in ("PYTHONASYNCIODEBUG", "PYTHONDEVMODE", "PYTHONTRACEMALLOC")
        }
    )
    cmd = [sys.executable, "-m", "benchmarks.spawn", "--worker", loop_name, bench_name]
    cmd += [str(n), str(repeats)]
    out = subprocess.run(cmd, capture_output=True, env=env, timeout=300, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{loop_name} {bench_name}: worker failed:\n{out.stderr.decode()}")
    result = json.loads(out.stdout.decode().strip().splitlines()[-1])
    count = float(result["n"])
    return count / float(result["wall"]), float(result["cpu"]) / count


def available_loops() -> list[str]:
    loops = ["tideloop", "asyncio"]
    if importlib.util.find_spec("uvloop") is not None:
        loops.append("uvloop")
    return loops


def run(loops: Sequence[str], *, quick: bool = False, rounds: int | None = None) -> Results:
    """Every benchmark on every loop, ``rounds`` times, loop order rotated per round."""
    if rounds is None:
        rounds = GROUP.quick_rounds if quick else GROUP.rounds
    repeats = GROUP.quick_repeats if quick else GROUP.repeats
    results: Results = {}
    for bench in GROUP.benchmarks:
        n = bench.quick_n if quick else bench.n
        per_loop: dict[str, list[tuple[float, float]]] = {name: [] for name in loops}
        for r in range(rounds):
            shift = r % len(loops)
            for name in [*loops[shift:], *loops[:shift]]:
                per_loop[name].append(_run_worker(name, bench.name, n, repeats))
        results[bench.name] = per_loop
    return results


def format_results(results: Results) -> str:
    lines = [
        f"tideloop spawn benchmark: Python {sys.version.split()[0]}, "
        f"child {child_program()[0]}, {os.cpu_count()} CPUs",
        "children/s: best round (median round); parent CPU per child: best round",
        "x = tideloop/other for children/s, other/tideloop for CPU: > 1 favours tideloop",
    ]
    for bench, per_loop in results.items():
        lines.append(f"{bench}:")
        tide = per_loop.get("tideloop")
        for name, samples in per_loop.items():
            rates = [rate for rate, _ in samples]
            best = max(rates)
            cpu = min(c for _, c in samples)
            line = (
                f"  {name:<10} {best:7.0f}/s ({statistics.median(rates):.0f})"
                f"  cpu {cpu * 1e6:5.0f} us/child"
            )
            if tide is not None and name != "tideloop":
                tide_rate = max(rate for rate, _ in tide)
                tide_cpu = min(c for _, c in tide)
                line += f"   x{tide_rate / best:.2f} rate  x{cpu / tide_cpu:.2f} cpu"
            lines.append(line)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.spawn [--quick] [--rounds N] [--loop NAME ...]``."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["--worker"]:
        loop_name, bench_name, n, repeats = args_list[1:5]
        print(json.dumps(_worker(loop_name, bench_name, int(n), int(repeats))))
        return 0
    parser = argparse.ArgumentParser(prog="python -m benchmarks.spawn")
    parser.add_argument("--quick", action="store_true", help="fewer children and rounds")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument(
        "--loop", action="append", dest="loops", help="tideloop[-BACKEND], asyncio, uvloop"
    )
    args = parser.parse_args(args_list)
    loops = args.loops or available_loops()
    print(format_results(run(loops, quick=args.quick, rounds=args.rounds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
