"""Building blocks shared by every benchmark group.

A *benchmark* is a plain function ``fn(loop, n, timer)`` that does its own
setup, wraps exactly the part to be measured in ``with timer:``, performs ``n``
operations there, checks that they really happened (a loop that silently drops
work must not look fast), and tears down.  A *group* is a named list of
benchmarks living in one module of this package (see ``GROUPS`` in
``__init__``); the runner executes every (benchmark, loop) pair in a fresh
interpreter via ``_worker``.

Nothing here imports tideloop's loop machinery at module level: the worker for
``asyncio`` or ``uvloop`` only pays for what it uses.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Final

try:
    from ._build import tideloop_build
except ImportError:  # a top-level module, its directory on sys.path (the servers)
    from _build import tideloop_build  # type: ignore[import-not-found,no-redef]

__all__ = [
    "PURE_ENV",
    "BenchFn",
    "BenchGroup",
    "Benchmark",
    "FloorFn",
    "LoopSpec",
    "Timer",
    "check_build_env",
    "close_loop",
    "loop_env",
    "make_loop",
    "parse_loop_spec",
    "pure_requested",
]


class Timer:
    """Context manager recording wall-clock and process CPU time of one block.

    ``time.process_time`` counts every thread of the process, so work pushed to
    helper threads (executor, producer thread) is part of the CPU figure.
    A full garbage collection runs before the clocks start so that garbage
    left by setup is not billed to the measured block.
    """

    __slots__ = ("_cpu0", "_wall0", "cpu", "uses", "wall")

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0
        self.uses = 0
        self._wall0 = 0.0
        self._cpu0 = 0.0

    def __enter__(self) -> Timer:
        gc.collect()
        self._cpu0 = time.process_time()
        self._wall0 = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        wall1 = time.perf_counter()
        cpu1 = time.process_time()
        self.wall += wall1 - self._wall0
        self.cpu += cpu1 - self._cpu0
        self.uses += 1


BenchFn = Callable[[asyncio.AbstractEventLoop, int, Timer], None]
#: ``floor(n, timer)``: the same ``n`` operations done by bare Python, with no
#: event loop (the ``pyfloor`` row of a worker group); checks its work too.
FloorFn = Callable[[int, Timer], None]


@dataclass(frozen=True)
class Benchmark:
    """One measurement: ``n`` operations of ``unit`` done by ``fn``."""

    name: str
    description: str
    unit: str
    n: int
    quick_n: int
    fn: BenchFn
    floor: FloorFn | None = None


@dataclass(frozen=True)
class BenchGroup:
    """A named set of benchmarks plus its default sampling plan."""

    name: str
    description: str
    benchmarks: tuple[Benchmark, ...]
    rounds: int = 3
    repeats: int = 3
    quick_rounds: int = 1
    quick_repeats: int = 2

    def get(self, name: str) -> Benchmark:
        for bench in self.benchmarks:
            if bench.name == name:
                return bench
        raise KeyError(f"no benchmark {name!r} in group {self.name!r}")


#: The environment variable that makes ``import tideloop`` use its pure-Python
#: modules instead of the compiled ones (read when tideloop is imported, so a
#: process must be started with it: see :func:`loop_env`).
PURE_ENV: Final = "TIDELOOP_PURE_PYTHON"


def pure_requested(environ: Mapping[str, str]) -> bool:
    """Whether ``environ`` asks tideloop for its pure-Python modules (the
    variable set to anything but ``""`` or ``"0"``)."""
    return environ.get(PURE_ENV, "") not in ("", "0")


@dataclass(frozen=True)
class LoopSpec:
    """A loop implementation to measure: ``asyncio``, ``uvloop``, ``tideloop``
    or ``tideloop-BACKEND`` (``tideloop:BACKEND`` is accepted as well), the
    same with ``-pure`` (``tideloop-pure``, ``tideloop-pure-BACKEND``: the
    same installation run with ``TIDELOOP_PURE_PYTHON=1``, its pure-Python
    modules); or ``pyfloor``, a group's bare-Python reference (not a loop: see
    ``_floor_server``, ``_udp_floor``, ``_tls_floor`` and the floors of
    ``micro`` and ``spawn``)."""

    kind: str  # "asyncio" | "uvloop" | "tideloop" | "pyfloor"
    backend: str | None = None
    pure: bool = False

    @property
    def label(self) -> str:
        if self.kind != "tideloop":
            return self.kind
        label = "tideloop-pure" if self.pure else "tideloop"
        return f"{label}-{self.backend}" if self.backend else label

    @property
    def is_tideloop(self) -> bool:
        return self.kind == "tideloop"

    @property
    def compiled_row(self) -> LoopSpec | None:
        """For a ``tideloop-pure`` row, the row of the same loop on the build
        ``import tideloop`` picks (``tideloop[-BACKEND]``); else None."""
        return LoopSpec("tideloop", self.backend) if self.pure else None


def parse_loop_spec(text: str) -> LoopSpec:
    text = text.strip()
    for sep in ("-", ":"):
        head, found, tail = text.partition(sep)
        if found and head == "tideloop":
            pure = False
            if tail == "pure":
                return LoopSpec("tideloop", None, pure=True)
            for pure_sep in ("-", ":"):
                if tail.startswith("pure" + pure_sep):
                    pure, tail = True, tail[len("pure") + 1 :]
                    break
            if not tail:
                raise ValueError(f"missing backend name in {text!r}")
            return LoopSpec("tideloop", tail, pure=pure)
    if text in ("asyncio", "uvloop", "tideloop", "pyfloor"):
        return LoopSpec(text)
    raise ValueError(
        f"unknown loop {text!r}: expected asyncio, uvloop, tideloop, tideloop-BACKEND, "
        "tideloop-pure, tideloop-pure-BACKEND or pyfloor"
    )


def loop_env(spec: LoopSpec, base: Mapping[str, str]) -> dict[str, str]:
    """The environment of a process that runs ``spec``: ``base`` with
    ``TIDELOOP_PURE_PYTHON=1`` for a ``tideloop-pure`` row, and without the
    variable for every other row (a shell that exports it must not turn the
    ``tideloop`` row into a second pure one)."""
    env = {k: v for k, v in base.items() if k != PURE_ENV}
    if spec.pure:
        env[PURE_ENV] = "1"
    return env


def check_build_env(spec: LoopSpec, environ: Mapping[str, str]) -> None:
    """Refuse to run ``spec`` in a process whose environment contradicts it
    (ValueError): the ``-pure`` rows need ``TIDELOOP_PURE_PYTHON`` set from
    the process's start, the others need it unset."""
    if not spec.is_tideloop:
        return
    if spec.pure and not pure_requested(environ):
        raise ValueError(
            f"{spec.label} must run in a process started with {PURE_ENV}=1 "
            "(the benchmark's runners start it so)"
        )
    if not spec.pure and pure_requested(environ):
        pure_label = LoopSpec("tideloop", spec.backend, pure=True).label
        raise ValueError(
            f"{spec.label} runs the build 'import tideloop' picks, but {PURE_ENV} is set "
            f"in this process: unset it, or ask for {pure_label}"
        )


