"""Benchmarks shipped with tideloop (``python -m tideloop bench``).

Benchmarks are grouped; each group is a module of this package exposing a
``GROUP`` (:class:`~tideloop._bench._core.BenchGroup`).  To add a group (the
stream echo benchmark, say), write ``_bench/<name>.py`` with its benchmark
functions and a ``GROUP``, then register it in ``GROUPS`` below: the CLI's
``--group`` choices, the subprocess worker and the report all pick it up.

Every (benchmark, loop, round) runs in a fresh interpreter
(``python -m tideloop._bench._worker``), so one loop's heap or GC state cannot
skew another's; rounds alternate the order of the loops.
"""

from __future__ import annotations

import importlib

from ._core import BenchGroup

__all__ = ["DEFAULT_GROUP", "GROUPS", "get_group"]

#: group name -> module (imported lazily).
GROUPS: dict[str, str] = {
    "micro": "tideloop._bench.micro",
    # "streams": "tideloop._bench.streams",  # stream echo benchmark (later issue)
}

#: What ``tideloop bench`` runs without ``--group``.  When the stream echo
#: group lands it becomes the default and ``micro`` stays selectable.
DEFAULT_GROUP = "micro"


def get_group(name: str) -> BenchGroup:
    try:
        module_name = GROUPS[name]
    except KeyError:
        raise KeyError(f"unknown benchmark group {name!r}; known: {', '.join(GROUPS)}")
    group = importlib.import_module(module_name).GROUP
    if not isinstance(group, BenchGroup):
        raise TypeError(f"{module_name}.GROUP is not a BenchGroup")
    return group
