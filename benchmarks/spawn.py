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
tideloop, tideloop-pure, asyncio and uvloop (when importable), each
measurement in a fresh interpreter; ``python -m benchmarks.spawn`` runs it
with options of its own (``--loop``, ``--rounds``).

``pyfloor`` (``--loops ...,pyfloor``, or ``--loop pyfloor``) is each benchmark's ``floor``: the same
children spawned with ``subprocess.Popen`` and waited for in a bare epoll
loop (a pidfd, and the pipes), no event loop; it needs ``os.pidfd_open``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import select
import statistics
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from ._build import build_label, tideloop_build
from ._core import (
    BenchGroup,
    Benchmark,
    Timer,
    close_loop,
    loop_env,
    make_loop,
    parse_loop_spec,
)
from ._env import child_env
from ._runner import builds_line, merge_build

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


# -- pyfloor: the same children in a bare epoll loop --------------------------------
#
# subprocess.Popen (what every loop here spawns with), then the least a loop
# must do to learn of the child's exit without blocking: a pidfd (Linux 5.3+)
# in epoll, readable once the child has exited, then the reaping waitpid;
# and, with pipes, os.read of both until EOF.  No transports, protocols,
# futures or tasks: what a loop costs above this is the price of asyncio's
# subprocess API.


def _floor_children(n: int, timer: Timer, *, pipes: bool) -> None:
    program = child_program()
    done = 0
    epoll = select.epoll()
    pipe = subprocess.PIPE if pipes else None
    try:
        with timer:
            for _ in range(n):
                proc = subprocess.Popen(program, stdout=pipe, stderr=pipe)
                pidfd = os.pidfd_open(proc.pid)
                epoll.register(pidfd, select.EPOLLIN)
                streams = {}
                if pipes:
                    assert proc.stdout is not None and proc.stderr is not None
                    for stream in (proc.stdout, proc.stderr):
                        fd = stream.fileno()
                        os.set_blocking(fd, False)
                        epoll.register(fd, select.EPOLLIN)
                        streams[fd] = bytearray()
                exited = False
                while not exited or streams:
                    for fd, _mask in epoll.poll():
                        if fd == pidfd:
                            exited = True
                            epoll.unregister(pidfd)
                            continue
                        data = os.read(fd, 65536)
                        if data:
                            streams[fd] += data
                            continue
                        epoll.unregister(fd)
                        if streams.pop(fd):
                            raise AssertionError("the child wrote output")
                os.close(pidfd)
                if proc.stdout is not None:
                    proc.stdout.close()
                if proc.stderr is not None:
                    proc.stderr.close()
                if proc.wait() == 0:
                    done += 1
    finally:
        epoll.close()
    _check(done == n, f"{done} of {n} children exited with 0")


def floor_spawn_wait(n: int, timer: Timer) -> None:
    """Popen(true), then its pidfd in epoll, then waitpid."""
    _floor_children(n, timer, pipes=False)


