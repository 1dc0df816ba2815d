"""Which build of tideloop a process runs: compiled modules or pure Python.

tideloop's hot-path modules can be compiled (mypyc) from the same ``.py``
source; ``import tideloop`` then uses the compiled modules, unless the process
was started with ``TIDELOOP_PURE_PYTHON=1``. A compiled module is an extension
module: its ``__file__`` ends in one of ``importlib.machinery.EXTENSION_SUFFIXES``
(``.cpython-311-x86_64-linux-gnu.so``, ``.pyd``, ...); a pure one in ``.py``.
The process that runs a tideloop row asks :func:`tideloop_build` and reports
the answer with its figures, so a report says what each row measured.

Imports: standard library only; tideloop only when asked (the asyncio and
uvloop servers import this module and must not import tideloop). Importable
as ``benchmarks._build`` and as a top-level module (the servers).
"""

from __future__ import annotations

import importlib.machinery
import os
import sys
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["PURE_LABEL", "build_label", "builds_line", "tideloop_build"]

#: The label of a tideloop that runs no compiled module.
PURE_LABEL: Final = "pure Python"


def _compiler(compiled: list[str]) -> str | None:
    """mypyc or Cython, from what their modules leave behind; None if unknown."""
    # mypyc puts the code of a multi-module build in one shared library,
    # imported as a top-level module named ``<hash>__mypyc``.
    if any(name.endswith("__mypyc") for name in sys.modules):
        return "mypyc"
    for name in compiled:
        module = sys.modules.get(name)
        if module is not None and any(attr.startswith("__pyx") for attr in vars(module)):
            return "Cython"
    return None


def tideloop_build() -> dict[str, Any]:
    """Import tideloop and classify its loaded modules.

    Returns ``{"build": "compiled" | "pure", "compiler": "mypyc" | "Cython" |
    None, "label": "compiled (mypyc, 6 modules)" | "pure Python", "compiled":
    [module names], "pure_python_env": the TIDELOOP_PURE_PYTHON value or None,
    "path": the package's directory}``.
    """
    import tideloop

    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    compiled = sorted(
        name
        for name, module in list(sys.modules.items())
        if (name == "tideloop" or name.startswith("tideloop."))
        and not name.endswith("__mypyc")  # mypyc's shared library, not a module of ours
        and str(getattr(module, "__file__", None) or "").endswith(suffixes)
    )
    compiler = _compiler(compiled) if compiled else None
    info: dict[str, Any] = {
        "build": "compiled" if compiled else "pure",
        "compiler": compiler,
        "compiled": compiled,
        "pure_python_env": os.environ.get("TIDELOOP_PURE_PYTHON"),
        "path": os.path.dirname(os.path.abspath(tideloop.__file__)),
    }
    info["label"] = build_label(info)
    return info


def build_label(info: dict[str, Any] | None) -> str:
    """``compiled (mypyc, 6 modules)``, ``pure Python``, or ``unknown`` (no info)."""
    if not info:
        return "unknown"
    compiled = info.get("compiled") or []
    if not compiled:
        return PURE_LABEL
    count = f"{len(compiled)} module" + ("s" if len(compiled) != 1 else "")
    what = ", ".join(x for x in (info.get("compiler"), count) if x)
    return f"compiled ({what})"


def builds_line(builds: Mapping[str, str | None]) -> str | None:
    """The report's line ``builds: tideloop: compiled (mypyc, 6 modules);
    tideloop-pure: pure Python`` (None without tideloop rows).  A row on the
    default build that ran pure Python says that no compiled module was found,
    so a reader knows both rows measured the same code."""
    items = []
    for label, text in builds.items():
        item = f"{label}: {text or 'unknown'}"
        if text == PURE_LABEL and not label.startswith("tideloop-pure"):
            item += " (no compiled modules installed)"
        items.append(item)
    return "builds: " + "; ".join(items) if items else None
