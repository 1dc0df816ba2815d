"""The stream echo benchmark: tideloop's main job, measured against asyncio and uvloop.

Servers under test (``_echo_server``: Protocol, BufferedProtocol and streams
echo, a split-write echo and a keep-alive HTTP/1.1 server) run in processes
of their own, driven by a load generator that costs less per message than
they do (``_loadgen_c``: a C epoll client built at bench time; else the
multi-process Python client of ``_loadgen``).  Every connection does
ping-pong and every byte that comes back is checked.

Layout: this module holds the matrix of cases, the ``streams`` group's entry
for the CLI (``GROUP``, ``run_cli``) and the round-robin over cases and loops
(``run_streams``); ``_streams_run`` does one run (processes, control pipes,
CPU samples); ``_streams_report`` turns runs into figures and tables.

Figures per (case, loop): messages/s; the server's CPU time per message as
the OS accounts it (``getrusage`` in the server over the window), total and
user-space; the client's CPU per message, flagged when it exceeds the
server's (the client, not the server, then sets the pace); ratios.  Every
round runs the whole matrix, the loop order rotated each round.

Run it with ``python -m tideloop bench`` (the default group) or
``python benchmarks/echo.py``; see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from ._core import BenchGroup, Benchmark, LoopSpec, Timer
from ._loadgen import ClientInfo, resolve_client
from ._runner import _si, _worker_env, loop_versions
from ._streams_report import CaseResult, LoopStats, StreamsReport, format_streams_report
from ._streams_run import Case, Plan, RunError, run_once

__all__ = [
    "DEFAULT_CASES",
    "FULL_CASES",
    "GROUP",
    "QUICK_CASES",
    "Case",
    "Plan",
    "StreamsReport",
    "format_streams_report",
    "main",
    "run_cli",
    "run_streams",
    "select_cases",
]

ProgressFn = Callable[[str], None]

SIZES: Final = (64, 1024, 100 * 1024)
CONNS: Final = (10, 100)


def _full_cases() -> tuple[Case, ...]:
    cases = [
        Case(handler, size, conns)
        for handler in ("protocol", "buffered", "streams", "split")
        for size in SIZES
        for conns in CONNS
    ]
    cases.extend(Case("http", 0, conns) for conns in CONNS)
    return tuple(cases)


#: Every case (``--full``); ``--bench`` picks any of them by name.
FULL_CASES: Final = _full_cases()
#: The default run: 1 KiB / 10 connections for every handler kind, plus one
#: 64 B, one 100 KiB and one 100-connection case.
DEFAULT_CASES: Final = (
    Case("protocol", 1024, 10),
    Case("buffered", 1024, 10),
    Case("streams", 1024, 10),
    Case("split", 1024, 10),
    Case("http", 0, 10),
    Case("protocol", 64, 10),
    Case("protocol", 100 * 1024, 10),
    Case("protocol", 1024, 100),
)
#: ``--quick``: every handler kind once, short windows, one round.
QUICK_CASES: Final = DEFAULT_CASES[:5]

_CASES_BY_NAME: Final = {case.name: case for case in FULL_CASES}


def run_streams(
    cases: Sequence[Case],
    loops: Sequence[LoopSpec],
    client: ClientInfo,
    plan: Plan,
    *,
    quick: bool = False,
    full: bool = False,
    progress: ProgressFn | None = None,
) -> StreamsReport:
    """Run every case on every loop, ``plan.rounds`` times, rounds alternating."""
    labels = [spec.label for spec in loops]
    results = {case.name: {label: LoopStats(label) for label in labels} for case in cases}
    env = _worker_env()
    total = plan.rounds * len(cases) * len(loops)
    step = 0
    start = time.perf_counter()
    for rnd in range(plan.rounds):
        shift = rnd % len(loops)
        order = list(loops[shift:]) + list(loops[:shift])
        for case in cases:
            for spec in order:
                step += 1
                stats = results[case.name][spec.label]
                if stats.error is not None:
                    continue  # failed once: do not pay for it again
                head = (
                    f"[{step:>3}/{total}] streams/{case.name:<18} {spec.label:<14} "
                    f"round {rnd + 1}/{plan.rounds}"
                )
                if progress is not None:
                    progress(head)
                try:
                    sample, loop_type = run_once(case, spec, client, plan, env)
                except RunError as exc:
                    stats.error = str(exc)
                    stats.detail = exc.detail
                    if progress is not None:
                        progress(f"{head}  FAILED: {exc}")
                    continue
                stats.samples.append(sample)
                stats.loop_type = loop_type
                if progress is not None:
                    bg = sample.background_cores
                    progress(
                        f"{head}  {_si(sample.msgs_per_sec)} msg/s  server "
                        f"{sample.server_us:.2f}/{sample.server_user_us:.2f} µs  client "
                        f"{sample.client_us:.2f} µs" + ("" if bg is None else f"  bg {bg:.2f}")
                    )
    return StreamsReport(
        loops=labels,
        quick=quick,
        full=full,
        plan=plan,
        client=client,
        cases=[CaseResult(case, results[case.name]) for case in cases],
        elapsed=time.perf_counter() - start,
        versions=loop_versions(loops),
    )


# -- the command line ----------------------------------------------------------------


def select_cases(*, quick: bool, full: bool, only: Sequence[str] | None) -> list[Case]:
    if only:
        return [_CASES_BY_NAME[name] for name in only]
    if full:
        return list(FULL_CASES)
    return list(QUICK_CASES if quick else DEFAULT_CASES)


def run_cli(
    args: argparse.Namespace,
    loops: Sequence[LoopSpec],
    only: Sequence[str] | None,
    progress: ProgressFn | None,
) -> int:
    """``tideloop bench --group streams`` with parsed ``args`` (see ``_cli``)."""
    try:
        if args.repeats is not None:
            raise ValueError("--repeats applies to the micro group (streams: one window per run)")
        for opt in ("duration", "warmup", "client_procs"):
            value = getattr(args, opt, None)
            if value is not None and value <= 0:
                raise ValueError(f"--{opt.replace('_', '-')} must be positive")
        client = resolve_client(args.client, args.client_procs)
    except (ValueError, RuntimeError) as exc:
        print(f"tideloop bench: error: {exc}", file=sys.stderr)
        return 2
    if client.kind != "c" and not args.quiet:
        print(
            f"tideloop bench: using the Python load generator ({client.note or 'requested'}); "
            "it may be slower than the servers (flagged with !)",
            file=sys.stderr,
        )
    plan = Plan.make(
        quick=args.quick,
        rounds=args.rounds,
        warmup_s=args.warmup,
        duration_s=args.duration,
        timeout_s=args.timeout,
    )
    cases = select_cases(quick=args.quick, full=args.full, only=only)
    report = run_streams(
        cases, loops, client, plan, quick=args.quick, full=args.full, progress=progress
    )
    if args.json:
        json.dump(report.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_streams_report(report))
    if report.failed:
        for name, res in report.failed:
            print(f"tideloop bench: {name} failed on {res.loop}: {res.error}", file=sys.stderr)
        return 1
    return 0


def _not_in_a_worker(loop: Any, n: int, timer: Timer) -> None:
    raise RuntimeError("stream benchmarks run a server process and a client, not a worker")


def _tagged(case: Case) -> str:
    tags = [
        tag for tag, cases in (("default", DEFAULT_CASES), ("quick", QUICK_CASES)) if case in cases
    ]
    return case.description + (f" [{', '.join(tags)}]" if tags else "")


#: The group's entry in ``GROUPS``: names and descriptions for ``--list`` and
#: ``--bench``; the module's ``run_cli`` runs it (not the worker runner).
GROUP: Final = BenchGroup(
    name="streams",
    description="TCP echo and HTTP servers under a C load generator, server CPU per message",
    benchmarks=tuple(
        Benchmark(case.name, _tagged(case), "message", n=0, quick_n=0, fn=_not_in_a_worker)
        for case in FULL_CASES
    ),
    rounds=3,
    repeats=1,
    quick_rounds=1,
    quick_repeats=1,
)


def main(argv: list[str] | None = None) -> int:
    """``python benchmarks/echo.py [options]``: the streams group of ``tideloop bench``."""
    from ._cli import run_bench_main

    return run_bench_main(argv, group="streams", prog="benchmarks/echo.py")
