"""An exception-handler policy: log, count and escalate unhandled errors.

Errors that no ``await`` will ever see (an exception in a ``call_soon``
callback or a protocol method, a task that failed and was dropped without
anyone reading its result, a transport failing in the background) go to the
loop's exception handler. asyncio's default handler logs them and carries on,
which is easy to miss in production. :class:`ErrorPolicy` is a handler that

* logs every error as the default handler does (``loop.default_exception_handler``);
* counts them by exception type (export the counts to your metrics);
* escalates: an error of a *fatal* type, or more errors than a budget allows,
  fails the program. A handler must not raise (asyncio would only log that),
  so it sets the exception on a future that :func:`supervise` watches next
  to the application's main coroutine.

Run it: ``python examples/error_policy.py``.
"""

from __future__ import annotations

import asyncio
import collections
import gc
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import tideloop

T = TypeVar("T")
LoopFactory = Callable[[], asyncio.AbstractEventLoop]


class EscalatedError(Exception):
    """An unhandled error the policy judged fatal."""

    def __init__(self, message: str, context: dict[str, Any]) -> None:
        super().__init__(message)
        self.context = context


class ErrorPolicy:
    def __init__(
        self,
        *,
        fatal: tuple[type[BaseException], ...] = (),
        max_errors: int | None = None,
    ) -> None:
        self.fatal = fatal
        self.max_errors = max_errors
        self.counts: collections.Counter[str] = collections.Counter()
        self._escalation: asyncio.Future[None] | None = None

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.set_exception_handler(self)
        self._escalation = loop.create_future()

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        self.counts[type(exc).__name__ if exc is not None else "(no exception)"] += 1
        loop.default_exception_handler(context)  # log it as asyncio would
        if isinstance(exc, self.fatal):
            self._escalate(f"fatal error: {exc!r}", context)
        elif self.max_errors is not None and self.counts.total() > self.max_errors:
            self._escalate(f"more than {self.max_errors} unhandled errors", context)

    def _escalate(self, message: str, context: dict[str, Any]) -> None:
        if self._escalation is not None and not self._escalation.done():
            error = EscalatedError(message, context)
            exc = context.get("exception")
            if exc is not None:
                error.__cause__ = exc
            self._escalation.set_exception(error)

    async def escalated(self) -> None:
        """Wait until an error is escalated, then raise it."""
        if self._escalation is None:
            raise RuntimeError("install() the policy first")
        await self._escalation


async def supervise(policy: ErrorPolicy, app: Coroutine[Any, Any, T]) -> T:
    """Run ``app``; if the policy escalates an error first, cancel ``app``
    and raise the error."""
    policy.install(asyncio.get_running_loop())
    app_task = asyncio.create_task(app)
    watch = asyncio.create_task(policy.escalated())
    try:
        done, _ = await asyncio.wait({app_task, watch}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        app_task.cancel()
        watch.cancel()
        raise
    if watch in done:
        app_task.cancel()
        await asyncio.gather(app_task, return_exceptions=True)
        await watch  # raises the EscalatedError
    watch.cancel()
    await asyncio.gather(watch, return_exceptions=True)
    return app_task.result()


# -- a demonstration ------------------------------------------------------------------


class DiskFullError(Exception):
    pass


def flaky_callback() -> None:
    raise ZeroDivisionError("division by zero in a callback")


async def fails_quietly() -> None:
    raise ValueError("a fire-and-forget task failed")


def disk_full() -> None:
    raise DiskFullError("no space left on device")


@dataclass
class Report:
    counts: dict[str, int]
    escalated: str
    cause: str
    app_cancelled: bool
    loop_type: str


async def app(report: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    report["loop_type"] = type(loop).__name__
    # 1. An exception in a callback: logged and counted, the program goes on.
    loop.call_soon(flaky_callback)
    # 2. A task that fails while nobody awaits it: reported when it is dropped.
    task = asyncio.create_task(fails_quietly())
    await asyncio.wait({task})  # done, but its exception is never retrieved
    del task
    gc.collect()  # CPython frees it at once; other runtimes need a collection
    # 3. A fatal error: escalated, and the application is stopped.
    loop.call_soon(disk_full)
    try:
        await asyncio.Event().wait()  # the rest of the application's life
    except asyncio.CancelledError:
        report["app_cancelled"] = True
        raise


def main(loop_factory: LoopFactory | None = None) -> Report:
    policy = ErrorPolicy(fatal=(DiskFullError,), max_errors=10)
    seen: dict[str, Any] = {"app_cancelled": False, "loop_type": ""}
    escalated = cause = ""
    with asyncio.Runner(loop_factory=loop_factory or tideloop.new_event_loop) as runner:
        try:
            runner.run(supervise(policy, app(seen)))
        except EscalatedError as exc:
            escalated, cause = str(exc), repr(exc.__cause__)
    return Report(
        counts=dict(policy.counts),
        escalated=escalated,
        cause=cause,
        app_cancelled=seen["app_cancelled"],
        loop_type=seen["loop_type"],
    )


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.ERROR)
    r = main()
    print(f"on a {r.loop_type}: errors by type {r.counts}")
    print(f"escalated: {r.escalated} (cause {r.cause}); app cancelled: {r.app_cancelled}")
