"""Helpers for stream transport and server tests (tests/test_stream_transport.py,
tests/test_server.py): recording protocols, an echo server, raw loopback peers.

Everything here uses only public asyncio API, so the same helpers drive stock
asyncio (the oracle) and tideloop.
"""

from __future__ import annotations

import array
import asyncio
import socket
import tempfile
from typing import Any

Loop = asyncio.AbstractEventLoop

HAS_IPV6 = socket.has_ipv6
if HAS_IPV6:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as _probe:
            _probe.bind(("::1", 0))
    except OSError:
        HAS_IPV6 = False

# Small kernel buffers for flow-control tests: the loopback default (up to
# 32 MiB of receive buffer here) would swallow a lot before EAGAIN.
SMALL_SOCKBUF = 64 * 1024


def payload(size: int, salt: int = 0) -> bytes:
    """Non-repeating content, so a misplaced or lost chunk is detected."""
    return array.array("I", range(salt, salt + size // 4 + 1)).tobytes()[:size]


def short_tmpdir() -> str:
    # AF_UNIX paths are limited to ~104 bytes: keep them short.
    return tempfile.mkdtemp(prefix="tl-", dir="/tmp")


async def spin(n: int = 10) -> None:
    """Let the loop turn n times (each turn polls for I/O without blocking)."""
    for _ in range(n):
        await asyncio.sleep(0)


def run(loop: Loop, coro: Any, timeout: float = 15.0) -> Any:
    """Run a test body with a bound, so a hang fails fast with a traceback."""
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


class Recorder(asyncio.Protocol):
    """Records every callback; futures for the interesting moments.

    ``events`` lists callback names in order; ``violations`` collects
    contract breaches (callbacks before connection_made, after
    connection_lost, data after EOF) instead of raising, so the transport
    under test is not disturbed.
    """

    def __init__(self, loop: Loop, *, eof_result: Any = None, name: str = "") -> None:
        self.loop = loop
        self.name = name
        self.eof_result = eof_result
        self.events: list[str] = []
        self.violations: list[str] = []
        self.data = bytearray()
        self.chunks: list[bytes] = []
        self.transport: Any = None
        self.made: asyncio.Future[Any] = loop.create_future()
        self.eof: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[BaseException | None] = loop.create_future()
        self.writable: asyncio.Future[None] = loop.create_future()
        self.writable.set_result(None)
        self.pause_calls = 0
        self.resume_calls = 0
        self._want: tuple[int, asyncio.Future[None]] | None = None

    def _note(self, event: str) -> None:
        if event != "made" and "made" not in self.events:
            self.violations.append(f"{event} before connection_made")
        if "lost" in self.events:
            self.violations.append(f"{event} after connection_lost")
        self.events.append(event)

    def connection_made(self, transport: Any) -> None:
        if self.events:
            self.violations.append("connection_made not first")
        self._note("made")
        self.transport = transport
        if not self.made.done():
            self.made.set_result(transport)

    def data_received(self, data: bytes) -> None:
        if "eof" in self.events:
            self.violations.append("data after eof")
        if type(data) is not bytes:
            self.violations.append(f"data_received got {type(data).__name__}")
        self._note("data")
        self.data += data
        self.chunks.append(data)
        self._check_want()

    def eof_received(self) -> Any:
        self._note("eof")
        if not self.eof.done():
            self.eof.set_result(None)
        self._check_want()
        return self.eof_result

    def connection_lost(self, exc: BaseException | None) -> None:
        self._note("lost")
        if not self.lost.done():
            self.lost.set_result(exc)
        self._check_want()

    def pause_writing(self) -> None:
        self._note("pause_writing")
        self.pause_calls += 1
        if self.writable.done():
            self.writable = self.loop.create_future()

    def resume_writing(self) -> None:
        self._note("resume_writing")
        self.resume_calls += 1
        if not self.writable.done():
            self.writable.set_result(None)

    def _check_want(self) -> None:
        if self._want is None:
            return
        n, fut = self._want
        if fut.done():
            self._want = None
        elif len(self.data) >= n:
            self._want = None
            fut.set_result(None)
        elif "eof" in self.events or "lost" in self.events:
            self._want = None
            fut.set_exception(AssertionError(f"EOF after {len(self.data)} of {n} bytes"))

    async def wait_bytes(self, n: int) -> bytes:
        """Wait until at least n bytes arrived in total; return them all."""
        if len(self.data) < n:
            fut = self.loop.create_future()
            self._want = (n, fut)
            self._check_want()
            await fut
        return bytes(self.data)

    def check(self) -> None:
        """The protocol contract held: made first, lost last and once."""
        assert not self.violations, self.violations
        assert self.events[0] == "made", self.events
        assert self.events.count("made") == 1, self.events
        assert self.events.count("lost") <= 1, self.events
        if "lost" in self.events:
            assert self.events[-1] == "lost", self.events


class Echo(asyncio.Protocol):
    """Echoes what it reads; closes (after flushing) on EOF."""

    def __init__(self, registry: list[Any] | None = None) -> None:
        self.transport: Any = None
        if registry is not None:
            registry.append(self)

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)

    def eof_received(self) -> None:
        return None


async def echo_server(loop: Loop, host: str = "127.0.0.1", **kw: Any) -> tuple[Any, Any]:
    server = await loop.create_server(Echo, host, 0, **kw)
    return server, server.sockets[0].getsockname()


async def close_server(server: Any) -> None:
    server.close()
    await server.wait_closed()


async def roundtrip(loop: Loop, addr: Any, message: bytes = b"ping") -> bytes:
    """Connect, send, read the echo back, disconnect cleanly."""
    tr, pr = await loop.create_connection(lambda: Recorder(loop), *addr[:2])
    try:
        tr.write(message)
        return (await pr.wait_bytes(len(message)))[: len(message)]
    finally:
        tr.close()
        await pr.lost


def small_buffer_socket(family: int = socket.AF_INET) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_SOCKBUF)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_SOCKBUF)
    return sock


