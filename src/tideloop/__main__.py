"""Command line: ``python -m tideloop`` / ``tideloop``.

* ``tideloop info [--json]``: versions, the build (compiled or pure Python),
  backends, OS features;
* ``tideloop run [--stats] FILE [ARGS]`` / ``tideloop run [--stats] -m MODULE
  [ARGS]``: run a program as ``python FILE`` / ``python -m MODULE`` would,
  with tideloop as the loop that ``asyncio.run``/``asyncio.Runner`` create
  (through the event loop policy, the extension point both consult when no
  loop_factory is given); ``--stats`` meters every loop and prints a health
  summary to stderr when the program ends.

The benchmark suite is not part of the package: it lives in the repository's
``benchmarks/`` and runs from a checkout (``python -m benchmarks``).
``tideloop bench`` says so in one line and exits with status 2.  Nothing here
imports benchmark code, so ``tideloop run`` starts a program with no more
loaded than tideloop itself.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
import traceback
from typing import Any

__all__ = ["build_parser", "main"]

#: What ``tideloop bench`` prints (on stderr) before exiting with status 2.
_BENCH_MOVED = (
    "tideloop bench: the benchmarks are not installed with tideloop; run "
    "`python -m benchmarks` from the root of a tideloop checkout (see benchmarks/README.md)"
)


def _feature_flags() -> dict[str, bool]:
    return {
        "pidfd": hasattr(os, "pidfd_open"),
        "sendfile": hasattr(os, "sendfile"),
        "eventfd": hasattr(os, "eventfd"),
    }


def collect_info() -> dict[str, Any]:
    import tideloop

    from ._build import compiler, describe

    try:
        uvloop_version: str | None = importlib.metadata.version("uvloop")
    except importlib.metadata.PackageNotFoundError:
        uvloop_version = None
    return {
        "tideloop": tideloop.__version__,
        "tideloop_path": os.path.dirname(tideloop.__file__),
        # "compiled (mypyc 2.4.1)" or "pure Python ..." (tideloop/_build.py)
        "build": describe(),
        "build_compiler": compiler(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "backends": list(tideloop.available_backends()),
        "default_backend": tideloop.default_backend(),
        "features": _feature_flags(),
        "uvloop": uvloop_version,
    }


def _cmd_info(args: argparse.Namespace) -> int:
    info = collect_info()
    if args.json:
        json.dump(info, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    yes_no = {True: "yes", False: "no"}
    features = info["features"]
    lines = [
        f"tideloop         {info['tideloop']}  ({info['tideloop_path']})",
        f"build            {info['build']}",
        f"python           {info['python']} ({info['implementation']}, {info['executable']})",
        f"platform         {info['platform']}, {info['cpu_count']} CPUs",
        f"backends         {', '.join(info['backends']) or '(none)'}",
        f"default backend  {info['default_backend']}",
        "features",
        f"  pidfd          {yes_no[features['pidfd']]}  (os.pidfd_open)",
        f"  sendfile       {yes_no[features['sendfile']]}  (os.sendfile)",
        f"  eventfd        {yes_no[features['eventfd']]}  (os.eventfd)",
        f"uvloop           {info['uvloop'] or 'not installed'}  (benchmark reference)",
    ]
    print("\n".join(lines))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    import warnings

    from ._runner import install

    if args.module:
        program_args = ([args.target] if args.target else []) + args.args
        sys.argv = [args.module, *program_args]
    else:
        if not args.target:
            print("tideloop run: give a FILE or -m MODULE", file=sys.stderr)
            return 2
        path = args.target
        if not os.path.exists(path):
            print(
                f"tideloop run: can't open file {os.path.abspath(path)!r}: "
                "[Errno 2] No such file or directory",
                file=sys.stderr,
            )
            return 2
        sys.argv = [path, *args.args]
        sys.path[0] = os.path.dirname(os.path.abspath(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        install()
    # --stats: every loop made from here on is metered and kept for the summary.
    from ._metrics import collect, format_summary

    metered = collect() if args.stats else None
    try:
        return _run_program(args)
    finally:
        if metered is not None:
            sys.stdout.flush()
            print(format_summary(metered), file=sys.stderr)


def _run_program(args: argparse.Namespace) -> int:
    import runpy

    try:
        if args.module:
            runpy.run_module(args.module, run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(sys.argv[0], run_name="__main__")
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1
    except ImportError as exc:
        # runpy's own "No module named ..." (or "... cannot be directly
        # executed"): one line and exit status 1, as `python -m` gives. An
        # ImportError from the program's code keeps its traceback.
        frames = [frame for frame, _ in traceback.walk_tb(exc.__traceback__)]
        if args.module and frames and frames[-1].f_globals.get("__name__") == "runpy":
            print(f"tideloop run: {exc}", file=sys.stderr)
            return 1
        raise
    return 0


def _parse_run(parser: argparse.ArgumentParser, rest: list[str]) -> argparse.Namespace:
    """``run``'s own options, then the program and its arguments verbatim.

    As with ``python [-m MODULE | FILE] ARGS``, everything after the module
    name or the file belongs to the program, options and ``--`` included
    (argparse would take ``-x`` after ``-m MODULE`` as one of ours).
    """
    stats = False
    for i, token in enumerate(rest):
        if token == "--stats":
            stats = True
            continue
        if token == "-m":
            if i + 1 == len(rest):
                break  # argparse reports the missing MODULE
            return argparse.Namespace(
                module=rest[i + 1], target=None, args=rest[i + 2 :], stats=stats
            )
        if token.startswith("-m"):
            return argparse.Namespace(
                module=token[2:], target=None, args=rest[i + 1 :], stats=stats
            )
        if token == "--":
            target = rest[i + 1] if i + 1 < len(rest) else None
            return argparse.Namespace(module=None, target=target, args=rest[i + 2 :], stats=stats)
        if token.startswith("-"):
            break  # -h/--help, or an unknown option: argparse's message
        return argparse.Namespace(module=None, target=token, args=rest[i + 1 :], stats=stats)
    else:
        return argparse.Namespace(module=None, target=None, args=[], stats=stats)
    parser.parse_args(["run", *rest])  # prints help or the usage error, and exits
    raise AssertionError("unreachable")  # pragma: no cover


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tideloop",
        description="tideloop: a drop-in asyncio event loop written in Python.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p_info = sub.add_parser(
        "info",
        help="show versions, backends and OS features",
        description="Show tideloop's version, the Python version, the available "
        "backends (and the default one) and the OS features tideloop can use.",
    )
    p_info.add_argument("--json", action="store_true", help="print JSON instead of text")
    p_info.set_defaults(func=_cmd_info)

    p_run = sub.add_parser(
        "run",
        help="run a script or module with tideloop as asyncio's loop",
        description="Run FILE (like `python FILE`) or MODULE (like `python -m MODULE`) "
        "with tideloop installed as the event loop policy, so the loops that "
        "asyncio.run() and asyncio.Runner() create are tideloop loops.",
    )
    # For the help text and usage errors; main() splits run's arguments itself.
    p_run.add_argument(
        "--stats",
        action="store_true",
        help="meter every loop; print iterations, callbacks, timer lag, utilisation and "
        "the slowest callbacks to stderr when the program ends",
    )
    p_run.add_argument("-m", dest="module", metavar="MODULE", help="run a module as a script")
    p_run.add_argument("target", nargs="?", metavar="FILE", help="the script to run")
    p_run.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the program")

    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "bench":
        print(_BENCH_MOVED, file=sys.stderr)
        return 2
    if argv and argv[0] == "run":
        args = _parse_run(parser, argv[1:])
        args.version = False
        args.command = "run"
        args.func = _cmd_run
    else:
        args = parser.parse_args(argv)
    if args.version:
        import tideloop

        print(f"tideloop {tideloop.__version__}")
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    func = args.func
    result = func(args)
    return int(result)


if __name__ == "__main__":
    sys.exit(main())
