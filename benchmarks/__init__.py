"""tideloop's benchmark suite: ``python -m benchmarks`` from a checkout.

The suite lives in the repository, not in the wheel (as uvloop's, trio's
and aiohttp's do): it imports tideloop, and tideloop never imports it.  Run
it from the repository's root, with tideloop installed (``pip install
'.[bench]'`` adds uvloop, the comparison).

Benchmarks are grouped; each group is a module of this package exposing a
``GROUP`` (:class:`~benchmarks._core.BenchGroup`).  To add a group, write
``benchmarks/<name>.py`` with its benchmark functions and a ``GROUP``, then
register it in ``GROUPS`` below: the CLI's ``--group`` choices, the
subprocess worker and the report all pick it up.

Every (benchmark, loop, round) runs in a fresh interpreter
(``python -m benchmarks._worker``), so one loop's heap or GC state cannot
skew another's; rounds alternate the order of the loops.

A group that needs more than one process per measurement (``streams`` and
``udp``: a server process and a load generator) defines a module-level
``run_cli`` as well; the CLI then hands the whole run to it (see
:func:`get_runner`), and its ``GROUP`` only names the benchmarks for
``--list`` and ``--bench``.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Sequence

from ._core import BenchGroup, LoopSpec

__all__ = ["DEFAULT_GROUP", "GROUPS", "GroupRunner", "get_group", "get_runner"]

#: group name -> module (imported lazily).
GROUPS: dict[str, str] = {
    "streams": "benchmarks.streams",  # stream echo benchmark: the main one
    "micro": "benchmarks.micro",
    "spawn": "benchmarks.spawn",  # subprocess spawn + wait
    "tls": "benchmarks.tls",  # TLS echo and handshakes
    "udp": "benchmarks.udp",  # UDP echo (DatagramProtocol), C load generator
}

#: What ``python -m benchmarks`` runs without ``--group``.
DEFAULT_GROUP = "streams"

#: ``run_cli(args, loops, only, progress) -> exit status`` of a group with its
#: own runner (it prints its report itself).
GroupRunner = Callable[
    [argparse.Namespace, Sequence[LoopSpec], Sequence[str] | None, Callable[[str], None] | None],
    int,
]


def get_group(name: str) -> BenchGroup:
    try:
        module_name = GROUPS[name]
    except KeyError:
        raise KeyError(f"unknown benchmark group {name!r}; known: {', '.join(GROUPS)}")
    group = importlib.import_module(module_name).GROUP
    if not isinstance(group, BenchGroup):
        raise TypeError(f"{module_name}.GROUP is not a BenchGroup")
    return group


def get_runner(name: str) -> GroupRunner | None:
    """The group's own ``run_cli``, or None for a worker-per-benchmark group."""
    module = importlib.import_module(GROUPS[name])
    runner: GroupRunner | None = getattr(module, "run_cli", None)
    return runner
