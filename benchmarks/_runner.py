"""Parent side of the benchmark runner: subprocesses, statistics, reports.

Plan for one group: for each benchmark, for each round, for each loop (the
loop order rotated every round) start a fresh worker interpreter, which does a
warm-up pass and ``repeats`` timed passes of ``n`` operations.  Per worker the
fastest pass counts (noise only ever adds time); across rounds we keep both
the best and the median.  Ratios are ``tideloop ops/s / other ops/s`` from the
best figures, so ``> 1`` means tideloop is faster; medians are in the JSON too.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ._build import build_label, builds_line
from ._core import BenchGroup, Benchmark, LoopSpec, loop_env, parse_loop_spec
from ._env import child_env

__all__ = [
    "BenchResult",
    "LoopResult",
    "Report",
    "builds_line",
    "format_report",
    "loop_versions",
    "merge_build",
    "pair_ratios",
    "print_report",
    "run_group",
]

ProgressFn = Callable[[str], None]

#: Environment variables that change how a loop behaves (debug mode) and would
#: make the comparison meaningless; the workers run without them.
_SCRUBBED_ENV = ("PYTHONASYNCIODEBUG", "PYTHONDEVMODE", "PYTHONTRACEMALLOC")


class Compared(Protocol):
    """What :func:`pair_ratios` compares: one loop's figures."""

    @property
    def loop(self) -> str: ...

    @property
    def ok(self) -> bool: ...


ComparedT = TypeVar("ComparedT", bound=Compared)
#: ``kind -> f(subject, other)``: the ratio, ``> 1`` meaning the subject is better.
RatioFns = Mapping[str, Callable[[ComparedT, ComparedT], "float | None"]]


def pair_ratios(
    results: Sequence[ComparedT],
    kind: str,
    fns: RatioFns[ComparedT],
    *,
    first_if_no_tideloop: bool = False,
) -> dict[str, float | None]:
    """``{"subject/other": fns[kind](subject, other)}`` (None where either failed).

    The subjects are the tideloop loops (with ``first_if_no_tideloop`` and no
    tideloop loop, the first loop), compared with every other loop; a
    ``tideloop[-BACKEND]`` row is compared with its ``tideloop-pure[-BACKEND]``
    row as well (what the compiled build gains).
    """
    subjects = [r for r in results if r.loop.startswith("tideloop")]
    if not subjects and first_if_no_tideloop:
        subjects = list(results[:1])
    out: dict[str, float | None] = {}
    for s in subjects:
        for o in results:
            if o in subjects and not _compiled_over_pure(s.loop, o.loop):
                continue
            value: float | None = None
            if s.ok and o.ok:
                try:
                    fn = fns[kind]
                except KeyError:
                    raise ValueError(kind)
                value = fn(s, o)
            out[f"{s.loop}/{o.loop}"] = value
    return out


def _compiled_over_pure(subject: str, other: str) -> bool:
    """``tideloop[-B]`` over ``tideloop-pure[-B]``: the one ratio between two tideloop rows."""
    try:
        a, b = parse_loop_spec(subject), parse_loop_spec(other)
    except ValueError:
        return False
    return b.compiled_row == a


def merge_build(seen: str | None, label: str | None) -> str | None:
    """A row's build label over its runs (each a fresh process): one label,
    or every label seen, joined by " / ", when the runs disagreed."""
    if label is None:
        return seen
    if seen is None:
        return label
    return seen if label in seen.split(" / ") else f"{seen} / {label}"


@dataclass
class LoopResult:
    """All samples of one loop on one benchmark."""

    loop: str
    n: int
    rounds: list[list[list[float]]] = field(default_factory=list)  # round -> [[wall, cpu]]
    loop_type: str | None = None
    error: str | None = None
    traceback: str | None = None
    #: tideloop rows: which build ran (``_build.build_label``).
    build: str | None = None

    def _round_best(self, index: int) -> list[float]:
        return [min(s[index] for s in samples) for samples in self.rounds if samples]

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self._round_best(0))

    @property
    def best_wall(self) -> float:
        return min(self._round_best(0))

    @property
    def median_wall(self) -> float:
        return float(statistics.median(self._round_best(0)))

    @property
    def best_cpu(self) -> float:
        return min(self._round_best(1))

    @property
    def spread(self) -> float:
        """(slowest round - fastest round) / median round, 0 with one round."""
        walls = self._round_best(0)
        return (max(walls) - min(walls)) / statistics.median(walls) if len(walls) > 1 else 0.0

    def ops_per_sec(self) -> float:
        return self.n / self.best_wall

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "loop": self.loop,
            "loop_type": self.loop_type,
            "build": self.build,
            "n": self.n,
            "ok": self.ok,
            "error": self.error,
        }
        if self.ok:
            data.update(
                ops_per_sec=self.n / self.best_wall,
                ops_per_sec_median=self.n / self.median_wall,
                wall_us_per_op=self.best_wall / self.n * 1e6,
                cpu_us_per_op=self.best_cpu / self.n * 1e6,
                spread=self.spread,
            )
        else:
            data["traceback"] = self.traceback
        data["samples"] = self.rounds
        return data


