"""A task limit with back-pressure: never more than N tasks of a kind at once.

``asyncio.create_task`` never refuses work: a producer that spawns a task
per item (a request, a URL, a file) grows memory without bound when items
arrive faster than they finish. :class:`BoundedTaskGroup` is an
``asyncio.TaskGroup`` whose ``spawn()`` *waits* for a free slot before it
creates the task, so:

* at most ``limit`` of its tasks exist at any time (and at most ``limit``
  coroutine objects: ``spawn`` takes the coroutine function and its
  arguments, and calls it only once a slot is free);
* a producer that gets ahead is suspended in ``spawn()``, which is the
  back-pressure: its own input stops being read while it waits;
* errors behave as in ``TaskGroup``: the first failure cancels the rest.

A task factory (``loop.set_task_factory``) cannot do this: it is a plain
function and must return a task at once, it cannot make the caller wait.

Run it: ``python examples/task_limit.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

import tideloop

T = TypeVar("T")
LoopFactory = Callable[[], asyncio.AbstractEventLoop]


class BoundedTaskGroup:
    """``asyncio.TaskGroup`` with at most ``limit`` tasks alive at once."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._group = asyncio.TaskGroup()
        self._slots = asyncio.Semaphore(limit)
        self.alive = 0
        self.max_alive = 0
        self.waits = 0  # how often spawn() had to wait for a slot

    async def __aenter__(self) -> BoundedTaskGroup:
        await self._group.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._group.__aexit__(exc_type, exc, tb)

    async def spawn(
        self, func: Callable[..., Coroutine[Any, Any, T]], *args: Any
    ) -> asyncio.Task[T]:
        """Wait for a free slot, then start ``func(*args)`` as a task."""
        if self._slots.locked():
            self.waits += 1
        await self._slots.acquire()
        try:
            task = self._group.create_task(func(*args))
        except BaseException:
            self._slots.release()
            raise
        self.alive += 1
        self.max_alive = max(self.max_alive, self.alive)
        task.add_done_callback(self._on_done)
        return task

    def _on_done(self, task: asyncio.Task[Any]) -> None:
        self.alive -= 1
        self._slots.release()


# -- a demonstration ------------------------------------------------------------------


@dataclass
class Report:
    limit: int
    jobs: int
    results: list[int] = field(default_factory=list)
    running: int = 0
    max_running: int = 0
    max_alive: int = 0
    producer_waits: int = 0
    loop_type: str = ""


async def demo(limit: int, producers: int, jobs_each: int) -> Report:
    report = Report(limit=limit, jobs=producers * jobs_each)
    report.loop_type = type(asyncio.get_running_loop()).__name__

    async def job(n: int) -> int:
        report.running += 1
        report.max_running = max(report.max_running, report.running)
        for _ in range(3):  # stands for a few awaits on real I/O
            await asyncio.sleep(0)
        report.running -= 1
        report.results.append(n)
        return n

    async def producer(group: BoundedTaskGroup, first: int) -> None:
        for n in range(first, first + jobs_each):
            await group.spawn(job, n)  # suspends while `limit` jobs are alive

    async with BoundedTaskGroup(limit) as group:
        await asyncio.gather(*(producer(group, p * jobs_each) for p in range(producers)))
    report.max_alive = group.max_alive
    report.producer_waits = group.waits
    return report


def main(
    loop_factory: LoopFactory | None = None,
    *,
    limit: int = 4,
    producers: int = 3,
    jobs_each: int = 20,
) -> Report:
    with asyncio.Runner(loop_factory=loop_factory or tideloop.new_event_loop) as runner:
        return runner.run(demo(limit, producers, jobs_each))


if __name__ == "__main__":
    r = main()
    print(
        f"{len(r.results)}/{r.jobs} jobs done on a {r.loop_type}; at most {r.max_running} "
        f"running and {r.max_alive} tasks alive (limit {r.limit}); producers waited "
        f"{r.producer_waits} times"
    )
