"""The command line of the suite: ``python -m benchmarks`` (see ``__main__``),
and ``python -m benchmarks.GROUP`` for one group (``run_bench_main``)."""

from __future__ import annotations

import argparse
import importlib.util
import os
import select
import sys
from typing import TextIO

from . import DEFAULT_GROUP, GROUPS, get_group, get_runner
from ._core import LoopSpec, parse_loop_spec
from ._runner import format_report, print_report, run_group

__all__ = [
    "add_bench_arguments",
    "build_parser",
    "floor_unavailable",
    "main",
    "resolve_loops",
    "run_bench",
    "run_bench_main",
]


#: The program name in usage lines and messages.
PROG = "python -m benchmarks"


def add_bench_arguments(parser: argparse.ArgumentParser, *, group: str | None = None) -> None:
    """The suite's options; with ``group`` given, ``--group`` is fixed to it."""
    if group is None:
        parser.add_argument(
            "--group",
            choices=sorted(GROUPS),
            default=DEFAULT_GROUP,
            help=f"benchmark group to run (default: {DEFAULT_GROUP})",
        )
    else:
        parser.set_defaults(group=group)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="short run (1 round, ~10x fewer operations or short windows): for tests and CI",
    )
    parser.add_argument(
        "--json", action="store_true", help="print a JSON report on stdout instead of a table"
    )
    parser.add_argument(
        "--loops",
        metavar="LIST",
        help="comma-separated loops to compare: tideloop (the installed build: compiled when "
        "there is one), tideloop-pure (the same, with TIDELOOP_PURE_PYTHON=1), "
        "tideloop[-pure]-BACKEND, asyncio, uvloop, and pyfloor, the group's bare-Python "
        "reference (default: tideloop,tideloop-pure,asyncio and uvloop when importable)",
    )
    parser.add_argument(
        "--bench",
        metavar="LIST",
        help="comma-separated benchmark names to run (default: the whole group; streams: "
        "the cases marked default, or quick with --quick, all with --full; see --list)",
    )
    parser.add_argument(
        "--rounds", type=int, metavar="N", help="rounds per loop (fresh process each)"
    )
    parser.add_argument("--repeats", type=int, metavar="N", help="timed passes per process")
    parser.add_argument(
        "--timeout", type=float, metavar="SEC", help="limit for one worker process (or run)"
    )
    parser.add_argument("--list", action="store_true", help="list the group's benchmarks and exit")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    streams = parser.add_argument_group("streams group")
    streams.add_argument(
        "--full",
        action="store_true",
        help="every case: handlers x 64 B/1 KiB/100 KiB x 10/100 connections, split, HTTP",
    )
    streams.add_argument(
        "--duration", type=float, metavar="SEC", help="measurement window per run (1.5; quick 0.3)"
    )
    streams.add_argument(
        "--warmup", type=float, metavar="SEC", help="load before the window (0.5; quick 0.1)"
    )
    streams.add_argument(
        "--client",
        choices=("auto", "c", "python"),
        default="auto",
        help="load generator: the C epoll client (built with cc and cached), the Python "
        "multi-process one, or auto (C when it builds)",
    )
    streams.add_argument(
        "--client-procs",
        type=int,
        metavar="N",
        help="processes of the Python load generator (default: CPUs, at most 4)",
    )


def floor_unavailable(group: str) -> str | None:
    """Why ``pyfloor`` cannot run in ``group`` here, or None when it can.

    Every group has a floor (see benchmarks/README.md); they poll with epoll,
    and the spawn group's waits for its children with a pidfd."""
    if not hasattr(select, "epoll"):
        return (
            f"pyfloor of the {group} group is a bare Python epoll loop: not available "
            "on this platform (no select.epoll)"
        )
    if group == "spawn" and not hasattr(os, "pidfd_open"):
        return (
            "pyfloor of the spawn group waits for its children with os.pidfd_open "
            "(Linux 5.3+, Python 3.9+): not available here"
        )
    return None


