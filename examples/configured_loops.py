"""Configure every new event loop in one place.

Applications often want every loop they create set up the same way: debug
mode, the slow-callback threshold, an exception handler, a default executor
of their own, and (with tideloop) the I/O backend. The place for that is a
*loop factory*, a function that makes and configures a loop:

* ``asyncio.Runner(loop_factory=factory)`` (Python 3.11+) and
  ``asyncio.run(main(), loop_factory=factory)`` (3.12+) take it directly;
* code that cannot pass a factory (``asyncio.run(main())`` without one, old
  libraries calling ``asyncio.new_event_loop()``) asks the event loop
  *policy*: :class:`FactoryPolicy` below makes the policy's new loops with the
  same factory. Policies are deprecated from Python 3.14 on; prefer the
  factory.

Run it: ``python examples/configured_loops.py`` (tideloop must be importable:
installed, or ``PYTHONPATH=src`` in a checkout).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import tideloop

LoopFactory = Callable[[], asyncio.AbstractEventLoop]
log = logging.getLogger(__name__)


@dataclass
class LoopConfig:
    """What every loop of the application gets."""

    debug: bool = True
    slow_callback_duration: float = 0.05
    executor_workers: int = 4
    executor_thread_prefix: str = "app-io"
    backend: str | None = None  # tideloop only: None = TIDELOOP_BACKEND or the best available
    errors: list[dict[str, Any]] = field(default_factory=list)

    def handle_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """The exception handler of every loop (see error_policy.py for more)."""
        self.errors.append(context)
        log.error("unhandled error: %r", context.get("exception") or context["message"])


def configure(loop: asyncio.AbstractEventLoop, config: LoopConfig) -> asyncio.AbstractEventLoop:
    loop.set_debug(config.debug)
    loop.slow_callback_duration = config.slow_callback_duration
    loop.set_exception_handler(config.handle_exception)
    # The loop owns this executor: asyncio.run / Runner shut it down with the
    # loop (loop.shutdown_default_executor()).
    loop.set_default_executor(
        concurrent.futures.ThreadPoolExecutor(
            max_workers=config.executor_workers,
            thread_name_prefix=config.executor_thread_prefix,
        )
    )
    return loop


def make_loop_factory(config: LoopConfig, base: LoopFactory | None = None) -> LoopFactory:
    """A loop factory: ``base()`` (a tideloop loop by default) configured."""
    if base is None:
        base = functools.partial(tideloop.new_event_loop, backend=config.backend)
    make = base

    def factory() -> asyncio.AbstractEventLoop:
        return configure(make(), config)

    return factory


class FactoryPolicy(tideloop.EventLoopPolicy):
    """The legacy path: the policy's new loops come from a loop factory.

    ``asyncio.run(main())`` and ``asyncio.Runner()`` without ``loop_factory``,
    and ``asyncio.new_event_loop()``, all call ``policy.new_event_loop()``;
    so the factory must make its loop directly (``tideloop.new_event_loop()``,
    ``asyncio.SelectorEventLoop()``), not through ``asyncio.new_event_loop()``.
    """

    def __init__(self, factory: LoopFactory) -> None:
        super().__init__()
        self._factory = factory

    def new_event_loop(self) -> asyncio.AbstractEventLoop:  # type: ignore[override]
        return self._factory()


@dataclass
class LoopReport:
    loop_type: type[asyncio.AbstractEventLoop]
    debug: bool
    slow_callback_duration: float
    executor_thread: str
    backend: str | None


def _fail() -> None:
    raise RuntimeError("boom")


async def probe() -> LoopReport:
    """What a coroutine sees of the loop it runs on."""
    loop = asyncio.get_running_loop()
    loop.call_soon(_fail)  # an error nobody catches: goes to the exception handler
    executor_thread = await loop.run_in_executor(None, lambda: threading.current_thread().name)
    stats = getattr(loop, "stats", None)  # tideloop's counters name the backend
    return LoopReport(
        loop_type=type(loop),
        debug=loop.get_debug(),
        slow_callback_duration=loop.slow_callback_duration,
        executor_thread=executor_thread,
        backend=stats()["backend"] if stats is not None else None,
    )


def main(base: LoopFactory | None = None) -> tuple[LoopConfig, list[LoopReport]]:
    config = LoopConfig()
    factory = make_loop_factory(config, base)

    # The modern way: pass the factory (asyncio.run(..., loop_factory=) on 3.12+).
    with asyncio.Runner(loop_factory=factory) as runner:
        reports = [runner.run(probe())]

    # The legacy way: a policy, for code that calls asyncio.run(main()) as is.
    previous = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(FactoryPolicy(factory))
    try:
        reports.append(asyncio.run(probe()))
    finally:
        asyncio.set_event_loop_policy(previous)
    return config, reports


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    config, reports = main()
    for how, report in zip(("loop_factory", "policy"), reports, strict=True):
        print(
            f"{how:12} {report.loop_type.__name__} backend={report.backend} "
            f"debug={report.debug} slow={report.slow_callback_duration} "
            f"executor={report.executor_thread}"
        )
    print(f"exception handler calls: {len(config.errors)}")
