"""Micro-benchmarks of the event loop's primitive operations.

Each function measures ``n`` operations inside ``with timer:`` and then checks
that the work was really done.  Callbacks are ordinary Python functions, as in
real programs; their own (tiny, loop-independent) cost is part of every figure.

Each benchmark also has a ``floor``: the same operations in bare Python,
with no event loop (the ``pyfloor`` row: ``--loops tideloop,pyfloor``).

Run them with ``python -m benchmarks --group micro`` or
``python -m benchmarks.micro``, from the repository's root.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import os
import select
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

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


# -- pyfloor: the same operations in bare Python ------------------------------------
#
# What each operation costs with no event loop semantics at all (no handles,
# contexts, debug checks, exception handling or closed-loop checks): the
# least Python work that does the same job.  A loop written in Python cannot
# go below it; what a loop costs above it is the price of its semantics.


def _floor_call_soon(n: int, timer: Timer, *, with_args: bool) -> None:
    """A deque of (callback, args) and a run loop that pops what was ready at
    the start of each iteration, as asyncio's ``_run_once`` does."""
    ready: deque[tuple[Callable[..., object], tuple[object, ...]]] = deque()
    append = ready.append
    total = 0
    remaining = n
    running = True

    def call_soon(callback: Callable[..., object], *args: object) -> None:
        append((callback, args))

    def cb() -> None:
        nonlocal total
        total += 1

    def cb_args(a: int, b: str, c: object) -> None:
        nonlocal total
        total += a

    def stop() -> None:
        nonlocal running
        running = False

    def driver() -> None:
        nonlocal remaining
        k = min(BATCH, remaining)
        remaining -= k
        if with_args:
            for _ in range(k):
                call_soon(cb_args, 1, "arg", None)
        else:
            for _ in range(k):
                call_soon(cb)
        call_soon(driver if remaining else stop)

    call_soon(driver)
    popleft = ready.popleft
    with timer:
        while running:
            for _ in range(len(ready)):
                callback, args = popleft()
                callback(*args)
    _check(total == n, f"{total} of {n} callbacks ran")


def floor_call_soon(n: int, timer: Timer) -> None:
    _floor_call_soon(n, timer, with_args=False)


def floor_call_soon_args(n: int, timer: Timer) -> None:
    _floor_call_soon(n, timer, with_args=True)


def floor_call_soon_threadsafe(n: int, timer: Timer) -> None:
    """The producer appends to a deque and writes a byte to a wake-up pipe
    (per call, as asyncio does); the consumer waits in epoll, drains the
    pipe and runs what is ready."""
    ready: deque[Callable[[], None]] = deque()
    rfd, wfd = os.pipe()
    os.set_blocking(rfd, False)
    os.set_blocking(wfd, False)
    total = 0

    def cb() -> None:
        nonlocal total
        total += 1

    def producer() -> None:
        append = ready.append
        write = os.write
        for _ in range(n):
            append(cb)
            try:
                write(wfd, b"\0")
            except BlockingIOError:
                pass  # the pipe is full: the consumer is awake anyway

    thread = threading.Thread(target=producer, name="floor-producer", daemon=True)
    epoll = select.epoll()
    epoll.register(rfd, select.EPOLLIN)
    popleft = ready.popleft
    try:
        with timer:
            thread.start()
            while total < n:
                epoll.poll()
                try:
                    os.read(rfd, 65536)
                except BlockingIOError:
                    pass
                for _ in range(len(ready)):
                    popleft()()
        thread.join()
    finally:
        epoll.close()
        os.close(rfd)
        os.close(wfd)
    _check(total == n, f"{total} of {n} threadsafe callbacks ran")


class _FloorTimer:
    """A timer's record: what ``cancel()`` needs."""

    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False


def floor_timer_cancel(n: int, timer: Timer) -> None:
    """``call_later``: a record pushed on a heap of (deadline, sequence,
    record); ``cancel``: a flag and a count; the next iteration drops the
    cancelled records (rebuilding the heap when most are cancelled, as
    asyncio does)."""
    heap: list[tuple[float, int, _FloorTimer]] = []
    seq = itertools.count()
    cancelled = 0
    fired = 0
    now = time.monotonic

    def cb() -> None:
        nonlocal fired
        fired += 1

    def call_later(delay: float, callback: Callable[[], None]) -> _FloorTimer:
        record = _FloorTimer(callback)
        heapq.heappush(heap, (now() + delay, next(seq), record))
        return record

    def cancel(record: _FloorTimer) -> None:
        nonlocal cancelled
        if not record.cancelled:
            record.cancelled = True
            cancelled += 1

    with timer:
        for _ in range(n):
            cancel(call_later(3600.0, cb))
        # The next iteration: most timers are cancelled, so rebuild the heap.
        if cancelled * 2 > len(heap):
            heap = [entry for entry in heap if not entry[2].cancelled]
            heapq.heapify(heap)
            cancelled = 0
        deadline = now()
        while heap and heap[0][0] <= deadline:
            record = heapq.heappop(heap)[2]
            if not record.cancelled:
                record.callback()
    _check(fired == 0 and not heap, f"{fired} cancelled timers fired, {len(heap)} left")