#: ``BenchResult.ratios``: other's time over tideloop's.
_RATIOS: RatioFns[LoopResult] = {
    "best": lambda t, o: o.best_wall / t.best_wall,
    "median": lambda t, o: o.median_wall / t.median_wall,
    "cpu": lambda t, o: o.best_cpu / t.best_cpu if t.best_cpu > 0 else None,
}


@dataclass
class BenchResult:
    bench: Benchmark
    n: int
    results: dict[str, LoopResult]

    def ratios(self, kind: str = "best") -> dict[str, float | None]:
        """``{"tideloop/asyncio": x, ...}``: tideloop speed over the other's
        (ops/s for ``best`` and ``median``, CPU per op for ``cpu``)."""
        return pair_ratios(list(self.results.values()), kind, _RATIOS)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.bench.name,
            "description": self.bench.description,
            "unit": self.bench.unit,
            "n": self.n,
            "results": {name: r.to_json() for name, r in self.results.items()},
            "ratios": self.ratios("best"),
            "ratios_median": self.ratios("median"),
            "cpu_ratios": self.ratios("cpu"),
        }


@dataclass
class Report:
    group: BenchGroup
    loops: list[str]
    quick: bool
    rounds: int
    repeats: int
    benchmarks: list[BenchResult]
    elapsed: float
    versions: dict[str, str | None]

    @property
    def failed(self) -> list[tuple[str, LoopResult]]:
        return [(b.bench.name, r) for b in self.benchmarks for r in b.results.values() if not r.ok]

    def builds(self) -> dict[str, str | None]:
        """``{tideloop row: build label}`` (None where no run of the row worked)."""
        out: dict[str, str | None] = {}
        for label in self.loops:
            if label.startswith("tideloop"):
                seen: str | None = None
                for b in self.benchmarks:
                    seen = merge_build(seen, b.results[label].build)
                out[label] = seen
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "tool": "tideloop bench",
            "group": self.group.name,
            "quick": self.quick,
            "rounds": self.rounds,
            "repeats": self.repeats,
            "loops": self.loops,
            "builds": self.builds(),
            "versions": self.versions,
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "elapsed_s": self.elapsed,
            "benchmarks": [b.to_json() for b in self.benchmarks],
        }


def loop_versions(loops: Sequence[LoopSpec]) -> dict[str, str | None]:
    import importlib.metadata

    import tideloop

    out: dict[str, str | None] = {"python": platform.python_version()}
    for spec in loops:
        if spec.kind == "tideloop":
            out[spec.label] = tideloop.__version__
        elif spec.kind in ("asyncio", "pyfloor"):
            out[spec.kind] = platform.python_version()
        else:
            try:
                out[spec.kind] = importlib.metadata.version(spec.kind)
            except importlib.metadata.PackageNotFoundError:
                out[spec.kind] = None
    return out


def _worker_env() -> dict[str, str]:
    """The parent's environment, minus debug switches, with the directory that
    holds *this* tideloop first on PYTHONPATH so workers measure the same code,
    then this checkout's root (for ``python -m benchmarks._worker``)."""
    import tideloop

    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    return child_env(str(Path(tideloop.__file__).resolve().parent.parent), base=env)


