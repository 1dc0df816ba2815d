"""What real programs observe of stream transports (TCP, Unix, TLS), where
tideloop's internals (write gathering, DESIGN.md §4) could show through:

- the write buffer right after ``write()``: asyncio has already handed the
  bytes to the kernel, so ``get_write_buffer_size()`` is 0; a zero-copy
  ``BufferedProtocol`` relies on it to reuse its buffer;
- a peer that is gone when the transport flushes inside ``close()``,
  ``write_eof()``, ``abort()``, ``set_write_buffer_limits()``,
  ``get_write_buffer_size()`` or at the end of the loop iteration:
  ``connection_lost`` exactly once, with asyncio's exception, and nothing
  for the exception handler;
- a socket passed with ``sock=`` whose class overrides ``send``/``sendmsg``/
  ``recv_into``: asyncio calls them, so tideloop does too.

Every test runs on stock asyncio (the oracle) and on tideloop with each
backend, with the same assertions. No sleeps: tests wait on futures.
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
from collections.abc import Callable
from typing import Any

import pytest

from .support import certs
from .support.streams import Loop, read_exactly, run, set_linger_reset, spin

pytestmark = pytest.mark.timeout(30)

KINDS = ["tcp", "unix", "tls"]
# Large enough that the kernel takes 100 KiB at once on every loop, so that
# asyncio's buffer is empty after each write.
BIG_SOCKBUF = 1024 * 1024


class Conn:
    """A transport under test and the plain socket at the other end (with the
    hand-driven TLS end for ``tls``)."""

    def __init__(self, loop: Loop, kind: str, tr: Any, pr: Any, peer: socket.socket) -> None:
        self.loop = loop
        self.kind = kind
        self.tr = tr
        self.pr = pr
        self.peer = peer
        self.tls: Any = None

    async def send(self, data: bytes) -> None:
        if self.tls is not None:
            await self.tls.send(data)
        else:
            await self.loop.sock_sendall(self.peer, data)

    async def recv(self, n: int) -> bytes:
        if self.tls is not None:
            return bytes(await self.tls.recv(n))
        return await read_exactly(self.loop, self.peer, n)

    def reset_peer(self) -> None:
        """The peer goes away at once: a TCP reset, or a closed Unix socket."""
        if self.peer.fileno() == -1:
            return
        if self.kind != "unix":
            set_linger_reset(self.peer)
        self.peer.close()


async def _tcp_pair(loop: Loop) -> tuple[socket.socket, socket.socket]:
    with socket.socket() as lsn:
        lsn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BIG_SOCKBUF)
        lsn.bind(("127.0.0.1", 0))
        lsn.listen(1)
        lsn.setblocking(False)
        sock = socket.socket()
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BIG_SOCKBUF)
            sock.setblocking(False)
            await loop.sock_connect(sock, lsn.getsockname())
            peer, _ = await loop.sock_accept(lsn)
        except BaseException:
            sock.close()
            raise
    peer.setblocking(False)
    return sock, peer


async def connect(
    loop: Loop, kind: str, factory: Callable[[], asyncio.BaseProtocol], *, cls: Any = None
) -> Conn:
    """Connect a transport of ``kind`` (its socket of class ``cls`` if given)
    with a protocol from ``factory``; wait until connection_made ran."""
    if kind == "unix":
        sock, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BIG_SOCKBUF)
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BIG_SOCKBUF)
        peer.setblocking(False)
    else:
        sock, peer = await _tcp_pair(loop)
    if cls is not None:
        sock = cls(sock.family, sock.type, sock.proto, fileno=sock.detach())
    if kind == "tls":
        from .test_tls import TLSPeer

        tls = TLSPeer(loop, peer, server_side=True)
        handshake = asyncio.ensure_future(tls.handshake())
        tr, pr = await loop.create_connection(
            factory, sock=sock, ssl=certs.client_context(), server_hostname=certs.HOSTNAME
        )
        await handshake
    elif kind == "unix":
        tr, pr = await loop.create_unix_connection(factory, sock=sock)
    else:
        tr, pr = await loop.create_connection(factory, sock=sock)
    conn = Conn(loop, kind, tr, pr, peer)
    if kind == "tls":
        conn.tls = tls
    await spin(2)
    return conn


async def finish(conn: Conn) -> None:
    conn.tr.close()
    conn.peer.close()  # the TLS end then needs no close_notify answer
    await conn.pr.lost_fut


class Probe(asyncio.Protocol):
    """Runs ``action(transport)`` in data_received and records connection_lost."""

    def __init__(self, loop: Loop, action: Callable[[Any], Any]) -> None:
        self.action = action
        self.transport: Any = None
        self.result: asyncio.Future[Any] = loop.create_future()
        self.lost_calls: list[BaseException | None] = []
        self.lost_fut: asyncio.Future[BaseException | None] = loop.create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if not self.result.done():
            self.result.set_result(self.action(self.transport))

    def eof_received(self) -> None:
        return None

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost_calls.append(exc)
        if not self.lost_fut.done():
            self.lost_fut.set_result(exc)


class BufferedProbe(Probe, asyncio.BufferedProtocol):
    """The same, from buffer_updated."""

    def __init__(self, loop: Loop, action: Callable[[Any], Any]) -> None:
        super().__init__(loop, action)
        self.buf = bytearray(64 * 1024)

    def get_buffer(self, sizehint: int) -> bytearray:
        return self.buf

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(self.buf[:nbytes]))


# -- A. the write buffer right after write() ----------------------------------------------


def one_write(tr: Any) -> list[int]:
    tr.write(b"a" * 1000)
    return [tr.get_write_buffer_size()]


def hundred_writes(tr: Any) -> list[int]:
    for i in range(100):
        tr.write(bytes([65 + i % 26]) * 1024)
    return [tr.get_write_buffer_size()]


def writes_between_looks(tr: Any) -> list[int]:
    sizes = []
    for i in range(5):
        tr.write(bytes([97 + i]) * 1000)
        sizes.append(tr.get_write_buffer_size())
    return sizes


CASES = {
    "one_write": (one_write, b"a" * 1000, [0]),
    "hundred_writes": (
        hundred_writes,
        b"".join(bytes([65 + i % 26]) * 1024 for i in range(100)),
        [0],
    ),
    "writes_between_looks": (
        writes_between_looks,
        b"".join(bytes([97 + i]) * 1000 for i in range(5)),
        [0] * 5,
    ),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("where", ["data_received", "buffer_updated", "task"])
@pytest.mark.parametrize("case", list(CASES))
def test_write_buffer_size_right_after_write(loop: Loop, kind: str, where: str, case: str) -> None:
    """asyncio sends in write(); the size asked for right after is 0, and the
    peer gets every byte in order."""
    action, expected_bytes, expected_sizes = CASES[case]

    async def main() -> None:
        factory = BufferedProbe if where == "buffer_updated" else Probe
        conn = await connect(loop, kind, lambda: factory(loop, action))
        if where == "task":
            sizes = action(conn.tr)
        else:
            await conn.send(b"go")
            sizes = await conn.pr.result
        assert sizes == expected_sizes
        assert await conn.recv(len(expected_bytes)) == expected_bytes
        await finish(conn)

    run(loop, main())


class ZeroCopyEcho(asyncio.BufferedProtocol):
    """Echoes straight from its receive buffer (write() of a memoryview into
    it), and keeps that buffer only if the transport holds nothing after the
    write (asyncio 3.12+ keeps a reference to what the kernel refused)."""

    def __init__(self) -> None:
        self.buf = bytearray(4096)
        self.fresh_buffers = 0
        self.transport: Any = None
        self.lost_fut: asyncio.Future[BaseException | None] = (
            asyncio.get_running_loop().create_future()
        )

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def get_buffer(self, sizehint: int) -> bytearray:
        return self.buf

    def buffer_updated(self, nbytes: int) -> None:
        self.transport.write(memoryview(self.buf)[:nbytes])
        if self.transport.get_write_buffer_size():
            # The transport may still hold a view of self.buf.
            self.buf = bytearray(4096)
            self.fresh_buffers += 1

    def eof_received(self) -> None:
        return None

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost_fut.set_result(exc)


@pytest.mark.parametrize("kind", KINDS)
def test_zero_copy_buffered_echo(loop: Loop, kind: str) -> None:
    """Request/response: each echo is taken by the kernel at once, so the
    protocol always reuses its buffer, and every echo is right."""

    async def main() -> None:
        conn = await connect(loop, kind, ZeroCopyEcho)
        for i in range(50):
            message = bytes([i]) * (100 + 37 * i)
            await conn.send(message)
            assert await conn.recv(len(message)) == message
        assert conn.pr.fresh_buffers == 0
        await finish(conn)

    run(loop, main())


# -- B. a flush that fails inside a teardown step ------------------------------------------


def _write_then(step: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def action(tr: Any) -> Any:
        tr.write(b"x" * 1000)
        return step(tr)

    return action


STEPS: dict[str, Callable[[Any], Any]] = {
    "close": lambda tr: tr.close(),
    "write_eof": lambda tr: tr.write_eof(),
    "abort": lambda tr: tr.abort(),
    "set_write_buffer_limits": lambda tr: tr.set_write_buffer_limits(high=0),
    "get_write_buffer_size": lambda tr: tr.get_write_buffer_size(),
    "get_write_buffer_size_then_close": lambda tr: (tr.get_write_buffer_size(), tr.close()),
    "close_then_abort": lambda tr: (tr.close(), tr.abort()),
    "nothing": lambda tr: None,  # the end-of-iteration flush
}


@pytest.mark.parametrize(
    ("kind", "step"),
    # TLS transports have no write_eof (NotImplementedError on both loops).
    [(k, s) for k in KINDS for s in STEPS if not (k == "tls" and s == "write_eof")],
)
@pytest.mark.parametrize("where", ["data_received", "task"])
def test_peer_gone_before_a_flush(loop: Loop, kind: str, where: str, step: str) -> None:
    """The peer is gone when a small write is followed by a teardown step:
    connection_lost once, with asyncio's exception, no handler call."""

    async def main() -> None:
        action = _write_then(STEPS[step])
        conn = await connect(loop, kind, lambda: Probe(loop, action))
        if where == "task":
            conn.reset_peer()
            action(conn.tr)
        else:
            conn.pr.action = lambda tr: (conn.reset_peer(), action(tr))
            await conn.send(b"go")
        exc = await conn.pr.lost_fut
        await spin()
        assert type(exc) is (BrokenPipeError if kind == "unix" else ConnectionResetError)
        assert conn.pr.lost_calls == [exc]
        assert conn.tr.is_closing()

    run(loop, main())


