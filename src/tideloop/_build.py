"""Which build of tideloop runs: compiled (mypyc) or pure Python.

``pip install`` makes the compiled build where a C compiler and the Python
headers exist (setup.py): the hot-path modules become extension modules, and
the wheel keeps their ``.py`` files beside them. Python imports an extension
module before a ``.py`` file of the same name, so selecting the pure build at
run time takes an import hook: ``tideloop/__init__.py`` imports this module
before any other submodule, and with ``TIDELOOP_PURE_PYTHON`` set (any value
but "" and "0") importing it puts ``_PureFinder`` first on ``sys.meta_path``;
it finds tideloop's submodules as ``.py`` files only.

This module and ``__init__.py`` are never compiled (setup.py's list leaves them
out): they run before the choice is made. Imports only the standard library.
setup.py writes ``tideloop/_build_info.py`` (``COMPILER``, ``MODULES``) into
the build it makes; it is absent from the sources and from editable installs.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import Sequence
from types import ModuleType

__all__ = ["PURE_ENV", "compiled_modules", "compiler", "describe", "pure_selected", "select"]

#: The environment variable that selects the pure build (at build time in
#: setup.py, at run time here). Set means any value but "" and "0".
PURE_ENV = "TIDELOOP_PURE_PYTHON"

_PACKAGE = "tideloop"
_selected_pure = False


class _PureFinder(importlib.abc.MetaPathFinder):
    """Finds ``tideloop.*`` modules as source (or bytecode) files only."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(_PACKAGE + ".") or path is None:
            return None
        for entry in path:
            finder = importlib.machinery.FileFinder(
                entry,
                (importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES),
                (importlib.machinery.SourcelessFileLoader, importlib.machinery.BYTECODE_SUFFIXES),
            )
            spec = finder.find_spec(fullname)
            if spec is not None:
                return spec
        # Not a Python module (the compiled build's shared library): the
        # other finders decide.
        return None


def _env_set() -> bool:
    return os.environ.get(PURE_ENV, "") not in ("", "0")


def select() -> None:
    """With ``TIDELOOP_PURE_PYTHON`` set, install the finder that imports the
    pure build (done when this module is imported)."""
    global _selected_pure
    if _env_set() and not any(isinstance(f, _PureFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _PureFinder())
        _selected_pure = True


select()


def pure_selected() -> bool:
    """True when ``TIDELOOP_PURE_PYTHON`` selected the pure build at import."""
    return _selected_pure


def _build_info() -> ModuleType | None:
    try:
        return importlib.import_module(f"{_PACKAGE}._build_info")
    except ImportError:  # the sources or an editable install
        return None


def compiler() -> str | None:
    """The compiler of the installed build ("mypyc 2.4.1"), None if pure."""
    info = _build_info()
    value = getattr(info, "COMPILER", None)
    return value if isinstance(value, str) else None


def compiled_modules() -> list[str]:
    """The imported tideloop modules that are extension modules, sorted."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    return sorted(
        name
        for name, module in list(sys.modules.items())
        if (name == _PACKAGE or name.startswith(_PACKAGE + "."))
        and str(getattr(module, "__file__", None) or "").endswith(suffixes)
    )


def describe() -> str:
    """One line for ``tideloop info``: "compiled (mypyc 2.4.1)" or "pure Python",
    saying when ``TIDELOOP_PURE_PYTHON`` chose the pure build over a compiled
    one that is installed."""
    import tideloop  # noqa: F401  (the package's modules, as a user imports them)

    built_with = compiler()
    if compiled_modules():
        return f"compiled ({built_with or 'unknown compiler'})"
    if built_with is not None and _selected_pure:
        return (
            f"pure Python ({PURE_ENV} selected it; the compiled build, {built_with}, is installed)"
        )
    return "pure Python"
