"""A fixed workload for measuring what loop metrics cost, under callgrind.

    python benchmarks/metrics_cost.py callsoon 20000 [--metrics]
    python benchmarks/metrics_cost.py echo 5000 [--metrics]

``callsoon N``: one callback that re-schedules itself with ``call_soon``
until it has run N times. ``echo N``: N ping-pong round trips of a 1 KiB
message between a client and an echo server (both ``asyncio.Protocol``, both
on the one loop, over loopback TCP). Run each twice with different N under
``valgrind --tool=callgrind`` and divide the difference of the instruction
totals by the difference of N: start-up and shutdown cancel out (see
docs/metrics.md for the method and the figures).
"""

from __future__ import annotations

import argparse
import asyncio

import tideloop

MESSAGE = b"x" * 1024


def callsoon(loop: asyncio.AbstractEventLoop, n: int) -> None:
    done = loop.create_future()
    left = [n]

    def tick() -> None:
        left[0] -= 1
        if left[0]:
            loop.call_soon(tick)
        else:
            done.set_result(None)

    loop.call_soon(tick)
    loop.run_until_complete(done)


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class Client(asyncio.Protocol):
    def __init__(self, n: int, done: asyncio.Future[None]) -> None:
        self.left = n
        self.got = 0
        self.done = done

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.transport.write(MESSAGE)

    def data_received(self, data: bytes) -> None:
        self.got += len(data)
        if self.got < len(MESSAGE):
            return
        self.got = 0
        self.left -= 1
        if self.left:
            self.transport.write(MESSAGE)
        else:
            self.done.set_result(None)


def echo(loop: asyncio.AbstractEventLoop, n: int) -> None:
    async def main() -> None:
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        done = loop.create_future()
        transport, _ = await loop.create_connection(
            lambda: Client(n, done), *server.sockets[0].getsockname()
        )
        await done
        transport.close()
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workload", choices=["callsoon", "echo"])
    parser.add_argument("n", type=int)
    parser.add_argument("--metrics", action="store_true", help="new_event_loop(metrics=True)")
    args = parser.parse_args()
    # Without --metrics, no argument: the script also runs on versions before metrics.
    loop = tideloop.new_event_loop(metrics=True) if args.metrics else tideloop.new_event_loop()
    try:
        {"callsoon": callsoon, "echo": echo}[args.workload](loop, args.n)
    finally:
        loop.close()


if __name__ == "__main__":
    main()