@pytest.mark.parametrize("kind", KINDS)
def test_peer_gone_before_sendfile(loop: Loop, kind: str) -> None:
    """A small write to a peer that is gone, then loop.sendfile(): asyncio's
    write() has already failed, so sendfile finds the transport closing
    (TLS: its fallback writes nothing), and connection_lost comes once."""

    async def main() -> None:
        conn = await connect(loop, kind, lambda: Probe(loop, lambda tr: None))
        conn.reset_peer()
        with tempfile.TemporaryFile() as f:
            f.write(b"y" * 10000)
            f.flush()
            conn.tr.write(b"x" * 1000)
            try:
                result: Any = await loop.sendfile(conn.tr, f)
            except Exception as e:
                result = e
        exc = await conn.pr.lost_fut
        await spin()
        if kind == "tls":
            assert result == 0
        else:
            assert type(result) is RuntimeError
            assert str(result) == "Transport is closing"
        assert type(exc) is (BrokenPipeError if kind == "unix" else ConnectionResetError)
        assert conn.pr.lost_calls == [exc]

    run(loop, main())


# -- C. a socket passed with sock= is used through its own methods ------------------------


class CountingSocket(socket.socket):
    """Counts the bytes that pass through its own I/O methods."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: dict[str, int] = {}
        self.sent = 0
        self.received = 0

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def send(self, data: Any, *args: Any) -> int:
        self._count("send")
        n = super().send(data, *args)
        self.sent += n
        return n

    def sendmsg(self, buffers: Any, *args: Any) -> int:
        self._count("sendmsg")
        n = super().sendmsg(buffers, *args)
        self.sent += n
        return n

    def recv(self, bufsize: int, *args: Any) -> bytes:
        self._count("recv")
        data = super().recv(bufsize, *args)
        self.received += len(data)
        return data

    def recv_into(self, buf: Any, *args: Any) -> int:
        self._count("recv_into")
        n = super().recv_into(buf, *args)
        self.received += n
        return n


class Sink(asyncio.Protocol):
    def __init__(self, loop: Loop) -> None:
        self.data = bytearray()
        self.transport: Any = None
        self.lost_fut: asyncio.Future[BaseException | None] = loop.create_future()
        self.want: tuple[int, asyncio.Future[None]] | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.data += data
        if self.want is not None and len(self.data) >= self.want[0]:
            self.want[1].set_result(None)
            self.want = None

    async def wait_bytes(self, n: int) -> bytes:
        if len(self.data) < n:
            fut = asyncio.get_running_loop().create_future()
            self.want = (n, fut)
            await fut
        return bytes(self.data)

    def eof_received(self) -> None:
        return None

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost_fut.set_result(exc)


class BufferedSink(Sink, asyncio.BufferedProtocol):
    def __init__(self, loop: Loop) -> None:
        super().__init__(loop)
        self.buf = bytearray(65536)

    def get_buffer(self, sizehint: int) -> memoryview:
        # A memoryview: asyncio's TLS layer slices a bytearray (a copy).
        return memoryview(self.buf)

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(self.buf[:nbytes]))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("buffered", [False, True], ids=["Protocol", "BufferedProtocol"])
def test_socket_subclass_methods_are_used(loop: Loop, kind: str, buffered: bool) -> None:
    """Every byte read or written passes through the socket's own methods;
    one small write from a task is one send(), as asyncio's write() makes."""

    async def main() -> None:
        factory = BufferedSink if buffered else Sink
        conn = await connect(loop, kind, lambda: factory(loop), cls=CountingSocket)
        sock = conn.tr.get_extra_info("socket")
        counting = conn.tr._sock if kind != "tls" else conn.tr._ssl_protocol._transport._sock
        assert type(counting) is CountingSocket and sock.fileno() == counting.fileno()
        before = dict(counting.calls), counting.sent
        if kind != "tls":
            conn.tr.write(b"hello")
            assert counting.calls.get("send", 0) == before[0].get("send", 0) + 1
            assert counting.sent == before[1] + 5
            assert await conn.recv(5) == b"hello"
        # Both ways, more than the kernel takes at once from a non-reading peer.
        big = bytes(range(256)) * 8192  # 2 MiB
        conn.tr.write(big)
        assert await conn.recv(len(big)) == big
        await conn.send(big)
        got = await conn.pr.wait_bytes(len(big))
        assert got == big
        # (TLS: the socket also carries the handshake and record overhead.)
        if kind == "tls":
            assert counting.sent > len(big) and counting.received > len(big)
        else:
            assert counting.sent == 5 + len(big) and counting.received == len(big)
        read_method = "recv_into" if buffered or kind == "tls" else "recv"
        assert counting.calls.get(read_method, 0) > 0
        await finish(conn)

    run(loop, main())


