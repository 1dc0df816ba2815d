"""Build the compiled modules in place, beside a copy of the sources (callgrind work).

    python scripts/build_compiled.py mypyc  [--out build/compiled-mypyc]
    python scripts/build_compiled.py cython [--out build/compiled-cython]

``pip install .`` makes the compiled build (setup.py); this script is for
working on it from a checkout without installing: it copies ``src/tideloop``
to ``OUT/tideloop`` and compiles setup.py's ``MYPYC_MODULES`` there in place
(each ``.so`` beside its ``.py``), with setup.py's mypyc options. Run anything
against it with ``PYTHONPATH=OUT`` (``python -m tideloop info`` says
"compiled"), for example under callgrind (benchmarks/README.md). It never
writes into src/: a stale ``.so`` there would shadow the edited ``.py`` file.

``cython`` builds the alternative measured in docs/architecture.md ("The
compiled build: choice of compiler"): Cython's pure-Python mode, with the
augmenting ``.pxd`` files of ``scripts/cython_pxd/`` copied beside the modules.
Needs ``mypy`` (mypyc) or ``cython``, and a C compiler.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent



def _setup_module() -> object:
    # setup.py calls setup() only as __main__; loaded under another name it
    # only defines its lists (and compiles nothing: no build command in argv).
    spec = importlib.util.spec_from_file_location("tideloop_setup", ROOT / "setup.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_SETUP = _setup_module()
MODULES: list[str] = _SETUP.MYPYC_MODULES  # type: ignore[attr-defined]
MYPYC_OPTIONS: dict[str, object] = _SETUP.MYPYC_OPTIONS  # type: ignore[attr-defined]

PXD_DIR = ROOT / "scripts" / "cython_pxd"
MYPYC_MARK = re.compile(r"\s*@mypyc_attr\(.*\)\s*$")


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

        ext_modules = mypycify([*args.modules, *_SETUP.mypy_flags()], **MYPYC_OPTIONS)  # type: ignore[attr-defined]
        _SETUP.patch_generated_c(Path("build"))  # type: ignore[attr-defined]
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
    if args.compiler == "mypyc":
        from mypy.version import __version__ as version
    else:
        from Cython import __version__ as version
    # What `tideloop info` reads (as in a wheel).
    _SETUP._write_build_info(str(out), f"{args.compiler} {version}")  # type: ignore[attr-defined]
    print(f"built: PYTHONPATH={out}")


if __name__ == "__main__":
    main()