def floor_spawn_communicate(n: int, timer: Timer) -> None:
    """Popen(true, stdout/stderr=PIPE), both pipes and the pidfd in epoll,
    read to EOF, then waitpid."""
    _floor_children(n, timer, pipes=True)


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
            floor=floor_spawn_wait,
        ),
        Benchmark(
            "spawn_communicate",
            "create_subprocess_exec('/bin/true', stdout/stderr=PIPE) + communicate()",
            "child",
            n=300,
            quick_n=80,
            fn=bench_spawn_communicate,
            floor=floor_spawn_communicate,
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


def _worker(loop_name: str, bench_name: str, n: int, repeats: int) -> dict[str, Any]:
    bench = GROUP.get(bench_name)
    spec = parse_loop_spec(loop_name)
    samples: list[tuple[float, float]] = []
    build = None
    if spec.kind == "pyfloor":
        floor = bench.floor
        assert floor is not None
        floor(max(1, n // 10), Timer())  # warm-up
        for _ in range(repeats):
            timer = Timer()
            floor(n, timer)
            samples.append((timer.wall, timer.cpu))
    else:
        loop = make_loop(spec)
        build = tideloop_build() if spec.is_tideloop else None
        try:
            asyncio.set_event_loop(loop)
            bench.fn(loop, max(1, n // 10), Timer())  # warm-up
            for _ in range(repeats):
                timer = Timer()
                bench.fn(loop, n, timer)
                samples.append((timer.wall, timer.cpu))
        finally:
            close_loop(loop)
    return {
        "wall": min(w for w, _ in samples),
        "cpu": min(c for _, c in samples),
        "n": n,
        "build": build,
    }


def _run_worker(
    loop_name: str, bench_name: str, n: int, repeats: int
) -> tuple[float, float, str | None]:
    """(children/s, parent CPU s per child, build label of a tideloop row) of
    one fresh interpreter, best passes.  The interpreter's environment is the
    row's (``_core.loop_env``: TIDELOOP_PURE_PYTHON=1 for a ``-pure`` row only)."""
    env = child_env(
        base={
            k: v
            for k, v in os.environ.items()
            if k not in ("PYTHONASYNCIODEBUG", "PYTHONDEVMODE", "PYTHONTRACEMALLOC")
        }
    )
    env = loop_env(parse_loop_spec(loop_name), env)
    cmd = [sys.executable, "-m", "benchmarks.spawn", "--worker", loop_name, bench_name]
    cmd += [str(n), str(repeats)]
    out = subprocess.run(cmd, capture_output=True, env=env, timeout=300, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{loop_name} {bench_name}: worker failed:\n{out.stderr.decode()}")
    result = json.loads(out.stdout.decode().strip().splitlines()[-1])
    count = float(result["n"])
    build = build_label(result["build"]) if result.get("build") else None
    return count / float(result["wall"]), float(result["cpu"]) / count, build


def available_loops() -> list[str]:
    loops = ["tideloop", "tideloop-pure", "asyncio"]
    if importlib.util.find_spec("uvloop") is not None:
        loops.append("uvloop")
    return loops


def run(
    loops: Sequence[str],
    *,
    quick: bool = False,
    rounds: int | None = None,
    builds: dict[str, str | None] | None = None,
) -> Results:
    """Every benchmark on every loop, ``rounds`` times, loop order rotated per
    round; ``builds`` (when given) receives each tideloop row's build label."""
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
                rate, cpu, build = _run_worker(name, bench.name, n, repeats)
                per_loop[name].append((rate, cpu))
                if builds is not None and name.startswith("tideloop"):
                    builds[name] = merge_build(builds.get(name), build)
        results[bench.name] = per_loop
    return results


def format_results(results: Results, builds: dict[str, str | None] | None = None) -> str:
    lines = [
        f"tideloop spawn benchmark: Python {sys.version.split()[0]}, "
        f"child {child_program()[0]}, {os.cpu_count()} CPUs",
        "children/s: best round (median round); parent CPU per child: best round",
        "x = tideloop/other for children/s, other/tideloop for CPU: > 1 favours tideloop",
    ]
    if builds:
        lines.append(builds_line(builds) or "")
    for bench, per_loop in results.items():
        lines.append(f"{bench}:")
        best = {name: max(rate for rate, _ in samples) for name, samples in per_loop.items()}
        cpu = {name: min(c for _, c in samples) for name, samples in per_loop.items()}
        for name, samples in per_loop.items():
            rates = [rate for rate, _ in samples]
            lines.append(
                f"  {name:<14} {best[name]:7.0f}/s ({statistics.median(rates):.0f})"
                f"  cpu {cpu[name] * 1e6:5.0f} us/child"
            )
        ratios = [
            f"{subject}/{other} x{best[subject] / best[other]:.2f} rate"
            f" x{cpu[other] / cpu[subject]:.2f} cpu"
            for subject in per_loop
            if subject.startswith("tideloop")
            for other in per_loop
            if not other.startswith("tideloop")
            or parse_loop_spec(other).compiled_row == parse_loop_spec(subject)
        ]
        lines.extend(f"    {ratio}" for ratio in ratios)
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
        "--loop",
        action="append",
        dest="loops",
        help="tideloop[-BACKEND], tideloop-pure[-BACKEND], asyncio, uvloop, pyfloor "
        "(default: tideloop, tideloop-pure, asyncio, uvloop when importable)",
    )
    args = parser.parse_args(args_list)
    loops = args.loops or available_loops()
    for name in loops:
        try:
            parse_loop_spec(name)
        except ValueError as exc:
            parser.error(str(exc))
    builds: dict[str, str | None] = {}
    results = run(loops, quick=args.quick, rounds=args.rounds, builds=builds)
    print(format_results(results, builds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
