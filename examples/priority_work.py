"""Priority scheduling of work items, without touching the loop's fairness.

The event loop runs ready callbacks first come, first served, and it should
stay that way: a loop that reorders callbacks breaks the ordering guarantees
asyncio code relies on. Priorities belong one level up, in the queue that
feeds the work: :class:`PriorityWorkerPool` is a fixed set of worker tasks
fed by an ``asyncio.PriorityQueue``. A worker that becomes free always takes
the most urgent item waiting (lowest priority number; first submitted first
among equals), while everything else on the loop (other tasks, I/O,
timers) keeps getting its turn as usual.

Run it: ``python examples/priority_work.py``.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import tideloop

LoopFactory = Callable[[], asyncio.AbstractEventLoop]

URGENT, NORMAL, BACKGROUND = 0, 1, 2


@dataclass(order=True)
class WorkItem:
    priority: int
    seq: int  # ties go to the item submitted first
    func: Callable[..., Coroutine[Any, Any, Any]] = field(compare=False)
    args: tuple[Any, ...] = field(compare=False)
    future: asyncio.Future[Any] = field(compare=False)


class PriorityWorkerPool:
    """``workers`` tasks taking work from a priority queue."""

    def __init__(self, workers: int) -> None:
        self._queue: asyncio.PriorityQueue[WorkItem] = asyncio.PriorityQueue()
        self._seq = itertools.count()
        self._size = workers
        self._workers: list[asyncio.Task[None]] = []

    def submit(
        self, priority: int, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any
    ) -> asyncio.Future[Any]:
        """Queue ``func(*args)``; the returned future gets its result."""
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(WorkItem(priority, next(self._seq), func, args, future))
        return future

    async def _work(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                if item.future.cancelled():  # the submitter gave up on it
                    continue
                try:
                    result = await item.func(*item.args)
                except Exception as exc:
                    if not item.future.done():
                        item.future.set_exception(exc)
                else:
                    if not item.future.done():
                        item.future.set_result(result)
            finally:
                self._queue.task_done()

    async def __aenter__(self) -> PriorityWorkerPool:
        self._workers = [asyncio.create_task(self._work()) for _ in range(self._size)]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                await self._queue.join()  # finish everything that was submitted
        finally:
            for worker in self._workers:
                worker.cancel()
            await asyncio.gather(*self._workers, return_exceptions=True)


# -- a demonstration ------------------------------------------------------------------


@dataclass
class Report:
    started: list[str] = field(default_factory=list)  # the order work items started
    log: list[str] = field(default_factory=list)  # work items and unrelated ticks
    results: dict[str, str] = field(default_factory=dict)
    loop_type: str = ""


async def demo(workers: int) -> Report:
    report = Report(loop_type=type(asyncio.get_running_loop()).__name__)
    names = {URGENT: "urgent", NORMAL: "normal", BACKGROUND: "background"}

    async def ticker() -> None:
        # Unrelated work on the same loop: it is not starved by the pool.
        for _ in range(10):
            report.log.append("tick")
            await asyncio.sleep(0)

    tick_task = asyncio.create_task(ticker())

    futures: dict[str, asyncio.Future[Any]] = {}

    async with PriorityWorkerPool(workers) as pool:

        async def job(name: str) -> str:
            report.started.append(name)
            report.log.append(name)
            await asyncio.sleep(0)  # stands for real I/O
            if name == "normal-0":
                # Urgent work that shows up while the queue is full: it goes
                # before everything less urgent that is still waiting.
                futures["urgent-late"] = pool.submit(URGENT, job, "urgent-late")
            return name.upper()

        # Submitted mixed up; started by priority.
        for i in range(4):
            for priority in (BACKGROUND, NORMAL, URGENT):
                if priority == URGENT and i == 3:
                    continue
                name = f"{names[priority]}-{i}"
                futures[name] = pool.submit(priority, job, name)
    await tick_task
    report.results = {name: fut.result() for name, fut in futures.items()}
    return report


def main(loop_factory: LoopFactory | None = None, *, workers: int = 2) -> Report:
    with asyncio.Runner(loop_factory=loop_factory or tideloop.new_event_loop) as runner:
        return runner.run(demo(workers))


if __name__ == "__main__":
    r = main()
    print(f"on a {r.loop_type}, work started in this order:")
    print("  " + ", ".join(r.started))
    print("interleaved with unrelated work:")
    print("  " + ", ".join(r.log))