def floor_sleep0(n: int, timer: Timer) -> None:
    """The coroutine of the benchmark, resumed by a bare ``send(None)`` each
    time it yields (``asyncio.sleep(0)`` yields once and needs no loop)."""
    count = 0

    async def main() -> None:
        nonlocal count
        sleep = asyncio.sleep
        for _ in range(n):
            await sleep(0)
            count += 1

    coro = main()
    send = coro.send
    with timer:
        try:
            while True:
                send(None)
        except StopIteration:
            pass
    _check(count == n, f"{count} of {n} sleeps completed")


def floor_getaddrinfo(n: int, timer: Timer) -> None:
    """``socket.getaddrinfo`` called directly: a numeric host needs no
    resolver, so a loop may answer on its own thread (tideloop does; stock
    asyncio and uvloop hand it to a thread pool)."""
    last: list[Any] = []
    gai = socket.getaddrinfo
    with timer:
        for _ in range(n):
            last = gai("127.0.0.1", 80, type=socket.SOCK_STREAM)
    _check(bool(last), f"getaddrinfo returned {last!r}")
    first = last[0]
    assert isinstance(first, tuple)
    _check(
        first[0] == socket.AF_INET and first[4] == ("127.0.0.1", 80),
        f"unexpected getaddrinfo entry {first!r}",
    )


def floor_sock_echo(n: int, timer: Timer) -> None:
    """The same round trips on non-blocking sockets: each side tries
    ``recv``/``send`` first and waits in epoll only when the socket has
    nothing (as ``sock_recv``/``sock_sendall`` do)."""
    left, right = socket.socketpair()
    left.setblocking(False)
    right.setblocking(False)
    epoll = select.epoll()
    msg = MESSAGE
    size = len(msg)
    done = 0

    def recv(sock: socket.socket) -> bytes:
        while True:
            try:
                return sock.recv(4096)
            except BlockingIOError:
                epoll.register(sock.fileno(), select.EPOLLIN)
                epoll.poll()
                epoll.unregister(sock.fileno())

    def sendall(sock: socket.socket, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[sock.send(view) :]
            except BlockingIOError:
                epoll.register(sock.fileno(), select.EPOLLOUT)
                epoll.poll()
                epoll.unregister(sock.fileno())

    try:
        with timer:
            for _ in range(n):
                sendall(left, msg)
                sendall(right, recv(right))
                got = recv(left)
                while len(got) < size:
                    more = recv(left)
                    if not more:
                        raise ConnectionError("echo side closed early")
                    got += more
                if got != msg:
                    raise AssertionError(f"echo returned {got!r}")
                done += 1
    finally:
        epoll.close()
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
            floor=floor_call_soon,
        ),
        Benchmark(
            "call_soon_args",
            "call_soon(cb, 1, 'arg', None), batches of 1000",
            "callback",
            n=200_000,
            quick_n=20_000,
            fn=bench_call_soon_args,
            floor=floor_call_soon_args,
        ),
        Benchmark(
            "call_soon_threadsafe",
            "call_soon_threadsafe(cb) from a producer thread",
            "callback",
            n=20_000,
            quick_n=2_000,
            fn=bench_call_soon_threadsafe,
            floor=floor_call_soon_threadsafe,
        ),
        Benchmark(
            "timer_cancel",
            "call_later(3600, cb).cancel(), then one iteration",
            "timer",
            n=100_000,
            quick_n=10_000,
            fn=bench_timer_cancel,
            floor=floor_timer_cancel,
        ),
        Benchmark(
            "sleep0",
            "await asyncio.sleep(0) in a task",
            "iteration",
            n=40_000,
            quick_n=4_000,
            fn=bench_sleep0,
            floor=floor_sleep0,
        ),
        Benchmark(
            "getaddrinfo",
            "await loop.getaddrinfo('127.0.0.1', 80, type=SOCK_STREAM)",
            "call",
            n=2_000,
            quick_n=200,
            fn=bench_getaddrinfo,
            floor=floor_getaddrinfo,
        ),
        Benchmark(
            "sock_echo",
            "sock_sendall+sock_recv round trip, 70 B, socketpair",
            "round trip",
            n=3_000,
            quick_n=300,
            fn=bench_sock_echo,
            floor=floor_sock_echo,
        ),
    ),
)


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.micro [options]``: ``python -m benchmarks --group micro``."""
    from ._cli import run_bench_main

    return run_bench_main(argv, group="micro")


if __name__ == "__main__":
    sys.exit(main())
