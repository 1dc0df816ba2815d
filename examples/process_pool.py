"""CPU-bound work in a process pool, awaited from the event loop.

CPU-bound Python code blocks the loop (and, in threads, holds the GIL), so
it goes to a ``concurrent.futures.ProcessPoolExecutor`` through
``loop.run_in_executor(pool, func, *args)``: the loop keeps serving other
tasks while the workers compute, and each call's result (or exception)
arrives as an ordinary awaitable.

The pool uses the "spawn" start method: it works the same on every platform
and avoids forking a process that runs threads (the loop's default executor,
other libraries), which Python 3.12+ warns about. Functions sent to the pool
must be importable by the workers: module-level functions, and the script
keeps its work under ``if __name__ == "__main__":``.

Run it: ``python examples/process_pool.py``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import multiprocessing
import os
from collections.abc import Callable
from dataclasses import dataclass

import tideloop

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def is_prime(n: int) -> bool:
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    return all(n % d for d in range(3, math.isqrt(n) + 1, 2))


def count_primes(lo: int, hi: int) -> tuple[int, int]:
    """CPU-bound: the number of primes in [lo, hi), and the worker's pid."""
    return sum(1 for n in range(lo, hi) if is_prime(n)), os.getpid()


def check_positive(n: int) -> int:
    if n <= 0:
        raise ValueError(f"{n} is not positive")
    return n


@dataclass
class Report:
    primes: int
    chunks: int
    worker_pids: set[int]
    parent_pid: int
    heartbeats: int
    error: str
    loop_type: str


async def count_all(pool: concurrent.futures.Executor, limit: int, chunks: int) -> Report:
    loop = asyncio.get_running_loop()
    step = -(-limit // chunks)  # ceiling division
    jobs = [
        loop.run_in_executor(pool, count_primes, lo, min(lo + step, limit))
        for lo in range(0, limit, step)
    ]

    # The loop is free while the workers compute: this task keeps running.
    beats = 0
    done = asyncio.Event()

    async def heartbeat() -> None:
        nonlocal beats
        while not done.is_set():
            beats += 1
            await asyncio.sleep(0.001)

    beat_task = asyncio.create_task(heartbeat())
    try:
        results = await asyncio.gather(*jobs)
    finally:
        done.set()
        await beat_task

    # A worker's exception is raised where the result is awaited.
    try:
        await loop.run_in_executor(pool, check_positive, -1)
        error = ""
    except ValueError as exc:
        error = str(exc)

    return Report(
        primes=sum(count for count, _ in results),
        chunks=len(results),
        worker_pids={pid for _, pid in results},
        parent_pid=os.getpid(),
        heartbeats=beats,
        error=error,
        loop_type=type(loop).__name__,
    )


def main(
    loop_factory: LoopFactory | None = None, *, limit: int = 100_000, workers: int = 2
) -> Report:
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        with asyncio.Runner(loop_factory=loop_factory or tideloop.new_event_loop) as runner:
            return runner.run(count_all(pool, limit, chunks=8))


if __name__ == "__main__":
    report = main()
    print(
        f"{report.primes} primes below 100000, counted in {report.chunks} chunks by "
        f"{len(report.worker_pids)} worker processes on a {report.loop_type}"
    )
    print(f"worker error: {report.error}")
