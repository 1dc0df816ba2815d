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
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

__all__ = [
    "BenchFn",
    "BenchGroup",
    "Benchmark",
    "LoopSpec",
    "Timer",
    "close_loop",
    "make_loop",
    "parse_loop_spec",
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


@dataclass(frozen=True)
class Benchmark:
    """One measurement: ``n`` operations of ``unit`` done by ``fn``."""

    name: str
    description: str
    unit: str
    n: int
    quick_n: int
    fn: BenchFn


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


@dataclass(frozen=True)
class LoopSpec:
    """A loop implementation to measure: ``asyncio``, ``uvloop``, ``tideloop``
    or ``tideloop-BACKEND`` (``tideloop:BACKEND`` is accepted as well); or
    ``pyfloor``, the stream group's reference server (not a loop: see
    ``_floor_server``)."""

    kind: str  # "asyncio" | "uvloop" | "tideloop" | "pyfloor"
    backend: str | None = None

    @property
    def label(self) -> str:
        if self.kind == "tideloop" and self.backend:
            return f"tideloop-{self.backend}"
        return self.kind

    @property
    def is_tideloop(self) -> bool:
        return self.kind == "tideloop"


def parse_loop_spec(text: str) -> LoopSpec:
    text = text.strip()
    for sep in ("-", ":"):
        head, found, tail = text.partition(sep)
        if found and head == "tideloop":
            if not tail:
                raise ValueError(f"missing backend name in {text!r}")
            return LoopSpec("tideloop", tail)
    if text in ("asyncio", "uvloop", "tideloop", "pyfloor"):
        return LoopSpec(text)
    raise ValueError(
        f"unknown loop {text!r}: expected asyncio, uvloop, tideloop, tideloop-BACKEND or pyfloor"
    )


def make_loop(spec: LoopSpec) -> asyncio.AbstractEventLoop:
    """Create a fresh loop of the requested kind (called in the worker)."""
    if spec.kind == "asyncio":
        # The stock loop, whatever policy might have been installed.
        return asyncio.DefaultEventLoopPolicy().new_event_loop()
    if spec.kind == "uvloop":
        uvloop = importlib.import_module("uvloop")
        factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
        return factory()
    if spec.kind == "tideloop":
        import tideloop

        loop: asyncio.AbstractEventLoop
        if spec.backend is None:
            loop = tideloop.new_event_loop()
        else:
            loop = tideloop.new_event_loop(backend=spec.backend)
        return loop
    if spec.kind == "pyfloor":
        raise ValueError("pyfloor is the streams group's reference server, not an event loop")
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