def _run_worker(spec: dict[str, Any], env: dict[str, str], timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks._worker", json.dumps(spec)]
    try:
        proc = subprocess.run(
            cmd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {timeout:g} s", "traceback": None}
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if lines:
        try:
            result = json.loads(lines[-1])
            if isinstance(result, dict):
                return result
        except json.JSONDecodeError:
            pass
    return {
        "ok": False,
        "error": f"worker exited with status {proc.returncode} and no result",
        "traceback": (proc.stderr or proc.stdout)[-4000:],
    }


def run_group(
    group: BenchGroup,
    loops: Sequence[LoopSpec],
    *,
    quick: bool = False,
    rounds: int | None = None,
    repeats: int | None = None,
    only: Sequence[str] | None = None,
    timeout: float | None = None,
    progress: ProgressFn | None = None,
) -> Report:
    """Run ``group`` (or the benchmarks named in ``only``) on every loop."""
    if rounds is None:
        rounds = group.quick_rounds if quick else group.rounds
    if repeats is None:
        repeats = group.quick_repeats if quick else group.repeats
    if timeout is None:
        timeout = 30.0 if quick else 120.0
    benches = list(group.benchmarks)
    if only:
        benches = [group.get(name) for name in only]
    labels = [spec.label for spec in loops]
    base_env = _worker_env()
    envs = {spec.label: loop_env(spec, base_env) for spec in loops}
    total = len(benches) * rounds * len(labels)
    step = 0
    start = time.perf_counter()
    out: list[BenchResult] = []
    for bench in benches:
        n = bench.quick_n if quick else bench.n
        warmup_n = max(1, n // 10)
        results = {label: LoopResult(label, n) for label in labels}
        for rnd in range(rounds):
            shift = rnd % len(labels)
            for label in labels[shift:] + labels[:shift]:
                step += 1
                res = results[label]
                if res.error is not None:
                    continue  # failed once: do not pay for it again
                if progress is not None:
                    progress(
                        f"[{step:>3}/{total}] {group.name}/{bench.name:<22} "
                        f"{label:<16} round {rnd + 1}/{rounds}"
                    )
                spec = {
                    "group": group.name,
                    "bench": bench.name,
                    "loop": label,
                    "n": n,
                    "warmup_n": warmup_n,
                    "repeats": repeats,
                }
                reply = _run_worker(spec, envs[label], timeout)
                if reply.get("ok"):
                    res.rounds.append([[float(w), float(c)] for w, c in reply["samples"]])
                    res.loop_type = reply.get("loop_type")
                    build = reply.get("build")
                    if build is not None:
                        res.build = merge_build(res.build, build_label(build))
                else:
                    res.error = str(reply.get("error"))
                    res.traceback = reply.get("traceback")
        out.append(BenchResult(bench, n, results))
    return Report(
        group=group,
        loops=labels,
        quick=quick,
        rounds=rounds,
        repeats=repeats,
        benchmarks=out,
        elapsed=time.perf_counter() - start,
        versions=loop_versions(loops),
    )


# -- formatting ---------------------------------------------------------------


class _Failure(Protocol):
    @property
    def loop(self) -> str: ...

    @property
    def error(self) -> str | None: ...


class Printable(Protocol):
    """A group's report, as :func:`print_report` prints it."""

    @property
    def failed(self) -> Sequence[tuple[str, _Failure]]: ...

    def to_json(self) -> dict[str, Any]: ...


PrintableT = TypeVar("PrintableT", bound=Printable)


def print_report(
    report: PrintableT, as_json: bool, format_report: Callable[[PrintableT], str]
) -> int:
    """The report on stdout (``format_report``'s table, or JSON), a line per
    failed benchmark on stderr; the exit status: 1 if any failed, else 0."""
    if as_json:
        json.dump(report.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_report(report))
    if report.failed:
        for name, res in report.failed:
            print(f"benchmarks: {name} failed on {res.loop}: {res.error}", file=sys.stderr)
        return 1
    return 0


def _si(value: float) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:.2f}{suffix}"
    return f"{value:.1f}"


def _us(value: float) -> str:
    return f"{value:.3f}" if value < 10 else f"{value:.1f}" if value < 1000 else f"{value:.0f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for k, row in enumerate([header, *rows]):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def format_report(report: Report) -> str:
    loops = report.loops
    lines: list[str] = []
    mode = "quick" if report.quick else "full"
    lines.append(
        f"tideloop bench --group {report.group.name} ({mode}): "
        f"Python {platform.python_version()} {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs"
    )
    vers = ", ".join(f"{k} {v}" for k, v in report.versions.items() if k != "python" and v)
    lines.append(
        f"{report.rounds} round(s) x {report.repeats} timed pass(es) per loop, fresh "
        f"subprocess each, loop order rotated; best pass shown; {vers}"
    )
    builds = builds_line(report.builds())
    if builds:
        lines.append(builds)
    lines.append("")

    # Throughput and ratios.
    ratio_keys: list[str] = []
    if report.benchmarks:
        ratio_keys = list(report.benchmarks[0].ratios())
    header = ["benchmark", *[f"{lp} ops/s" for lp in loops], *ratio_keys]
    rows = []
    for b in report.benchmarks:
        row = [b.bench.name]
        for lp in loops:
            r = b.results[lp]
            if not r.ok:
                row.append("FAILED")
            elif report.rounds > 1:
                row.append(f"{_si(r.ops_per_sec())} ±{r.spread * 100:.0f}%")
            else:
                row.append(_si(r.ops_per_sec()))
        for value in b.ratios().values():
            row.append("-" if value is None else f"{value:.2f}x")
        rows.append(row)
    lines.append("Throughput (higher is better; ratio > 1 means tideloop is faster)")
    lines.extend(_table(header, rows))
    lines.append("")

    # Cost per operation.
    header = ["benchmark", "n x unit", *[f"{lp} wall/cpu µs" for lp in loops]]
    rows = []
    for b in report.benchmarks:
        row = [b.bench.name, f"{b.n} x {b.bench.unit}"]
        for lp in loops:
            r = b.results[lp]
            if r.ok:
                row.append(f"{_us(r.best_wall / b.n * 1e6)} / {_us(r.best_cpu / b.n * 1e6)}")
            else:
                row.append("FAILED")
        rows.append(row)
    lines.append("Cost per operation, µs (wall / CPU of all threads; lower is better)")
    lines.extend(_table(header, rows))
    lines.append("")
    for b in report.benchmarks:
        lines.append(f"  {b.bench.name:<22} {b.bench.description}")
    for name, r in report.failed:
        lines.append("")
        lines.append(f"FAILED {name} on {r.loop}: {r.error}")
        if r.traceback:
            lines.extend("    " + ln for ln in r.traceback.rstrip().splitlines()[-12:])
    lines.append("")
    lines.append(f"total {report.elapsed:.1f} s")
    return "\n".join(lines)
