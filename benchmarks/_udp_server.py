"""The server under test of the UDP benchmark, in a process of its own.

    python -m benchmarks._udp_server --loop tideloop[-pure][-BACKEND]|asyncio|uvloop|pyfloor
        [--host 127.0.0.1] [--port 0]

One ``asyncio.DatagramProtocol`` on ``loop.create_datagram_endpoint``:
``datagram_received(data, addr)`` -> ``transport.sendto(data, addr)``, what a
real echo service writes.  Nothing else runs in the hot path (no counters).

Control protocol: the stream benchmark's (``_echo_server``): one JSON line on
stdout when bound (``{"event": "listening", "port": ..., "loop_type": ...}``);
each stdin line ``r`` is answered with a ``getrusage`` sample by a thread
blocked on the pipe; ``q`` or EOF stops the server: it closes the endpoint,
closes the loop, prints ``{"event": "closed", ...}`` (calls of
``error_received``, ``pause_writing`` and of the loop's exception handler,
datagrams still queued in the transport) and exits 0.

Started by the benchmark as a top-level module (``UDP_SERVER_BOOTSTRAP``) for
the reason given in ``_echo_server``: the asyncio and uvloop servers must not
import tideloop.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import signal
import sys
from typing import Any, Final, cast

try:
    from . import _udp_floor
    from ._build import tideloop_build
    from ._core import close_loop, make_loop, parse_loop_spec
    from ._echo_server import _emit, _start_control, _stop_loop
except ImportError:  # a top-level module, its directory on sys.path
    import _udp_floor  # type: ignore[import-not-found,no-redef]
    from _build import tideloop_build  # type: ignore[import-not-found,no-redef]
    from _core import close_loop, make_loop, parse_loop_spec  # type: ignore[import-not-found,no-redef]
    from _echo_server import (  # type: ignore[import-not-found,no-redef]
        _emit,
        _start_control,
        _stop_loop,
    )

__all__ = ["UDP_SERVER_BOOTSTRAP", "main"]

#: ``python -c UDP_SERVER_BOOTSTRAP BENCH_DIR --loop ...`` (see ``_echo_server``).
UDP_SERVER_BOOTSTRAP: Final = (
    "import sys; sys.path.append(sys.argv.pop(1)); import _udp_server; sys.exit(_udp_server.main())"
)


class _State:
    """Book-keeping outside the hot path."""

    def __init__(self) -> None:
        self.errors: list[str] = []  # the loop's exception handler
        self.error_received: list[str] = []
        self.pause_writing = 0
        self.lost: BaseException | None = None
        self.lost_called = False


STATE: Final = _State()


class EchoDatagramProtocol(asyncio.DatagramProtocol):
    transport: asyncio.DatagramTransport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.transport.sendto(data, addr)

    def error_received(self, exc: Exception) -> None:
        if len(STATE.error_received) < 10:
            STATE.error_received.append(f"{type(exc).__name__}: {exc}")

    def pause_writing(self) -> None:
        STATE.pause_writing += 1

    def connection_lost(self, exc: Exception | None) -> None:
        STATE.lost_called = True
        STATE.lost = exc


def _exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    exc = context.get("exception")
    text = str(context.get("message", ""))
    if exc is not None:
        text += f": {type(exc).__name__}: {exc}"
    STATE.errors.append(text)
    loop.default_exception_handler(context)


async def _serve(
    loop: asyncio.AbstractEventLoop,
    host: str,
    port: int,
    loop_label: str,
    build: dict[str, Any] | None,
) -> int:
    """Serve until told to stop; returns the datagrams left in the write queue."""
    stop: asyncio.Future[None] = loop.create_future()
    transport, _ = await loop.create_datagram_endpoint(
        EchoDatagramProtocol, local_addr=(host, port)
    )
    sockname = transport.get_extra_info("sockname")
    _emit(
        {
            "event": "listening",
            "port": int(sockname[1]),
            "pid": os.getpid(),
            "loop": loop_label,
            "loop_type": f"{type(loop).__module__}.{type(loop).__qualname__}",
            "transport_type": f"{type(transport).__module__}.{type(transport).__qualname__}",
            "build": build,
        }
    )
    _start_control(functools.partial(_stop_loop, loop, stop))
    await stop
    # Not in typeshed's DatagramTransport, but every loop's has it.
    queued: int = getattr(transport, "get_write_buffer_size", lambda: 0)()
    transport.abort()
    # Let connection_lost run.
    for _ in range(3):
        await asyncio.sleep(0)
    return queued


def _serve_floor(host: str, port: int) -> int:
    """The ``pyfloor`` reference server (see ``_udp_floor``); returns 0."""

    def listening(bound: int) -> None:
        _emit(
            {
                "event": "listening",
                "port": bound,
                "pid": os.getpid(),
                "loop": "pyfloor",
                "loop_type": "pyfloor (bare epoll loop)",
                "transport_type": "pyfloor",
                "build": None,
            }
        )

    _udp_floor.serve(host, port, EchoDatagramProtocol(), listening, _start_control)
    _emit(
        {
            "event": "closed",
            "errors": STATE.errors,
            "error_received": STATE.error_received,
            "pause_writing": STATE.pause_writing,
            "queued_bytes": 0,
            "connection_lost": STATE.lost_called,
        }
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="_udp_server",
        description="Server under test of the UDP benchmark (see the module docstring).",
    )
    parser.add_argument(
        "--loop",
        default="tideloop",
        help="tideloop[-BACKEND], tideloop-pure[-BACKEND] (needs TIDELOOP_PURE_PYTHON=1 in the "
        "environment), asyncio, uvloop, pyfloor (a bare epoll server: see _udp_floor)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    spec = parse_loop_spec(args.loop)
    if spec.kind == "pyfloor":
        return _serve_floor(args.host, args.port)
    loop = make_loop(spec)
    build = tideloop_build() if spec.is_tideloop else None
    loop.set_exception_handler(_exception_handler)
    try:
        asyncio.set_event_loop(loop)
        queued = loop.run_until_complete(_serve(loop, args.host, args.port, spec.label, build))
    finally:
        close_loop(loop)
    _emit(
        {
            "event": "closed",
            "errors": STATE.errors,
            "error_received": STATE.error_received,
            "pause_writing": STATE.pause_writing,
            "queued_bytes": queued,
            "connection_lost": STATE.lost_called,
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
