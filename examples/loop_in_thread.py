"""One event loop per thread: a tideloop loop in a background thread, used
from synchronous code.

A synchronous program (a WSGI app, a GUI, a CLI, a test suite) hands
coroutines to a loop that runs in its own thread with
``asyncio.run_coroutine_threadsafe`` and waits on the returned
``concurrent.futures.Future``. The thread runs the loop under
``asyncio.Runner``, so stopping it has ``asyncio.run``'s clean shutdown:
coroutines still running are cancelled (their futures report it), async
generators are closed, the default executor is shut down, the loop is
closed, and the thread ends.

Run it: ``python examples/loop_in_thread.py``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

import tideloop

T = TypeVar("T")
LoopFactory = Callable[[], asyncio.AbstractEventLoop]


class LoopThread:
    """An event loop running in a background thread."""

    def __init__(self, loop_factory: LoopFactory | None = None, name: str = "loop") -> None:
        self._loop_factory = loop_factory or tideloop.new_event_loop
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = threading.Event()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stopping = False
        self._error: BaseException | None = None

    # -- the background thread ------------------------------------------------

    def _run(self) -> None:
        try:
            with asyncio.Runner(loop_factory=self._loop_factory) as runner:
                runner.run(self._serve())
        except BaseException as exc:  # reported to start() if it never started
            self._error = exc
        finally:
            self._started.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._started.set()
        await self._stop.wait()
        # Returning ends Runner.run(); Runner.close() then cancels what is
        # left, shuts down async generators and the executor, closes the loop.

    # -- the synchronous side ---------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("LoopThread is not started")
        return self._loop

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> LoopThread:
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise self._error
        return self

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the loop; safe from any thread."""
        with self._lock:
            if self._loop is None or self._stopping:
                coro.close()  # never run: don't leave a "never awaited" warning behind
                raise RuntimeError("LoopThread is not running")
            return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for its result (from another thread)."""
        return self.submit(coro).result(timeout)

    def stop(self) -> None:
        """Stop the loop and wait for its thread: a clean asyncio.run-style shutdown."""
        with self._lock:
            if self._stopping or self._loop is None or self._stop is None:
                return
            self._stopping = True
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()

    def __enter__(self) -> LoopThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# -- a demonstration ------------------------------------------------------------------


@dataclass
class Report:
    caller_thread: str
    loop_thread: str = ""
    loop_type: str = ""
    squares: list[int] = field(default_factory=list)
    concurrent_squares: list[int] = field(default_factory=list)
    error: str = ""
    cleaned_up: bool = False
    leftover_cancelled: bool = False
    thread_alive_after_stop: bool = True
    loop_closed_after_stop: bool = False


async def square(n: int) -> int:
    await asyncio.sleep(0)  # stands for real I/O
    return n * n


async def whereami() -> tuple[str, str]:
    return threading.current_thread().name, type(asyncio.get_running_loop()).__name__


async def fail() -> None:
    raise ValueError("bad input")


async def long_running(started: threading.Event, report: Report) -> None:
    try:
        started.set()
        await asyncio.Event().wait()  # never set: runs until cancelled
    finally:
        report.cleaned_up = True


def main(loop_factory: LoopFactory | None = None) -> Report:
    report = Report(caller_thread=threading.current_thread().name)
    worker = LoopThread(loop_factory, name="loop-thread")
    with worker:
        report.loop_thread, report.loop_type = worker.call(whereami())
        # One at a time, as a synchronous caller would ...
        report.squares = [worker.call(square(n)) for n in range(5)]
        # ... or many at once.
        futures = [worker.submit(square(n)) for n in range(5, 10)]
        report.concurrent_squares = [f.result() for f in futures]
        # Exceptions cross the thread boundary unchanged.
        try:
            worker.call(fail())
        except ValueError as exc:
            report.error = str(exc)
        # Something still running at shutdown is cancelled, and cleans up.
        started = threading.Event()
        leftover = worker.submit(long_running(started, report))
        started.wait()
    report.leftover_cancelled = leftover.cancelled()
    report.thread_alive_after_stop = worker.is_alive()
    report.loop_closed_after_stop = worker.loop.is_closed()
    return report


if __name__ == "__main__":
    r = main()
    print(f"called from {r.caller_thread}; the loop ({r.loop_type}) runs in {r.loop_thread}")
    print(f"squares {r.squares} {r.concurrent_squares}")
    print(f"error crossed over: {r.error!r}")
    print(
        f"shutdown: leftover cancelled={r.leftover_cancelled} cleaned up={r.cleaned_up} "
        f"thread alive={r.thread_alive_after_stop} loop closed={r.loop_closed_after_stop}"
    )
