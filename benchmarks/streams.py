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

Run it with ``python -m benchmarks`` (the default group) or
``python -m benchmarks.streams`` from the repository's root; see
benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Final

from ._core import LoopSpec
from ._loadgen import ClientInfo, resolve_client
from ._server_bench import CaseMatrix, check_positive, refuse_repeats, run_report, run_server_cli
from ._streams_report import CaseResult, StreamsReport, format_streams_report
from ._streams_run import Case, Plan, RunSample, run_once

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
        for handler in ("protocol", "buffered", "buffered-zero-copy", "streams", "split")
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
    Case("buffered-zero-copy", 1024, 10),
    Case("streams", 1024, 10),
    Case("split", 1024, 10),
    Case("http", 0, 10),
    Case("protocol", 64, 10),
    Case("protocol", 100 * 1024, 10),
    Case("protocol", 1024, 100),
)
#: ``--quick``: every handler kind once, short windows, one round.
QUICK_CASES: Final = DEFAULT_CASES[:6]

MATRIX: Final = CaseMatrix(FULL_CASES, DEFAULT_CASES, QUICK_CASES)


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

    def run(case: Case, spec: LoopSpec, env: dict[str, str]) -> tuple[RunSample, str]:
        return run_once(case, spec, client, plan, env)

    return run_report(
        StreamsReport,
        CaseResult,
        cases,
        loops,
        client,
        plan,
        run,
        quick=quick,
        full=full,
        name_width=18,
        rate="msg/s",
        progress=progress,
    )


# -- the command line ----------------------------------------------------------------

select_cases: Final = MATRIX.select


def run_cli(
    args: argparse.Namespace,
    loops: Sequence[LoopSpec],
    only: Sequence[str] | None,
    progress: ProgressFn | None,
) -> int:
    """``python -m benchmarks --group streams`` with parsed ``args`` (see ``_cli``)."""

    def resolve() -> ClientInfo:
        refuse_repeats(args, "streams")
        check_positive(args, ("duration", "warmup", "client_procs"))
        return resolve_client(args.client, args.client_procs)

    return run_server_cli(
        args,
        loops,
        only,
        progress,
        resolve=resolve,
        matrix=MATRIX,
        run=run_streams,
        format_report=format_streams_report,
        slower="may be slower",
    )


#: The group's entry in ``GROUPS`` (see ``CaseMatrix.group``).
GROUP: Final = MATRIX.group(
    name="streams",
    description="TCP echo and HTTP servers under a C load generator, server CPU per message",
    unit="message",
    what="stream",
)


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.streams [options]``: ``python -m benchmarks --group streams``."""
    from ._cli import run_bench_main

    return run_bench_main(argv, group="streams")


if __name__ == "__main__":
    sys.exit(main())
