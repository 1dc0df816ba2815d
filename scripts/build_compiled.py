"""Build a compiled prototype of tideloop's per-event modules (opt-in).

    python scripts/build_compiled.py mypyc  [--out build/compiled-mypyc]
    python scripts/build_compiled.py cython [--out build/compiled-cython]

Copies ``src/tideloop`` to ``OUT/tideloop`` and compiles the hot-path modules
there in place (each ``.so`` beside its ``.py``; Python imports the extension
first). Run anything against it with ``PYTHONPATH=OUT``. The ``.py`` files
stay the one implementation: mypyc reads their annotations; Cython compiles
them in pure-Python mode, with the augmenting ``.pxd`` files of
``scripts/cython_pxd/`` copied beside them (which classes are native
``cdef class``es and the C types of their fields). Needs ``mypy`` (mypyc) or
``cython``, and a C compiler. Not wired into ``pip install``: the measured
choice is in docs/architecture.md ("The compiled build: choice of compiler").
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The per-event hot path (docs/architecture.md, "Where code lives").
MODULES = [
    "tideloop/_handles.py",
    "tideloop/_errors.py",
    "tideloop/_core.py",
    "tideloop/_backends/_base.py",
    "tideloop/_backends/_epoll.py",
    "tideloop/_io.py",
    "tideloop/_transports/_stream.py",
]

PXD_DIR = ROOT / "scripts" / "cython_pxd"
MYPYC_MARK = re.compile(r"\s*@mypyc_attr\(.*\)\s*$")


WEAKREF_CLEAR = (
    "PyObject_GC_UnTrack(self);\n"
    "if (Py_TYPE(self)->tp_weaklistoffset != 0) PyObject_ClearWeakRefs((PyObject *)self);"
)


def patch_weakref_dealloc(build_dir: Path) -> None:
    """mypyc 2.4's deallocator of a native class with a Python base (which
    gives instances a ``__dict__`` and weak references) does not clear the
    weak references: one that outlives the object then points to freed
    memory. Insert the ``PyObject_ClearWeakRefs`` that CPython's own
    deallocator makes, in every generated deallocator (a no-op check for
    types without weak references)."""
    for path in build_dir.glob("*.c"):
        text = path.read_text()
        patched = text.replace("PyObject_GC_UnTrack(self);", WEAKREF_CLEAR)
        if patched != text:
            path.write_text(patched)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("compiler", choices=["mypyc", "cython"])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--modules", nargs="*", default=MODULES, help="paths under OUT to compile")
    args = parser.parse_args()
    out: Path = (args.out or ROOT / "build" / f"compiled-{args.compiler}").resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copytree(
        ROOT / "src" / "tideloop", out / "tideloop", ignore=shutil.ignore_patterns("__pycache__")
    )
    if args.compiler == "cython":
        for pxd in PXD_DIR.rglob("*.pxd"):
            target = out / "tideloop" / pxd.relative_to(PXD_DIR)
            shutil.copy(pxd, target)
        for module in args.modules:
            # Cython refuses any decorator on a cdef class; mypyc's marks
            # mean nothing to it (the .pxd files say what is native).
            path = out / module
            lines = path.read_text().splitlines(keepends=True)
            path.write_text("".join(x for x in lines if not MYPYC_MARK.match(x)))
    os.chdir(out)

    from setuptools import setup

    if args.compiler == "mypyc":
        from mypyc.build import mypycify

        ext_modules = mypycify(
            [*args.modules, "--python-version", "%d.%d" % sys.version_info[:2]],
            opt_level="3",
            debug_level="1",
        )
        patch_weakref_dealloc(Path("build"))
    else:
        from Cython.Build import cythonize

        ext_modules = cythonize(
            args.modules,
            language_level=3,
            compiler_directives={
                # Types come from the .pxd files only: a Python annotation
                # such as ``fd: int`` is not a C declaration.
                "annotation_typing": False,
                "binding": True,  # methods introspect like Python functions
                "boundscheck": False,
                "wraparound": True,
                "infer_types": True,
            },
            quiet=True,
        )
    sys.argv = [sys.argv[0], "build_ext", "--inplace"]
    setup(name="tideloop-compiled", ext_modules=ext_modules, script_args=sys.argv[1:])
    print(f"built: PYTHONPATH={out}")


if __name__ == "__main__":
    main()