@pytest.mark.parametrize("buffered", [False, True], ids=["Protocol", "BufferedProtocol"])
def test_socket_subclass_connect_accepted_socket(loop: Loop, buffered: bool) -> None:
    async def main() -> None:
        a, peer = socket.socketpair()
        sock = CountingSocket(a.family, a.type, a.proto, fileno=a.detach())
        peer.setblocking(False)
        factory = BufferedSink if buffered else Sink
        tr, pr = await loop.connect_accepted_socket(lambda: factory(loop), sock)
        tr.write(b"ping")
        assert sock.calls == {"send": 1} and sock.sent == 4
        assert await read_exactly(loop, peer, 4) == b"ping"
        await loop.sock_sendall(peer, b"pong")
        assert await pr.wait_bytes(4) == b"pong"
        assert sock.received == 4
        tr.close()
        peer.close()
        await pr.lost_fut

    run(loop, main())


# -- the transport object itself ------------------------------------------------------------
# The compiled build's transports are native classes with an instance dict
# (both builds must behave alike here).


def test_transport_weakref_dies_with_transport(loop: Loop) -> None:
    """A weak reference to a closed, dropped transport is dead (and calling
    it is safe), and one to a live transport gives it back."""
    import gc
    import weakref

    async def main() -> tuple[Any, bool]:
        a, b = socket.socketpair()
        transport, _ = await loop.create_connection(asyncio.Protocol, sock=a)
        ref = weakref.ref(transport)
        alive = ref() is transport
        transport.close()
        await spin()
        b.close()
        del transport
        return ref, alive

    ref, alive = run(loop, main())
    gc.collect()
    assert alive
    assert ref() is None


