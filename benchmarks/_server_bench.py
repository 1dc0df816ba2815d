"""What the ``streams`` and ``udp`` groups share around their runs.

Both measure a server process under a load generator (one run:
``_streams_run.run_window``; figures and report tables: ``_streams_report``).
This module holds the rest they have in common: the matrix of cases
(:class:`CaseMatrix`: which cases ``--quick``, the default and ``--full`` run,
and the group's ``GROUP`` entry for ``--list`` and ``--bench``), the round
robin over cases and loops (:func:`run_rounds`) and the command line around
it (:func:`run_server_cli`).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from ._core import BenchGroup, Benchmark, LoopSpec, Timer, loop_env
from ._loadgen import ClientInfo
from ._runner import _si, _worker_env, loop_versions, print_report
from ._streams_report import CaseT, LoopStats, ServerReport
from ._streams_run import Plan, RunError, RunSample

__all__ = [
    "CaseMatrix",
    "check_positive",
    "refuse_repeats",
    "run_report",
    "run_rounds",
    "run_server_cli",
]

ProgressFn = Callable[[str], None]

SampleT = TypeVar("SampleT", bound=RunSample)
ReportT = TypeVar("ReportT", bound=ServerReport[Any])


class CaseMatrix(Generic[CaseT]):
    """A group's cases: every one (``--full``), the default run, ``--quick``."""

    def __init__(
        self, full: Sequence[CaseT], default: Sequence[CaseT], quick: Sequence[CaseT]
    ) -> None:
        self.full = tuple(full)
        self.default = tuple(default)
        self.quick = tuple(quick)
        self.by_name = {case.name: case for case in self.full}

    def select(self, *, quick: bool, full: bool, only: Sequence[str] | None) -> list[CaseT]:
        if only:
            return [self.by_name[name] for name in only]
        if full:
            return list(self.full)
        return list(self.quick if quick else self.default)

    def tagged(self, case: CaseT) -> str:
        """The case's description, with the runs that include it."""
        tags = [
            tag
            for tag, cases in (("default", self.default), ("quick", self.quick))
            if case in cases
        ]
        return case.description + (f" [{', '.join(tags)}]" if tags else "")

    def group(self, *, name: str, description: str, unit: str, what: str) -> BenchGroup:
        """The group's entry in ``GROUPS``: names and descriptions for ``--list``
        and ``--bench``; the group module's ``run_cli`` runs it (not the
        worker runner).  ``what`` names the benchmarks in the error of a
        worker asked to run one."""

        def not_in_a_worker(loop: Any, n: int, timer: Timer) -> None:
            raise RuntimeError(f"{what} benchmarks run a server process and a client, not a worker")

        return BenchGroup(
            name=name,
            description=description,
            benchmarks=tuple(
                Benchmark(case.name, self.tagged(case), unit, n=0, quick_n=0, fn=not_in_a_worker)
                for case in self.full
            ),
            rounds=3,
            repeats=1,
            quick_rounds=1,
            quick_repeats=1,
        )


def run_rounds(
    group: str,
    cases: Sequence[CaseT],
    loops: Sequence[LoopSpec],
    plan: Plan,
    run: Callable[[CaseT, LoopSpec, dict[str, str]], tuple[SampleT, str]],
    *,
    name_width: int,
    rate: str,
    note: Callable[[SampleT], str] | None = None,
    progress: ProgressFn | None = None,
) -> tuple[dict[str, dict[str, LoopStats]], float]:
    """Run every case on every loop, ``plan.rounds`` times, rounds alternating.

    ``run(case, loop, env)`` measures once; ``env`` is the loop's
    (``_core.loop_env``: ``TIDELOOP_PURE_PYTHON=1`` for a ``-pure`` row
    only).  Returns ``{case name: {loop label: LoopStats}}`` and the time it
    took.  A progress line per run names it
    ``group/case`` and gives its figures (the rate as ``rate``, then what
    ``note`` says of the sample).
    """
    labels = [spec.label for spec in loops]
    results = {case.name: {label: LoopStats(label) for label in labels} for case in cases}
    base_env = _worker_env()
    envs = {spec.label: loop_env(spec, base_env) for spec in loops}
    name_width = max([name_width, *(len(case.name) for case in cases)])
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
                    f"[{step:>3}/{total}] {group}/{case.name:<{name_width}} {spec.label:<14} "
                    f"round {rnd + 1}/{plan.rounds}"
                )
                if progress is not None:
                    progress(head)
                try:
                    sample, loop_type = run(case, spec, envs[spec.label])
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
                        f"{head}  {_si(sample.msgs_per_sec)} {rate}  server "
                        f"{sample.server_us:.2f}/{sample.server_user_us:.2f} µs  client "
                        f"{sample.client_us:.2f} µs"
                        + ("" if note is None else note(sample))
                        + ("" if bg is None else f"  bg {bg:.2f}")
                    )
    return results, time.perf_counter() - start


