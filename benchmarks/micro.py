"""Micro-benchmarks of the event loop's primitive operations.

Each function measures ``n`` operations inside ``with timer:`` and then checks
that the work was really done.  Callbacks are ordinary Python functions, as in
real programs; their own (tiny, loop-independent) cost is part of every figure.

Run them with ``python -m benchmarks --group micro`` or
``python -m benchmarks.micro``, from the repository's root.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import threading

from ._core import BenchGroup, Benchmark, Timer

__all__ = ["GROUP", "main"]

#: Callbacks scheduled per loop iteration by the call_soon benchmarks: the
#: steady state of a busy loop rather than one gigantic ready queue.
BATCH = 1000


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def _call_soon_batches(
    loop: asyncio.AbstractEventLoop, n: int, timer: Timer, *, with_args: bool
) -> None:
    total = 0
    remaining = n

    def cb() -> None:
        nonlocal total
        total += 1

    def cb_args(a: int, b: str, c: object) -> None:
        nonlocal total
        total += a

    def driver() -> None:
        nonlocal remaining
        k = min(BATCH, remaining)
        remaining -= k
        call_soon = loop.call_soon
        if with_args:
            for _ in range(k):
                call_soon(cb_args, 1, "arg", None)
        else:
            for _ in range(k):
                call_soon(cb)
        call_soon(driver if remaining else loop.stop)

    loop.call_soon(driver)
    with timer:
        loop.run_forever()
    _check(total == n, f"{total} of {n} callbacks ran")


def bench_call_soon(loop: asyncio.AbstractEventLoop, n: int, timer: Timer) -> None:
    """call_soon(cb) in batches of BATCH per iteration, then run them."""
    _call_soon_batches(loop, n, timer, with_args=False)


def bench_call_soon_args(loop: asyncio.AbstractEventLoop, n: int, timer: Timer) -> None:
    """call_soon(cb, 1, "arg", None) in batches, then run them."""
    _call_soon_batches(loop, n, timer, with_args=True)


def bench_call_soon_threadsafe(loop: asyncio.AbstractEventLoop, n: int, timer: Timer) -> None:
    """A producer thread submits n callbacks; time until the last one has run."""
    total = 0

    def cb() -> None:
        nonlocal total
        total += 1
        if total == n:
            loop.stop()

    def producer() -> None:
        submit = loop.call_soon_threadsafe
        for _ in range(n):
            submit(cb)

    thread = threading.Thread(target=producer, name="bench-producer", daemon=True)
    with timer:
        thread.start()
        loop.run_forever()
    thread.join()
    _check(total == n, f"{total} of {n} threadsafe callbacks ran")


def bench_timer_cancel(loop: asyncio.AbstractEventLoop, n: int, timer: Timer) -> None:
    """call_later(3600, cb) then .cancel(), n times, then one loop iteration."""
    fired = 0

    def cb() -> None:
        nonlocal fired
        fired += 1

    def driver() -> None:
        call_later = loop.call_later
        for _ in range(n):
            call_later(3600.0, cb).cancel()
        loop.call_soon(loop.stop)

    loop.call_soon(driver)
    with timer:
        loop.run_forever()
    _check(fired == 0, f"{fired} cancelled timers fired")
    # The loop must be idle again: nothing due, nothing left running.
    probe = loop.create_future()
    loop.call_soon(probe.set_result, None)
    loop.run_until_complete(probe)


def bench_sleep0(loop: asyncio.AbstractEventLoop, n: int, timer: Timer) -> None:
    """One task doing ``await asyncio.sleep(0)`` n times (one iteration each)."""
    count = 0

    async def main() -> None:
        nonlocal count
        sleep = asyncio.sleep
        for _ in range(n):
            await sleep(0)
            count += 1

    with timer:
        loop.run_until_complete(main())
    _check(count == n, f"{count} of {n} sleeps completed")


def bench_getaddrinfo(loop: asyncio.AbstractEventLoop, n: int, timer: Timer) -> None:
    """``await loop.getaddrinfo("127.0.0.1", 80, type=SOCK_STREAM)`` n times."""
    results: list[object] = []

    async def main() -> None:
        gai = loop.getaddrinfo
        last = None
        for _ in range(n):
            last = await gai("127.0.0.1", 80, type=socket.SOCK_STREAM)
        results.append(last)

    with timer:
        loop.run_until_complete(main())
    infos = results[0]
    _check(isinstance(infos, list) and len(infos) > 0, f"getaddrinfo returned {infos!r}")
    assert isinstance(infos, list)
    first = infos[0]
    _check(
        first[0] == socket.AF_INET and first[4] == ("127.0.0.1", 80),
        f"unexpected getaddrinfo entry {first!r}",
    )


MESSAGE = b"ping-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def bench_sock_echo(loop: asyncio.AbstractEventLoop, n: int, timer: Timer) -> None:
    """n round trips of a 70-byte message over a socketpair: sock_sendall +
    sock_recv on the driving side, sock_recv + sock_sendall on the echo side."""
    left, right = socket.socketpair()
    left.setblocking(False)
    right.setblocking(False)
    msg = MESSAGE
    size = len(msg)
    done = 0

    async def echo() -> None:
        recv = loop.sock_recv
        sendall = loop.sock_sendall
        while True:
            data = await recv(right, 4096)
            if not data:
                return
            await sendall(right, data)

    async def drive() -> None:
        nonlocal done
        server = loop.create_task(echo())
        recv = loop.sock_recv
        sendall = loop.sock_sendall
        for _ in range(n):
            await sendall(left, msg)
            got = await recv(left, 4096)
            while len(got) < size:
                more = await recv(left, 4096)
                if not more:
                    raise ConnectionError("echo side closed early")
                got += more
            if got != msg:
                raise AssertionError(f"echo returned {got!r}")
            done += 1
        left.shutdown(socket.SHUT_WR)
        await server

    try:
        with timer:
            loop.run_until_complete(drive())
    finally:
        left.close()
        right.close()
    _check(done == n, f"{done} of {n} round trips completed")


GROUP = BenchGroup(
    name="micro",
    description="event loop primitives: callbacks, timers, iterations, getaddrinfo, sock_*",
    benchmarks=(
        Benchmark(
            "call_soon",
            "call_soon(cb), batches of 1000 per iteration",
            "callback",
            n=200_000,
            quick_n=20_000,
            fn=bench_call_soon,
        ),
        Benchmark(
            "call_soon_args",
            "call_soon(cb, 1, 'arg', None), batches of 1000",
            "callback",
            n=200_000,
            quick_n=20_000,
            fn=bench_call_soon_args,
        ),
        Benchmark(
            "call_soon_threadsafe",
            "call_soon_threadsafe(cb) from a producer thread",
            "callback",
            n=20_000,
            quick_n=2_000,
            fn=bench_call_soon_threadsafe,
        ),
        Benchmark(
            "timer_cancel",
            "call_later(3600, cb).cancel(), then one iteration",
            "timer",
            n=100_000,
            quick_n=10_000,
            fn=bench_timer_cancel,
        ),
        Benchmark(
            "sleep0",
            "await asyncio.sleep(0) in a task",
            "iteration",
            n=40_000,
            quick_n=4_000,
            fn=bench_sleep0,
        ),
        Benchmark(
            "getaddrinfo",
            "await loop.getaddrinfo('127.0.0.1', 80, type=SOCK_STREAM)",
            "call",
            n=2_000,
            quick_n=200,
            fn=bench_getaddrinfo,
        ),
        Benchmark(
            "sock_echo",
            "sock_sendall+sock_recv round trip, 70 B, socketpair",
            "round trip",
            n=3_000,
            quick_n=300,
            fn=bench_sock_echo,
        ),
    ),
)


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.micro [options]``: ``python -m benchmarks --group micro``."""
    from ._cli import run_bench_main

    return run_bench_main(argv, group="micro")


if __name__ == "__main__":
    sys.exit(main())