def make_loop(spec: LoopSpec) -> asyncio.AbstractEventLoop:
    """Create a fresh loop of the requested kind (called in the worker).

    A ``tideloop-pure`` loop must come from pure-Python modules: if tideloop
    imported compiled ones all the same, this raises RuntimeError rather than
    measure the compiled build under the pure label."""
    if spec.kind == "asyncio":
        # The stock loop, whatever policy might have been installed.
        return asyncio.DefaultEventLoopPolicy().new_event_loop()
    if spec.kind == "uvloop":
        uvloop = importlib.import_module("uvloop")
        factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
        return factory()
    if spec.kind == "tideloop":
        check_build_env(spec, os.environ)
        import tideloop

        if spec.pure:
            compiled = tideloop_build()["compiled"]
            if compiled:
                raise RuntimeError(
                    f"{spec.label}: {PURE_ENV}=1 is set, yet tideloop imported compiled "
                    f"modules ({', '.join(compiled)})"
                )
        loop: asyncio.AbstractEventLoop
        if spec.backend is None:
            loop = tideloop.new_event_loop()
        else:
            loop = tideloop.new_event_loop(backend=spec.backend)
        return loop
    if spec.kind == "pyfloor":
        raise ValueError("pyfloor is a group's bare-Python reference, not an event loop")
    raise ValueError(f"unknown loop kind {spec.kind!r}")


def close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Close ``loop`` the way ``asyncio.run`` would (executor included)."""
    if loop.is_closed():
        return
    try:
        if not loop.is_running():
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        asyncio.set_event_loop(None)
        loop.close()