def run_report(
    report_cls: type[ReportT],
    result_cls: Callable[[CaseT, dict[str, LoopStats]], Any],
    cases: Sequence[CaseT],
    loops: Sequence[LoopSpec],
    client: ClientInfo,
    plan: Plan,
    run: Callable[[CaseT, LoopSpec, dict[str, str]], tuple[SampleT, str]],
    *,
    quick: bool,
    full: bool,
    name_width: int,
    rate: str,
    note: Callable[[SampleT], str] | None = None,
    progress: ProgressFn | None = None,
    **settings: Any,
) -> ReportT:
    """:func:`run_rounds`, then the group's report (``report_cls``, with
    ``settings``), a ``result_cls(case, {loop: LoopStats})`` per case."""
    results, elapsed = run_rounds(
        report_cls.group,
        cases,
        loops,
        plan,
        run,
        name_width=name_width,
        rate=rate,
        note=note,
        progress=progress,
    )
    return report_cls(
        loops=[spec.label for spec in loops],
        quick=quick,
        full=full,
        plan=plan,
        client=client,
        cases=[result_cls(case, results[case.name]) for case in cases],
        elapsed=elapsed,
        versions=loop_versions(loops),
        **settings,
    )


def refuse_repeats(args: argparse.Namespace, group: str) -> None:
    """``--repeats`` is the micro group's: these measure one window per run."""
    if args.repeats is not None:
        raise ValueError(f"--repeats applies to the micro group ({group}: one window per run)")


def check_positive(args: argparse.Namespace, options: Sequence[str]) -> None:
    """Refuse a value <= 0 for any of ``options`` (ValueError)."""
    for opt in options:
        value = getattr(args, opt, None)
        if value is not None and value <= 0:
            raise ValueError(f"--{opt.replace('_', '-')} must be positive")


def run_server_cli(
    args: argparse.Namespace,
    loops: Sequence[LoopSpec],
    only: Sequence[str] | None,
    progress: ProgressFn | None,
    *,
    resolve: Callable[[], ClientInfo],
    matrix: CaseMatrix[Any],
    run: Callable[..., ReportT],
    format_report: Callable[[ReportT], str],
    slower: str,
) -> int:
    """``python -m benchmarks --group streams|udp`` with parsed ``args`` (a group's
    ``run_cli``, see ``_cli``).

    ``resolve()`` checks the options and picks the load generator (ValueError
    or RuntimeError: exit status 2); ``run(cases, loops, client, plan, *,
    quick, full, progress)`` runs ``matrix``'s cases selected by the options;
    the report goes to stdout, as JSON with ``--json``.  When the Python
    load generator stands in, a warning says it ``slower`` than the servers.
    """
    try:
        client = resolve()
    except (ValueError, RuntimeError) as exc:
        print(f"benchmarks: error: {exc}", file=sys.stderr)
        return 2
    if client.kind != "c" and not args.quiet:
        print(
            f"benchmarks: using the Python load generator ({client.note or 'requested'}); "
            f"it {slower} than the servers (flagged with !)",
            file=sys.stderr,
        )
    plan = Plan.make(
        quick=args.quick,
        rounds=args.rounds,
        warmup_s=args.warmup,
        duration_s=args.duration,
        timeout_s=args.timeout,
    )
    cases = matrix.select(quick=args.quick, full=args.full, only=only)
    report = run(cases, loops, client, plan, quick=args.quick, full=args.full, progress=progress)
    return print_report(report, args.json, format_report)