def _uvloop_importable() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def resolve_loops(text: str | None, *, err: TextIO = sys.stderr) -> list[LoopSpec]:
    """Parse ``--loops``; unknown names raise ValueError, a missing uvloop is
    skipped with a warning."""
    import tideloop

    if text is None:
        specs = [LoopSpec("tideloop"), LoopSpec("tideloop", pure=True), LoopSpec("asyncio")]
        if _uvloop_importable():
            specs.append(LoopSpec("uvloop"))
        return specs
    specs = []
    backends = list(tideloop.available_backends())
    for item in text.split(","):
        if not item.strip():
            continue
        spec = parse_loop_spec(item)
        if spec.kind == "uvloop" and not _uvloop_importable():
            print("benchmarks: uvloop is not importable; skipping it", file=err)
            continue
        if spec.backend is not None and spec.backend not in backends:
            raise ValueError(
                f"tideloop backend {spec.backend!r} is not available here "
                f"(available: {', '.join(backends) or 'none'})"
            )
        if spec not in specs:
            specs.append(spec)
    if not specs:
        raise ValueError("no loop to benchmark")
    return specs


class _Progress:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.dirty = False

    def __call__(self, line: str) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K" + line)
            self.dirty = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.dirty:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


_STREAMS_ONLY = {
    "full": False,
    "duration": None,
    "warmup": None,
    "client": "auto",
    "client_procs": None,
}


def _check_worker_group_options(args: argparse.Namespace) -> None:
    for name, default in _STREAMS_ONLY.items():
        if getattr(args, name, default) != default:
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"{flag} applies to the streams group, not {args.group!r}")


def run_bench(args: argparse.Namespace) -> int:
    """Run the suite with parsed ``args``; 0 when every benchmark worked."""
    try:
        group = get_group(args.group)
        runner = get_runner(args.group)
        if runner is None:
            _check_worker_group_options(args)
        if args.list:
            for bench in group.benchmarks:
                print(f"{bench.name:<22} {bench.description}")
            return 0
        loops = resolve_loops(args.loops)
        if any(spec.kind == "pyfloor" for spec in loops):
            reason = floor_unavailable(args.group)
            if reason is not None:
                raise ValueError(reason)
        only = [b.strip() for b in args.bench.split(",") if b.strip()] if args.bench else None
        if only:
            for name in only:
                group.get(name)
        for opt in ("rounds", "repeats"):
            value = getattr(args, opt)
            if value is not None and value < 1:
                raise ValueError(f"--{opt} must be at least 1")
    except (KeyError, ValueError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"benchmarks: error: {msg}", file=sys.stderr)
        return 2

    progress = None if args.quiet else _Progress(sys.stderr)
    if runner is not None:
        try:
            return runner(args, loops, only, progress)
        finally:
            if progress is not None:
                progress.finish()
    try:
        report = run_group(
            group,
            loops,
            quick=args.quick,
            rounds=args.rounds,
            repeats=args.repeats,
            only=only,
            timeout=args.timeout,
            progress=progress,
        )
    finally:
        if progress is not None:
            progress.finish()
    return print_report(report, args.json, format_report)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m benchmarks``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Benchmark tideloop against stock asyncio and uvloop (when "
        "importable). Every loop runs in its own fresh subprocess, over rounds "
        "with the loop order rotated; a table goes to stdout, progress to stderr. "
        "Run it from the root of a tideloop checkout.",
    )
    add_bench_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks [options]``: exit status 0 when every benchmark
    worked, 1 when one failed, 2 for a usage error."""
    return run_bench(build_parser().parse_args(argv))


def run_bench_main(argv: list[str] | None, *, group: str) -> int:
    """``python -m benchmarks.GROUP [options]``: one group, ``--group`` fixed."""
    parser = argparse.ArgumentParser(
        prog=f"{PROG}.{group}", description=f"Run tideloop's {group!r} benchmark group."
    )
    add_bench_arguments(parser, group=group)
    return run_bench(parser.parse_args(argv))