async def raw_peer(
    loop: Loop,
    factory: Any = None,
    *,
    small_buffers: bool = False,
) -> tuple[Any, Any, socket.socket]:
    """A transport connected to a plain non-blocking socket: (transport, protocol, peer).

    With ``small_buffers`` both ends get small kernel buffers, so that a
    peer which does not read makes the transport buffer quickly.
    """
    if factory is None:

        def factory() -> Recorder:
            return Recorder(loop)

    lsn = small_buffer_socket() if small_buffers else socket.socket()
    with lsn:
        lsn.bind(("127.0.0.1", 0))
        lsn.listen(1)
        lsn.setblocking(False)
        if small_buffers:
            sock = small_buffer_socket()
            try:
                sock.setblocking(False)
                await loop.sock_connect(sock, lsn.getsockname())
            except BaseException:
                sock.close()
                raise
            tr, pr = await loop.create_connection(factory, sock=sock)
        else:
            tr, pr = await loop.create_connection(factory, *lsn.getsockname())
        peer, _ = await loop.sock_accept(lsn)
    peer.setblocking(False)
    return tr, pr, peer


async def read_exactly(loop: Loop, sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        data = await loop.sock_recv(sock, min(n - len(buf), 256 * 1024))
        assert data, f"unexpected EOF after {len(buf)} of {n} bytes"
        buf += data
    return bytes(buf)


async def read_until_eof(loop: Loop, sock: socket.socket) -> bytes:
    buf = bytearray()
    while True:
        data = await loop.sock_recv(sock, 256 * 1024)
        if not data:
            return bytes(buf)
        buf += data


def set_linger_reset(sock: socket.socket) -> None:
    """close() will then send RST instead of FIN."""
    import struct

    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