def test_transport_instance_patching(loop: Loop) -> None:
    """``transport.write`` can be replaced on the instance, and other code
    calling it sees the replacement; an instance attribute can be set."""

    async def main() -> list[bytes]:
        a, b = socket.socketpair()
        transport, _ = await loop.create_connection(asyncio.Protocol, sock=a)
        seen: list[bytes] = []
        transport.write = seen.append  # type: ignore[method-assign]
        protocol: Any = asyncio.Protocol()
        writer = asyncio.StreamWriter(transport, protocol, None, loop)
        writer.write(b"through the writer")
        transport.custom = 1  # type: ignore[attr-defined]
        assert transport.custom == 1  # type: ignore[attr-defined]
        del transport.write
        transport.write(b"x")
        transport.close()
        await spin()
        assert b.recv(10) == b"x"
        b.close()
        return seen

    assert run(loop, main()) == [b"through the writer"]


def test_transport_isinstance_and_dir(loop: Loop) -> None:
    async def main() -> None:
        a, b = socket.socketpair()
        transport, _ = await loop.create_connection(asyncio.Protocol, sock=a)
        kinds = (asyncio.Transport, asyncio.ReadTransport, asyncio.WriteTransport)
        for cls in (*kinds, asyncio.BaseTransport):
            assert isinstance(transport, cls)
        # asyncio's sendfile fallback requires it of a socket transport.
        assert isinstance(transport, asyncio.transports._FlowControlMixin)  # type: ignore[attr-defined]
        assert {"write", "close", "get_extra_info", "pause_reading"} <= set(dir(transport))
        transport.close()
        await spin()
        b.close()

    run(loop, main())
