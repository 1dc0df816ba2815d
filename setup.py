"""Build tideloop: the compiled build where it can, the pure-Python build otherwise.

The metadata lives in pyproject.toml; this file only chooses the build.

* **Compiled** (the default): mypyc compiles the modules of ``MYPYC_MODULES``
  (the per-event hot path; docs/architecture.md, "The compiled build") into
  extension modules. The wheel keeps every ``.py`` file beside the ``.so``
  files, so ``TIDELOOP_PURE_PYTHON=1`` can select the pure build at run time
  (``tideloop/_build.py``).
* **Pure Python**, with one warning line on stderr, when mypyc cannot be
  imported, when no working C compiler and Python headers are found (a small
  extension is compiled and linked first to find out), or when compiling the
  modules fails. ``pip`` shows a build's output only with ``-v``;
  ``python -m tideloop info`` says which build is installed.
* **Pure Python**, quietly, when ``TIDELOOP_PURE_PYTHON`` is set at build time
  (any value but "" and "0"), and for editable installs (see ``_editable``).

``build_py`` writes ``tideloop/_build_info.py`` into the build directory (never
into src/): the compiler and its version, and the modules it compiled.
``scripts/build_compiled.py`` builds the same modules beside a copy of the
sources, for callgrind work in a checkout.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent

#: The modules compiled by mypyc, relative to src/: the one list (scripts/
#: build_compiled.py reads it). Never ``tideloop/__init__.py`` or
#: ``tideloop/_build.py``: they choose between the builds, so they stay Python.
MYPYC_MODULES = [
    "tideloop/_handles.py",
    "tideloop/_errors.py",
    "tideloop/_core.py",
    "tideloop/_backends/_base.py",
    "tideloop/_backends/_epoll.py",
    "tideloop/_io.py",
    "tideloop/_transports/_stream.py",
    "tideloop/_transports/_datagram.py",
]

#: mypycify's options. Measured on a 2-core machine (Python 3.11, the six
#: modules above, about 2 s of mypyc then 10-15 s of C compiler): debug
#: level 0 or 1, one C file or one per module (multi_file) and two parallel
#: jobs all land within the machine's noise, because the time is the shared
#: library's C and build_ext compiles one extension's files one after another.
#: Debug level 1 (-g1) keeps function names for callgrind and gdb at no cost
#: at run time; one C file and one job keep the build simple.
MYPYC_OPTIONS: dict[str, Any] = {
    "opt_level": "3",
    "debug_level": "1",
    "multi_file": False,
    # The compiled modules' shared library, inside the package (not a
    # top-level module of site-packages): tideloop/_compiled__mypyc.*.so
    "group_name": "tideloop._compiled",
}

def mypy_flags() -> list[str]:
    """mypyc type-checks for the Python it compiles for: checked as 3.11
    (pyproject's [tool.mypy]), the 3.12+ branches would count as unreachable
    and not be compiled."""
    return ["--python-version", f"{sys.version_info[0]}.{sys.version_info[1]}"]

WEAKREF_CLEAR = (
    "PyObject_GC_UnTrack(self);\n"
    "if (Py_TYPE(self)->tp_weaklistoffset != 0) PyObject_ClearWeakRefs((PyObject *)self);"
)

def patch_generated_c(target_dir: Path) -> None:
    """A fix to mypyc's output, applied before it is compiled.

    mypyc 2.4's deallocator of a native class with a Python base (which gives
    its instances a ``__dict__`` and weak references: the stream transport)
    does not clear weak references, so one that outlives the object points
    to freed memory (a crash in the garbage collector; the server's set of
    client transports is a WeakSet). Insert the ``PyObject_ClearWeakRefs``
    call CPython's own deallocator makes, in every generated deallocator (a
    type without weak references skips it).
    ``tests/test_transport_fidelity.py::test_transport_weakref_dies_with_transport``
    crashes without it."""
    for path in Path(target_dir).rglob("*.c"):
        text = path.read_text()
        patched = text.replace("PyObject_GC_UnTrack(self);", WEAKREF_CLEAR)
        if patched != text:
            path.write_text(patched)

PURE_ENV = "TIDELOOP_PURE_PYTHON"
_BUILD_COMMANDS = {"bdist_wheel", "build", "build_ext", "install"}

def _env_set(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")

def _warn_pure(reason: str) -> None:
    reason = " ".join(reason.split())  # one line
    print(
        f"tideloop: building the pure-Python build ({reason}); the same code, "
        f"slower; set {PURE_ENV}=1 to choose it without this warning",
        file=sys.stderr,
        flush=True,
    )

def _editable() -> bool:
    # Editable installs (`pip install -e .`, the dev venv) are always pure: a
    # compiled build would put .so files beside the .py files in src/, and a
    # stale .so shadows the .py file being edited (Python imports extension
    # modules first). scripts/build_compiled.py builds outside src/ instead.
    return "editable_wheel" in sys.argv or "develop" in sys.argv

def _mypyc_version() -> str:
    from mypy.version import __version__

    return __version__

def _probe_compiler() -> str | None:
    """Compile and link a tiny extension; None if that works, else why not."""
    from setuptools import Distribution

    tmp = Path(tempfile.mkdtemp(prefix="tideloop-probe-"))
    try:
        src = tmp / "_tideloop_probe.c"
        src.write_text(
            "#include <Python.h>\n"
            'static struct PyModuleDef m = {PyModuleDef_HEAD_INIT, "_tideloop_probe"};\n'
            "PyMODINIT_FUNC PyInit__tideloop_probe(void) { return PyModule_Create(&m); }\n"
        )
        dist = Distribution({"ext_modules": [Extension("_tideloop_probe", [str(src)])]})
        cmd = build_ext(dist)
        cmd.build_temp = str(tmp / "temp")
        cmd.build_lib = str(tmp / "lib")
        cmd.ensure_finalized()
        # The compiler's own complaint goes to the build's output above this.
        cmd.run()
        return None
    except (Exception, SystemExit) as exc:
        detail = str(exc) if len(str(exc)) <= 120 else str(exc)[:117] + "..."
        return f"no working C compiler or Python headers, needed by the compiled build: {detail}"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

def _choose() -> str | None:
    """The mypyc version to compile with, or None for the pure build."""
    if _env_set(PURE_ENV) or _editable():
        return None
    if not _BUILD_COMMANDS.intersection(sys.argv):
        # Metadata only (egg_info, dist_info, sdist): nothing is compiled.
        return None
    try:
        version = _mypyc_version()
        import mypyc.build  # noqa: F401
    except ImportError as exc:
        _warn_pure(f"mypyc cannot be imported: {exc}")
        return None
    problem = _probe_compiler()
    if problem is not None:
        _warn_pure(problem)
        return None
    return version

def _write_build_info(build_lib: str, compiler: str | None) -> None:
    modules = [m.removesuffix(".py").replace("/", ".") for m in MYPYC_MODULES]
    path = Path(build_lib, "tideloop", "_build_info.py")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        '"""Written by setup.py when this build was made; not in the sources."""\n\n'
        f"COMPILER = {compiler!r}\n"
        f"MODULES = {tuple(modules) if compiler else ()!r}\n"
    )

MYPYC_VERSION = _choose()

class BuildPy(build_py):
    def run(self) -> None:
        super().run()
        if not self.editable_mode:
            compiler = f"mypyc {MYPYC_VERSION}" if MYPYC_VERSION else None
            _write_build_info(self.build_lib, compiler)

class BuildExt(build_ext):
    """Runs mypyc here, not when setup.py is loaded: pip loads it several
    times per install (metadata, then the wheel), and mypyc takes seconds.
    If the compiled build fails, the wheel is the pure build (warning)."""

    def finalize_options(self) -> None:
        if MYPYC_VERSION is not None and self.distribution.ext_modules == [_PLACEHOLDER]:
            self.distribution.ext_modules = _mypycify()
        super().finalize_options()

    def run(self) -> None:
        if not self.extensions:
            return
        self._remove_stale_extensions()
        try:
            super().run()
        except (Exception, SystemExit) as exc:
            _compiled_failed(f"compiling the C of mypyc {MYPYC_VERSION} failed: {exc}")
            for output in self.get_outputs():
                if os.path.exists(output):
                    os.remove(output)
            self.extensions = []
            _write_build_info(self.build_lib, None)

    def _remove_stale_extensions(self) -> None:
        # build/ is reused between builds and copied whole into the wheel: an
        # extension left from an earlier build (a module since dropped from
        # MYPYC_MODULES) would shadow its .py file.
        keep = {os.path.abspath(path) for path in self.get_outputs()}
        for path in Path(self.build_lib, "tideloop").rglob("*.so"):
            if os.path.abspath(path) not in keep:
                path.unlink()

#: What ext_modules holds until build_ext asks mypyc for the real extensions;
#: it makes the wheel platform-specific. The pure build has no extensions.
_PLACEHOLDER = Extension("tideloop._compiled__mypyc", [])

def _compiled_failed(reason: str) -> None:
    global MYPYC_VERSION
    MYPYC_VERSION = None
    _warn_pure(reason)

def _mypycify() -> list[Extension]:
    from mypyc.build import mypycify

    cwd = os.getcwd()
    os.chdir(ROOT)  # mypy reads pyproject's [tool.mypy], as the type check does
    try:
        target_dir = ROOT / "build" / f"mypyc.{sys.implementation.cache_tag}"
        extensions: list[Extension] = mypycify(
            [*(f"src/{module}" for module in MYPYC_MODULES), *mypy_flags()],
            target_dir=str(target_dir),
            **MYPYC_OPTIONS,
        )
        patch_generated_c(target_dir)
        return extensions
    except SystemExit:  # mypy's errors are printed above
        _compiled_failed(f"mypyc {MYPYC_VERSION}'s type check failed: see the errors above")
        return []
    except Exception as exc:
        _compiled_failed(f"mypyc {MYPYC_VERSION} failed: {exc!r}")
        return []
    finally:
        os.chdir(cwd)

if __name__ == "__main__":
    setup(
        ext_modules=[_PLACEHOLDER] if MYPYC_VERSION else [],
        cmdclass={"build_py": BuildPy, "build_ext": BuildExt},
    )
