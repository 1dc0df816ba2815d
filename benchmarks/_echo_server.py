"""The server under test of the stream benchmark, in a process of its own.

    python -m benchmarks._echo_server --loop tideloop[-pure][-BACKEND]|asyncio|uvloop|pyfloor
        --handler protocol|buffered|buffered-zero-copy|streams|split|http
        [--host 127.0.0.1] [--port 0]

Handlers (what real programs write, nothing tuned for one loop):

* ``protocol``: ``asyncio.Protocol``, ``data_received`` -> ``transport.write``;
* ``buffered``: ``asyncio.BufferedProtocol`` reading into one 256 KiB buffer,
  ``buffer_updated`` writes the filled slice (a copy: a transport may keep
  what it could not send yet, and the buffer is refilled by the next read);
* ``buffered-zero-copy``: ``asyncio.BufferedProtocol`` as zero-copy servers
  write it: ``buffer_updated`` writes a memoryview of the filled slice (no
  copy), then asks ``transport.get_write_buffer_size()``.  Zero means the
  kernel took every byte, so the buffer is reused for the next read;
  anything else means the transport may still hold a view of it, so the next
  read goes into a fresh ``ZERO_COPY_BUFFER_BYTES`` buffer (what such a server
  pays when a loop buffers what it could have sent);
* ``streams``: ``asyncio.start_server``, ``read(65536)`` -> ``write`` ->
  ``await drain()``;
* ``split``: the Protocol echo written as two writes, a ``SPLIT_HEAD_BYTES``
  head then the rest (a header then a body: what a loop that coalesces the
  writes of one iteration gains on);
* ``http``: a keep-alive HTTP/1.1 server on Protocol: buffer until
  ``\\r\\n\\r\\n``, check the request line, answer ``HTTP_RESPONSE`` (fixed,
  with Content-Length) per request.

Control protocol: one JSON line on stdout when listening
(``{"event": "listening", "port": ..., "loop_type": ..., "build": ...}``, the
build being ``_build.tideloop_build()`` on tideloop, else null); then each stdin line
``r`` is answered with ``{"event": "sample", "t": monotonic, "utime": s,
"stime": s}`` from ``getrusage(RUSAGE_SELF)`` (the OS's account of the whole
process), and ``q`` or EOF on stdin stops the server: it closes the listener
and every connection, closes the loop, prints ``{"event": "closed", ...}``
(connection count, exception-handler calls) and exits 0.

The control pipe is served by a thread blocked in ``read()``: it costs nothing
while the benchmark runs and puts no extra file descriptor in the loop under
test.  SIGINT is ignored: on Ctrl-C the parent shuts the server down.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Final, cast

try:
    from . import _floor_server
    from ._build import tideloop_build
    from ._core import close_loop, make_loop, parse_loop_spec
    from ._wire import HANDLERS, HTTP_RESPONSE, SPLIT_HEAD_BYTES
except ImportError:  # a top-level module, its directory on sys.path: see SERVER_BOOTSTRAP
    import _floor_server  # type: ignore[import-not-found,no-redef]
    from _build import tideloop_build  # type: ignore[import-not-found,no-redef]
    from _core import close_loop, make_loop, parse_loop_spec  # type: ignore[import-not-found,no-redef]
    from _wire import (  # type: ignore[import-not-found,no-redef]
        HANDLERS,
        HTTP_RESPONSE,
        SPLIT_HEAD_BYTES,
    )

__all__ = ["SERVER_BOOTSTRAP", "main"]

#: How the benchmark starts this module: ``python -c SERVER_BOOTSTRAP BENCH_DIR
#: --loop ...``, as a top-level module rather than ``-m benchmarks...``,
#: so that the asyncio and uvloop servers do not import tideloop.  Importing
#: a package is not free of side effects on the allocator: glibc raises its
#: mmap threshold (M_MMAP_THRESHOLD) the first time a block above it is freed,
#: and whether that has happened decides whether stock asyncio's
#: ``sock.recv(256 KiB)`` per read costs an mmap/munmap pair with page faults
#: (~20 µs per message) or nothing.  An asyncio server that had imported
#: tideloop would be measured in a state a plain asyncio program is not in.
SERVER_BOOTSTRAP: Final = (
    "import sys; sys.path.append(sys.argv.pop(1)); "
    "import _echo_server; sys.exit(_echo_server.main())"
)

BUFFERED_BUFFER_BYTES: Final = 256 * 1024
ZERO_COPY_BUFFER_BYTES: Final = 64 * 1024
STREAMS_READ_BYTES: Final = 65536
HTTP_MAX_HEADER_BYTES: Final = 64 * 1024
LISTEN_BACKLOG: Final = 1024
SHUTDOWN_GRACE_S: Final = 5.0

_BAD_REQUEST: Final = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class _State:
    """Book-keeping outside the hot path: open transports, handler tasks,
    connection count and exception-handler calls."""

    def __init__(self) -> None:
        self.transports: set[asyncio.WriteTransport] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.connections = 0
        self.errors: list[str] = []


STATE: Final = _State()


class EchoProtocol(asyncio.Protocol):
    transport: asyncio.Transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        STATE.connections += 1
        STATE.transports.add(self.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        STATE.transports.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class SplitEchoProtocol(EchoProtocol):
    def data_received(self, data: bytes) -> None:
        transport = self.transport
        transport.write(data[:SPLIT_HEAD_BYTES])
        if len(data) > SPLIT_HEAD_BYTES:
            transport.write(data[SPLIT_HEAD_BYTES:])


class EchoBufferedProtocol(asyncio.BufferedProtocol):
    transport: asyncio.Transport

    def __init__(self) -> None:
        self.buffer = bytearray(BUFFERED_BUFFER_BYTES)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        STATE.connections += 1
        STATE.transports.add(self.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        STATE.transports.discard(self.transport)

    def get_buffer(self, sizehint: int) -> bytearray:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.transport.write(self.buffer[:nbytes])


class ZeroCopyEchoProtocol(EchoBufferedProtocol):
    """Writes a view of its buffer; a fresh buffer whenever the transport kept bytes."""

    def __init__(self) -> None:
        self.buffer = bytearray(ZERO_COPY_BUFFER_BYTES)
        self.view = memoryview(self.buffer)

    def buffer_updated(self, nbytes: int) -> None:
        transport = self.transport
        transport.write(self.view[:nbytes])
        if transport.get_write_buffer_size():
            # The transport may hold a view of these bytes until it sends
            # them: leave the buffer to it, read the next message elsewhere.
            self.buffer = bytearray(ZERO_COPY_BUFFER_BYTES)
            self.view = memoryview(self.buffer)


class HttpProtocol(EchoProtocol):
    """Keep-alive HTTP/1.1: one fixed response per request (pipelining kept)."""

    def __init__(self) -> None:
        self.pending = b""

    def data_received(self, data: bytes) -> None:
        buf = self.pending + data if self.pending else data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            self.pending = buf
            if len(buf) > HTTP_MAX_HEADER_BYTES:
                self._bad_request()
            return
        start = 0
        count = 0
        while end >= 0:
            line_end = buf.find(b"\r\n", start, end + 2)
            method, _, rest = buf[start:line_end].partition(b" ")
            if not method or not rest.endswith((b" HTTP/1.1", b" HTTP/1.0")):
                self._bad_request()
                return
            count += 1
            start = end + 4
            end = buf.find(b"\r\n\r\n", start)
        self.pending = buf[start:]
        self.transport.write(HTTP_RESPONSE if count == 1 else HTTP_RESPONSE * count)

    def _bad_request(self) -> None:
        self.pending = b""
        self.transport.write(_BAD_REQUEST)
        self.transport.close()


async def _streams_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    task = asyncio.current_task()
    if task is not None:
        STATE.tasks.add(cast("asyncio.Task[None]", task))
    STATE.connections += 1
    STATE.transports.add(writer.transport)
    try:
        while True:
            data = await reader.read(STREAMS_READ_BYTES)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        STATE.transports.discard(writer.transport)
        writer.close()
        if task is not None:
            STATE.tasks.discard(cast("asyncio.Task[None]", task))


_FACTORIES: Final[dict[str, type[asyncio.BaseProtocol]]] = {
    "protocol": EchoProtocol,
    "buffered": EchoBufferedProtocol,
    "buffered-zero-copy": ZeroCopyEchoProtocol,
    "split": SplitEchoProtocol,
    "http": HttpProtocol,
}


def _emit(obj: dict[str, Any]) -> None:
    """One JSON line on stdout, unbuffered (called from both threads)."""
    os.write(1, (json.dumps(obj) + "\n").encode())


def _sample() -> dict[str, Any]:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {"event": "sample", "t": time.monotonic(), "utime": ru.ru_utime, "stime": ru.ru_stime}


def _control(stop: Callable[[], None]) -> None:
    """The control thread: answer ``r`` with a CPU sample, ``stop()`` on ``q``/EOF."""
    stdin = sys.stdin.buffer
    while True:
        line = stdin.readline()
        cmd = line.strip()
        if cmd == b"r":
            _emit(_sample())
            continue
        if not line or cmd == b"q":
            break
    stop()


def _start_control(stop: Callable[[], None]) -> None:
    threading.Thread(target=_control, args=(stop,), name="control", daemon=True).start()


def _stop_loop(loop: asyncio.AbstractEventLoop, fut: asyncio.Future[None]) -> None:
    try:
        loop.call_soon_threadsafe(_set_done, fut)
    except RuntimeError:  # the loop is already closed
        pass


def _set_done(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    exc = context.get("exception")
    text = str(context.get("message", ""))
    if exc is not None:
        text += f": {type(exc).__name__}: {exc}"
    STATE.errors.append(text)
    loop.default_exception_handler(context)


async def _serve(
    loop: asyncio.AbstractEventLoop,
    handler: str,
    host: str,
    port: int,
    loop_label: str,
    build: dict[str, Any] | None,
) -> None:
    stop: asyncio.Future[None] = loop.create_future()
    server: asyncio.AbstractServer
    if handler == "streams":
        server = await asyncio.start_server(
            _streams_handler, host, port, backlog=LISTEN_BACKLOG, limit=STREAMS_READ_BYTES
        )
    else:
        server = await loop.create_server(_FACTORIES[handler], host, port, backlog=LISTEN_BACKLOG)
    sockets = server.sockets
    bound_port = int(sockets[0].getsockname()[1]) if sockets else port
    _listening(
        bound_port,
        loop_label,
        f"{type(loop).__module__}.{type(loop).__qualname__}",
        handler,
        build,
    )
    _start_control(functools.partial(_stop_loop, loop, stop))
    await stop
    server.close()
    for transport in list(STATE.transports):
        transport.abort()
    await server.wait_closed()
    if STATE.tasks:
        await asyncio.wait(list(STATE.tasks), timeout=SHUTDOWN_GRACE_S)
        for task in STATE.tasks:
            task.cancel()
    # Let connection_lost callbacks of the aborted transports run.
    for _ in range(3):
        await asyncio.sleep(0)


def _listening(
    port: int, label: str, loop_type: str, handler: str, build: dict[str, Any] | None = None
) -> None:
    _emit(
        {
            "event": "listening",
            "port": port,
            "pid": os.getpid(),
            "loop": label,
            "loop_type": loop_type,
            "handler": handler,
            "build": build,
        }
    )


def _serve_floor(handler: str, host: str, port: int) -> int:
    """The ``pyfloor`` reference server (see _floor_server); returns 0."""
    STATE.connections = _floor_server.serve(
        handler,
        host,
        port,
        LISTEN_BACKLOG,
        _FACTORIES,
        lambda bound: _listening(bound, "pyfloor", "pyfloor (bare epoll loop)", handler),
        _start_control,
    )
    _emit({"event": "closed", "connections": STATE.connections, "errors": STATE.errors})
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="_echo_server",
        description="Server under test of the stream benchmark (see the module docstring).",
    )
    parser.add_argument(
        "--loop",
        default="tideloop",
        help="tideloop[-BACKEND], tideloop-pure[-BACKEND] (needs TIDELOOP_PURE_PYTHON=1 in the "
        "environment), asyncio, uvloop, pyfloor",
    )
    parser.add_argument("--handler", choices=HANDLERS, default="protocol")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    spec = parse_loop_spec(args.loop)
    if spec.kind == "pyfloor":
        return _serve_floor(args.handler, args.host, args.port)
    loop = make_loop(spec)
    build = tideloop_build() if spec.is_tideloop else None
    loop.set_exception_handler(_exception_handler)
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(_serve(loop, args.handler, args.host, args.port, spec.label, build))
    finally:
        close_loop(loop)
    _emit({"event": "closed", "connections": STATE.connections, "errors": STATE.errors})
    return 0


if __name__ == "__main__":
    sys.exit(main())
