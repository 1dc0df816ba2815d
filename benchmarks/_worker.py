"""Subprocess side of the benchmark runner.

``python -m benchmarks._worker SPEC_JSON`` creates one fresh loop, runs one
benchmark on it (a warm-up pass, then ``repeats`` timed passes) and prints one
JSON object as the last line of stdout::

    {"ok": true, "samples": [[wall_s, cpu_s], ...], "loop_type": "...", "build": {...}, ...}
    {"ok": false, "error": "AssertionError: ...", "traceback": "..."}

SPEC_JSON keys: group, bench, loop (a loop spec such as ``tideloop-epoll``),
n, warmup_n, repeats.  ``build`` (tideloop rows only) is
``_build.tideloop_build()``: which modules of tideloop were compiled.  The
``pyfloor`` row runs the benchmark's ``floor`` (bare Python, no loop).
"""

from __future__ import annotations

import asyncio
import json
import sys
import traceback
from typing import Any

from . import get_group
from ._build import tideloop_build
from ._core import Benchmark, Timer, close_loop, make_loop, parse_loop_spec


def run_spec(spec: dict[str, Any]) -> dict[str, Any]:
    bench = get_group(str(spec["group"])).get(str(spec["bench"]))
    loop_spec = parse_loop_spec(str(spec["loop"]))
    n = int(spec["n"])
    warmup_n = int(spec["warmup_n"])
    repeats = int(spec["repeats"])

    if loop_spec.kind == "pyfloor":
        return _run_floor(bench, n, warmup_n, repeats)
    loop = make_loop(loop_spec)
    loop_type = f"{type(loop).__module__}.{type(loop).__qualname__}"
    build = tideloop_build() if loop_spec.is_tideloop else None
    samples: list[list[float]] = []
    try:
        asyncio.set_event_loop(loop)
        if warmup_n > 0:
            bench.fn(loop, warmup_n, Timer())
        for _ in range(repeats):
            timer = Timer()
            bench.fn(loop, n, timer)
            if timer.uses != 1:
                raise RuntimeError(f"benchmark {bench.name} used its timer {timer.uses} times")
            samples.append([timer.wall, timer.cpu])
    finally:
        close_loop(loop)
    return {"ok": True, "samples": samples, "loop_type": loop_type, "n": n, "build": build}


def _run_floor(bench: Benchmark, n: int, warmup_n: int, repeats: int) -> dict[str, Any]:
    """The ``pyfloor`` row: the benchmark's bare-Python floor, no event loop."""
    floor = bench.floor
    if floor is None:
        raise ValueError(f"benchmark {bench.name} has no pyfloor")
    if warmup_n > 0:
        floor(warmup_n, Timer())
    samples: list[list[float]] = []
    for _ in range(repeats):
        timer = Timer()
        floor(n, timer)
        if timer.uses != 1:
            raise RuntimeError(f"the floor of {bench.name} used its timer {timer.uses} times")
        samples.append([timer.wall, timer.cpu])
    return {"ok": True, "samples": samples, "loop_type": "pyfloor (bare Python)", "n": n}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m benchmarks._worker SPEC_JSON", file=sys.stderr)
        return 2
    try:
        result = run_spec(json.loads(args[0]))
    except BaseException as exc:
        result = {
            "ok": False,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        }
    sys.stdout.write("\n" + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
