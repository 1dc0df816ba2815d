"""How the suite's child processes find this checkout.

The suite is not installed: it runs from the repository (``python -m
benchmarks`` in its root).  Workers, servers and load generators started as
``python -m benchmarks.X`` get the repository's root on PYTHONPATH, so they
import this same suite whatever their working directory.  tideloop itself is
imported from wherever the parent found it (installed, or ``src/`` on
PYTHONPATH).

Imports: standard library only (the load generators import this).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

__all__ = ["REPO_ROOT", "child_env"]

#: The directory that holds this package: the repository's root.
REPO_ROOT: Final = str(Path(__file__).resolve().parent.parent)


def child_env(*first: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``base`` (default: ``os.environ``) whose PYTHONPATH starts with
    the directories ``first``, then the repository's root."""
    env = dict(os.environ if base is None else base)
    head = os.pathsep.join([*first, REPO_ROOT])
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = head if not old else head + os.pathsep + old
    return env
