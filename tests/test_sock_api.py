"""Behaviour of the ``loop.sock_*`` coroutines (src/tideloop/_sock_api.py).

Every test runs on stock asyncio (the oracle) and on tideloop with each
backend, and asserts only what a user can observe: results, exceptions and
their messages, what the peer receives, file positions, and whether a reader
or writer is left registered (``loop.remove_reader()`` returns False once the
operation let go of the fd). Loopback and AF_UNIX only; no sleeps: tasks
synchronise on futures and ``asyncio.sleep(0)`` steps.
"""

from __future__ import annotations

import array
import asyncio
import errno
import io
import os
import socket
import ssl
import struct
import sys
import tempfile
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(30)

Loop = asyncio.AbstractEventLoop
Pair = tuple[socket.socket, socket.socket]

HAS_IPV6 = socket.has_ipv6
if HAS_IPV6:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as _probe:
            _probe.bind(("::1", 0))
    except OSError:
        HAS_IPV6 = False


# -- helpers --------------------------------------------------------------------


def nonblocking(*socks: socket.socket) -> None:
    for s in socks:
        s.setblocking(False)


def drive(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that must finish without suspending (closed-loop tests)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise AssertionError("the coroutine suspended")


async def read_exactly(loop: Loop, sock: socket.socket, n: int) -> bytes:
    chunks: list[bytes] = []
    while n:
        data = await loop.sock_recv(sock, min(n, 65536))
        assert data, "unexpected EOF"
        chunks.append(data)
        n -= len(data)
    return b"".join(chunks)


async def read_until_eof(loop: Loop, sock: socket.socket, chunk: int = 65536) -> bytes:
    chunks: list[bytes] = []
    while True:
        data = await loop.sock_recv(sock, chunk)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


async def slow_read(loop: Loop, sock: socket.socket, n: int) -> bytes:
    """Read n bytes in small pieces, letting the loop turn between them."""
    buf = bytearray()
    while len(buf) < n:
        data = await loop.sock_recv(sock, 16 * 1024)
        assert data, "unexpected EOF"
        buf += data
        await asyncio.sleep(0)
    return bytes(buf)


def count_futures(loop: Loop) -> list[asyncio.Future[Any]]:
    """Record the futures the loop creates from now on (instance patch)."""
    created: list[asyncio.Future[Any]] = []
    original = loop.create_future

    def create_future() -> asyncio.Future[Any]:
        fut = original()
        created.append(fut)
        return fut

    loop.create_future = create_future  # type: ignore[method-assign]
    return created


def listening_tcp() -> socket.socket:
    lsn = socket.create_server(("127.0.0.1", 0))
    lsn.setblocking(False)
    return lsn


def short_tmpdir() -> str:
    # AF_UNIX paths are limited to ~104 bytes: keep them short.
    return tempfile.mkdtemp(prefix="tl-", dir="/tmp")


def payload(size: int) -> bytes:
    # Non-repeating content so that a misplaced chunk is detected.
    return array.array("I", range(size // 4 + 1)).tobytes()[:size]


# -- fixtures -------------------------------------------------------------------


@pytest.fixture
def pair(loop: Loop) -> Iterator[Pair]:
    """A non-blocking AF_UNIX stream socket pair (closed before the fd check)."""
    a, b = socket.socketpair()
    nonblocking(a, b)
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def tcp_pair(loop: Loop) -> Iterator[Pair]:
    """A connected non-blocking TCP pair on 127.0.0.1: (client, server side)."""
    with socket.create_server(("127.0.0.1", 0)) as lsn:
        client = socket.create_connection(lsn.getsockname())
        server, _ = lsn.accept()
    nonblocking(client, server)
    yield client, server
    client.close()
    server.close()


@pytest.fixture
def udp_pair(loop: Loop) -> Iterator[Pair]:
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("127.0.0.1", 0))
    b.bind(("127.0.0.1", 0))
    nonblocking(a, b)
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def data_file(loop: Loop, tmp_path: Any) -> Iterator[tuple[io.BufferedReader, bytes]]:
    content = payload(100_000)
    path = tmp_path / "data.bin"
    path.write_bytes(content)
    with open(path, "rb") as f:
        yield f, content


# -- the fast path ----------------------------------------------------------------


def test_sock_recv_ready_data_is_one_call_and_no_future(loop: Loop, pair: Pair) -> None:
    a, b = pair

    class CountingSocket(socket.socket):
        recv_calls = 0

        def recv(self, bufsize: int, flags: int = 0) -> bytes:
            self.recv_calls += 1
            return super().recv(bufsize, flags)

    counted = CountingSocket(fileno=os.dup(a.fileno()))
    counted.setblocking(False)
    b.sendall(b"hello")

    async def main() -> bytes:
        created = count_futures(loop)
        data = await loop.sock_recv(counted, 100)
        assert created == []
        return data

    try:
        assert loop.run_until_complete(main()) == b"hello"
        assert counted.recv_calls == 1
    finally:
        counted.close()


def test_ready_operations_create_no_future(loop: Loop, pair: Pair, udp_pair: Pair) -> None:
    a, b = pair
    u1, u2 = udp_pair

    async def main() -> None:
        created = count_futures(loop)
        b.sendall(b"abcdef")
        assert await loop.sock_recv(a, 3) == b"abc"
        buf = bytearray(10)
        assert await loop.sock_recv_into(a, buf) == 3
        assert buf[:3] == b"def"
        await loop.sock_sendall(a, b"small")
        assert b.recv(100) == b"small"
        assert await loop.sock_sendto(u1, b"dgram", u2.getsockname()) == 5
        assert await loop.sock_recvfrom(u2, 100) == (b"dgram", u1.getsockname())
        u1.sendto(b"again", u2.getsockname())
        assert await loop.sock_recvfrom_into(u2, buf) == (5, u1.getsockname())
        assert buf[:5] == b"again"
        assert created == []

    loop.run_until_complete(main())


# -- receiving ----------------------------------------------------------------------


def test_sock_recv_waits_for_data(loop: Loop, pair: Pair) -> None:
    a, b = pair

    async def main() -> bytes:
        task = loop.create_task(loop.sock_recv(a, 100))
        await asyncio.sleep(0)
        assert not task.done()
        b.sendall(b"later")
        data = await task
        assert loop.remove_reader(a.fileno()) is False
        return data

    assert loop.run_until_complete(main()) == b"later"


def test_sock_recv_into_waits_for_data(loop: Loop, pair: Pair) -> None:
    a, b = pair
    buf = bytearray(8)

    async def main() -> int:
        task = loop.create_task(loop.sock_recv_into(a, memoryview(buf)[2:]))
        await asyncio.sleep(0)
        assert not task.done()
        b.sendall(b"0123456789")
        return await task

    assert loop.run_until_complete(main()) == 6
    assert buf == b"\x00\x00012345"
    assert a.recv(10) == b"6789"


def test_sock_recv_peer_closed(loop: Loop, pair: Pair) -> None:
    a, b = pair

    async def main() -> None:
        task = loop.create_task(loop.sock_recv(a, 100))
        await asyncio.sleep(0)
        b.close()
        assert await task == b""
        assert await loop.sock_recv(a, 100) == b""  # the fast path sees EOF too
        assert await loop.sock_recv_into(a, bytearray(4)) == 0

    loop.run_until_complete(main())


def test_sock_recv_connection_reset(loop: Loop, tcp_pair: Pair) -> None:
    client, server = tcp_pair
    reset_msg = f"[Errno {errno.ECONNRESET}] {os.strerror(errno.ECONNRESET)}"

    async def main() -> None:
        task = loop.create_task(loop.sock_recv(client, 100))
        await asyncio.sleep(0)
        assert not task.done()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        server.close()  # abortive close: the peer gets a RST
        with pytest.raises(ConnectionResetError) as info:
            await task
        assert str(info.value) == reset_msg
        assert loop.remove_reader(client.fileno()) is False

    loop.run_until_complete(main())


def test_sock_recv_connection_reset_fast_path(loop: Loop, tcp_pair: Pair) -> None:
    client, server = tcp_pair
    server.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    server.close()
    with pytest.raises(ConnectionResetError) as info:
        loop.run_until_complete(loop.sock_recv(client, 100))
    assert info.value.errno == errno.ECONNRESET


def test_sock_recv_cancel_loses_no_data(loop: Loop, pair: Pair) -> None:
    a, b = pair

    async def main() -> bytes:
        task = loop.create_task(loop.sock_recv(a, 100))
        await asyncio.sleep(0)
        assert not task.done()
        b.sendall(b"kept")  # readable now, but the waiter goes away first
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert loop.remove_reader(a.fileno()) is False
        return await loop.sock_recv(a, 100)

    assert loop.run_until_complete(main()) == b"kept"


def test_sock_recv_cancel_with_callback_already_queued(loop: Loop, pair: Pair) -> None:
    # Make the reader's callback queued behind a cancel() in one iteration:
    # iteration 1 sends data and schedules the cancel; iteration 2 polls, so
    # the I/O callback runs right after the cancel. It must not consume data.
    a, b = pair

    async def main() -> bytes:
        task = loop.create_task(loop.sock_recv(a, 100))
        await asyncio.sleep(0)

        def trigger() -> None:
            b.sendall(b"kept")
            loop.call_soon(task.cancel)

        loop.call_soon(trigger)
        with pytest.raises(asyncio.CancelledError):
            await task
        assert loop.remove_reader(a.fileno()) is False
        return await loop.sock_recv(a, 100)

    assert loop.run_until_complete(main()) == b"kept"


def test_sock_accept_cancel_with_callback_already_queued(loop: Loop, is_tideloop: bool) -> None:
    # As above for sock_accept. A deliberate divergence (see _sock_api):
    # asyncio's accept callback does not check for a cancelled future, so it
    # accepts the connection, drops it and reports InvalidStateError.
    if not is_tideloop:
        pytest.skip("asyncio loses the connection here (no fut.done() check in _sock_accept)")
    with listening_tcp() as lsn, socket.socket() as client:

        async def main() -> None:
            task = loop.create_task(loop.sock_accept(lsn))
            await asyncio.sleep(0)

            def trigger() -> None:
                client.connect(lsn.getsockname())  # completes from the backlog
                loop.call_soon(task.cancel)

            loop.call_soon(trigger)
            with pytest.raises(asyncio.CancelledError):
                await task
            assert loop.remove_reader(lsn.fileno()) is False
            conn, addr = await loop.sock_accept(lsn)
            conn.close()
            assert addr == client.getsockname()

        loop.run_until_complete(main())


@pytest.mark.parametrize("method", ["sock_recv_into", "sock_recvfrom", "sock_recvfrom_into"])
def test_receive_cancel_unregisters(loop: Loop, pair: Pair, method: str) -> None:
    a, b = pair

    async def main() -> bytes:
        if method == "sock_recvfrom":
            coro = loop.sock_recvfrom(a, 100)
        else:
            coro = getattr(loop, method)(a, bytearray(100))
        task = loop.create_task(coro)
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert loop.remove_reader(a.fileno()) is False
        b.sendall(b"after")
        return await loop.sock_recv(a, 100)

    assert loop.run_until_complete(main()) == b"after"


def test_sock_recv_socket_closed_while_waiting(loop: Loop, pair: Pair) -> None:
    # A socket closed under a pending sock_recv: cancelling the waiter must
    # neither raise nor disturb the loop, and the fd number (likely reused
    # at once) must work for the next socket.
    a, _ = pair

    async def main() -> None:
        task = loop.create_task(loop.sock_recv(a, 100))
        await asyncio.sleep(0)
        a.close()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        c, d = socket.socketpair()
        try:
            nonblocking(c, d)
            task = loop.create_task(loop.sock_recv(c, 100))
            await asyncio.sleep(0)
            d.sendall(b"fresh")
            assert await task == b"fresh"
        finally:
            c.close()
            d.close()

    loop.run_until_complete(main())


def test_sock_recv_on_closed_socket(loop: Loop, pair: Pair) -> None:
    a, _ = pair
    a.close()
    with pytest.raises(OSError) as info:
        loop.run_until_complete(loop.sock_recv(a, 10))
    assert info.value.errno == errno.EBADF


# -- sending ---------------------------------------------------------------------


def test_sock_sendall_large_payload_slow_reader(loop: Loop, pair: Pair) -> None:
    a, b = pair
    data = payload(4 * 1024 * 1024)

    async def main() -> bytes:
        reader = loop.create_task(slow_read(loop, a, len(data)))
        await loop.sock_sendall(b, data)
        assert loop.remove_writer(b.fileno()) is False
        return await reader

    assert loop.run_until_complete(main()) == data


def test_sock_sendall_tcp_bytearray_and_memoryview(loop: Loop, tcp_pair: Pair) -> None:
    client, server = tcp_pair
    data = bytearray(payload(3 * 1024 * 1024))

    async def main() -> bytes:
        reader = loop.create_task(read_exactly(loop, server, 2 * len(data)))
        await loop.sock_sendall(client, data)
        data.extend(b"")  # the buffer is no longer exported
        await loop.sock_sendall(client, memoryview(data))
        return await reader

    assert loop.run_until_complete(main()) == bytes(data) * 2


def test_sock_sendall_empty(loop: Loop, pair: Pair) -> None:
    a, _ = pair
    assert loop.run_until_complete(loop.sock_sendall(a, b"")) is None


def test_sock_sendall_typed_array(
    loop: Loop, loop_kind: str, pair: Pair, request: pytest.FixtureRequest
) -> None:
    # A deliberate divergence (see _sock_api): asyncio compares send()'s byte
    # count with len() of the buffer, which counts items, and spins forever.
    if loop_kind == "asyncio":
        request.applymarker(
            pytest.mark.xfail(
                strict=True, raises=TimeoutError, reason="asyncio spins on non-byte buffers"
            )
        )
    a, b = pair
    arr = array.array("i", [1, 2, 3])
    loop.run_until_complete(asyncio.wait_for(loop.sock_sendall(a, arr), 0.25))
    assert b.recv(100) == arr.tobytes()


def test_sock_sendall_cancel_midway(loop: Loop, pair: Pair) -> None:
    a, b = pair
    data = payload(8 * 1024 * 1024)

    async def main() -> None:
        task = loop.create_task(loop.sock_sendall(b, data))
        await asyncio.sleep(0)
        assert not task.done()
        first = await loop.sock_recv(a, 65536)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert loop.remove_writer(b.fileno()) is False
        # The stream stays consistent: a prefix of data, then what follows.
        await loop.sock_sendall(b, b"END")
        b.shutdown(socket.SHUT_WR)
        received = first + await read_until_eof(loop, a)
        assert received.endswith(b"END")
        sent = received[:-3]
        assert 0 < len(sent) < len(data)
        assert sent == data[: len(sent)]

    loop.run_until_complete(main())


def test_sock_sendall_broken_pipe(loop: Loop, pair: Pair) -> None:
    a, b = pair
    b.close()
    with pytest.raises(BrokenPipeError) as info:
        loop.run_until_complete(loop.sock_sendall(a, b"x"))
    assert str(info.value) == f"[Errno {errno.EPIPE}] {os.strerror(errno.EPIPE)}"


def test_sock_sendall_peer_reset_while_waiting(loop: Loop, tcp_pair: Pair) -> None:
    client, server = tcp_pair

    async def main() -> None:
        task = loop.create_task(loop.sock_sendall(client, payload(16 * 1024 * 1024)))
        await asyncio.sleep(0)
        assert not task.done()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        server.close()
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            await task
        assert loop.remove_writer(client.fileno()) is False

    loop.run_until_complete(main())


# -- datagrams --------------------------------------------------------------------


def test_udp_empty_datagrams(loop: Loop, udp_pair: Pair) -> None:
    u1, u2 = udp_pair

    async def main() -> None:
        assert await loop.sock_sendto(u1, b"", u2.getsockname()) == 0
        assert await loop.sock_recvfrom(u2, 100) == (b"", u1.getsockname())
        assert await loop.sock_sendto(u1, b"", u2.getsockname()) == 0
        buf = bytearray(b"untouched")
        assert await loop.sock_recvfrom_into(u2, buf) == (0, u1.getsockname())
        assert buf == b"untouched"

    loop.run_until_complete(main())


def test_sock_recvfrom_waits(loop: Loop, udp_pair: Pair) -> None:
    u1, u2 = udp_pair

    async def main() -> None:
        task = loop.create_task(loop.sock_recvfrom(u2, 4))
        await asyncio.sleep(0)
        assert not task.done()
        u1.sendto(b"truncated", u2.getsockname())
        assert await task == (b"trun", u1.getsockname())
        assert loop.remove_reader(u2.fileno()) is False

    loop.run_until_complete(main())


def test_sock_recvfrom_into_nbytes(loop: Loop, udp_pair: Pair) -> None:
    u1, u2 = udp_pair
    buf = bytearray(10)

    async def main() -> None:
        task = loop.create_task(loop.sock_recvfrom_into(u2, buf, 4))
        await asyncio.sleep(0)
        assert not task.done()
        u1.sendto(b"abcdefgh", u2.getsockname())
        assert await task == (4, u1.getsockname())
        with pytest.raises(ValueError) as info:
            await loop.sock_recvfrom_into(u2, buf, 11)
        with pytest.raises(ValueError) as direct:
            u2.recvfrom_into(buf, 11)
        assert str(info.value) == str(direct.value)

    loop.run_until_complete(main())
    assert buf == b"abcd" + bytes(6)


def test_sock_sendto_waits_for_room(loop: Loop) -> None:
    # A connected AF_UNIX datagram sender blocks while the receiver's queue
    # is full; sock_sendto must wait for writability, then send.
    path = os.path.join(short_tmpdir(), "d")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        receiver.bind(path)
        sender.connect(path)
        nonblocking(receiver, sender)
        queued = 0
        with pytest.raises(BlockingIOError):
            while True:
                sender.send(b"fill")
                queued += 1

        async def main() -> None:
            task = loop.create_task(loop.sock_sendto(sender, b"last", path))
            await asyncio.sleep(0)
            assert not task.done()
            assert receiver.recv(100) == b"fill"
            assert await task == 4
            assert loop.remove_writer(sender.fileno()) is False
            got = [await loop.sock_recv(receiver, 100) for _ in range(queued)]
            assert got == [b"fill"] * (queued - 1) + [b"last"]

        loop.run_until_complete(main())
    finally:
        sender.close()
        receiver.close()
        os.unlink(path)
        os.rmdir(os.path.dirname(path))


def test_sock_sendto_cancel_unregisters(loop: Loop) -> None:
    path = os.path.join(short_tmpdir(), "d")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        receiver.bind(path)
        sender.connect(path)
        nonblocking(receiver, sender)
        with pytest.raises(BlockingIOError):
            while True:
                sender.send(b"fill")

        async def main() -> None:
            task = loop.create_task(loop.sock_sendto(sender, b"never", path))
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert loop.remove_writer(sender.fileno()) is False
            while True:
                try:
                    assert receiver.recv(100) == b"fill"
                except BlockingIOError:
                    break

        loop.run_until_complete(main())
    finally:
        sender.close()
        receiver.close()
        os.unlink(path)
        os.rmdir(os.path.dirname(path))


# -- accept and connect ----------------------------------------------------------


def test_sock_accept_ready(loop: Loop) -> None:
    with listening_tcp() as lsn, socket.create_connection(lsn.getsockname()) as client:
        conn, addr = loop.run_until_complete(loop.sock_accept(lsn))
        with conn:
            assert conn.gettimeout() == 0
            assert addr == client.getsockname()


def test_sock_accept_and_connect(loop: Loop) -> None:
    with listening_tcp() as lsn, socket.socket() as client:
        client.setblocking(False)

        async def main() -> None:
            accept = loop.create_task(loop.sock_accept(lsn))
            await asyncio.sleep(0)
            assert not accept.done()
            await loop.sock_connect(client, lsn.getsockname())
            conn, addr = await accept
            with conn:
                assert conn.gettimeout() == 0
                assert addr == client.getsockname()
                assert loop.remove_reader(lsn.fileno()) is False
                await loop.sock_sendall(client, b"ping")
                assert await loop.sock_recv(conn, 10) == b"ping"

        loop.run_until_complete(main())


def test_sock_accept_cancel_loses_no_connection(loop: Loop) -> None:
    with listening_tcp() as lsn, socket.socket() as client:
        client.setblocking(False)

        async def main() -> None:
            task = loop.create_task(loop.sock_accept(lsn))
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert loop.remove_reader(lsn.fileno()) is False
            await loop.sock_connect(client, lsn.getsockname())
            conn, addr = await loop.sock_accept(lsn)
            conn.close()
            assert addr == client.getsockname()

        loop.run_until_complete(main())


def test_sock_connect_refused(loop: Loop) -> None:
    # A bound TCP socket that does not listen answers SYNs with RST.
    with socket.socket() as closed_port, socket.socket() as client:
        closed_port.bind(("127.0.0.1", 0))
        address = closed_port.getsockname()
        client.setblocking(False)
        with pytest.raises(ConnectionRefusedError) as info:
            loop.run_until_complete(loop.sock_connect(client, address))
        assert info.value.errno == errno.ECONNREFUSED
        assert str(info.value) in (
            f"[Errno {errno.ECONNREFUSED}] Connect call failed {address}",
            f"[Errno {errno.ECONNREFUSED}] {os.strerror(errno.ECONNREFUSED)}",
        )
        assert loop.remove_writer(client.fileno()) is False


def record_getaddrinfo(loop: Loop) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []
    original = loop.getaddrinfo

    async def getaddrinfo(host: Any, port: Any, **kwargs: Any) -> Any:
        calls.append((host, port, kwargs))
        return await original(host, port, **kwargs)

    loop.getaddrinfo = getaddrinfo  # type: ignore[method-assign]
    return calls


def test_sock_connect_numeric_skips_resolver(loop: Loop) -> None:
    with listening_tcp() as lsn, socket.socket() as client:
        client.setblocking(False)
        calls = record_getaddrinfo(loop)
        host, port = lsn.getsockname()
        # A numeric string port needs no resolver either.
        loop.run_until_complete(loop.sock_connect(client, (host, str(port))))
        assert calls == []
        assert client.getpeername() == (host, port)
        conn, _ = loop.run_until_complete(loop.sock_accept(lsn))
        conn.close()


def test_sock_connect_resolves_localhost(loop: Loop) -> None:
    with listening_tcp() as lsn, socket.socket() as client:
        client.setblocking(False)
        calls = record_getaddrinfo(loop)
        port = lsn.getsockname()[1]
        loop.run_until_complete(loop.sock_connect(client, ("localhost", port)))
        assert calls == [
            (
                "localhost",
                port,
                {"family": socket.AF_INET, "type": socket.SOCK_STREAM, "proto": 0, "flags": 0},
            )
        ]
        assert client.getpeername() == ("127.0.0.1", port)
        conn, _ = loop.run_until_complete(loop.sock_accept(lsn))
        conn.close()


def test_sock_connect_resolver_returns_nothing(loop: Loop) -> None:
    async def getaddrinfo(*args: Any, **kwargs: Any) -> list[Any]:
        return []

    loop.getaddrinfo = getaddrinfo  # type: ignore[method-assign]
    with socket.socket() as client:
        client.setblocking(False)
        with pytest.raises(IndexError) as info:
            loop.run_until_complete(loop.sock_connect(client, ("example.invalid", 80)))
        assert str(info.value) == "list index out of range"


@pytest.mark.parametrize(
    ("address", "exc_type", "message"),
    [
        (("127.0.0.1",), ValueError, "not enough values to unpack (expected 2, got 1)"),
        (
            ("127.0.0.1", 80, 0, 0, 0),
            TypeError,
            "_ipaddr_info() takes from 5 to 7 positional arguments but 8 were given",
        ),
    ],
)
def test_sock_connect_bad_address(
    loop: Loop, address: tuple[Any, ...], exc_type: type[Exception], message: str
) -> None:
    with socket.socket() as client:
        client.setblocking(False)
        with pytest.raises(exc_type) as info:
            loop.run_until_complete(loop.sock_connect(client, address))
        assert str(info.value) == message


@pytest.mark.skipif(not HAS_IPV6, reason="no IPv6 loopback")
def test_sock_connect_ipv6(loop: Loop) -> None:
    with socket.create_server(("::1", 0), family=socket.AF_INET6) as lsn:
        lsn.setblocking(False)
        with socket.socket(socket.AF_INET6) as client:
            client.setblocking(False)
            calls = record_getaddrinfo(loop)
            port = lsn.getsockname()[1]
            loop.run_until_complete(loop.sock_connect(client, ("::1", port)))
            assert calls == []
            assert client.getpeername()[:2] == ("::1", port)
            conn, _ = loop.run_until_complete(loop.sock_accept(lsn))
            conn.close()


def test_sock_connect_cancel_unregisters(loop: Loop) -> None:
    with listening_tcp() as lsn, socket.socket() as client:
        client.setblocking(False)

        async def main() -> None:
            task = loop.create_task(loop.sock_connect(client, lsn.getsockname()))
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert loop.remove_writer(client.fileno()) is False

        loop.run_until_complete(main())


def test_af_unix_stream(loop: Loop) -> None:
    path = os.path.join(short_tmpdir(), "s")
    lsn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        lsn.bind(path)
        lsn.listen()
        nonblocking(lsn, client)
        calls = record_getaddrinfo(loop)

        async def main() -> None:
            accept = loop.create_task(loop.sock_accept(lsn))
            await asyncio.sleep(0)
            await loop.sock_connect(client, path)  # a path goes straight to connect()
            conn, addr = await accept
            with conn:
                assert addr == client.getsockname()
                data = payload(1024 * 1024)
                reader = loop.create_task(read_exactly(loop, conn, len(data)))
                await loop.sock_sendall(client, data)
                assert await reader == data

        loop.run_until_complete(main())
        assert calls == []
    finally:
        client.close()
        lsn.close()
        os.unlink(path)
        os.rmdir(os.path.dirname(path))


def test_af_unix_connect_missing_path(loop: Loop) -> None:
    path = os.path.join(short_tmpdir(), "missing")
    try:
        with socket.socket(socket.AF_UNIX) as client:
            client.setblocking(False)
            with pytest.raises(FileNotFoundError):
                loop.run_until_complete(loop.sock_connect(client, path))
    finally:
        os.rmdir(os.path.dirname(path))


# -- sendfile -----------------------------------------------------------------------


def test_sock_sendfile_native(
    loop: Loop, pair: Pair, data_file: tuple[io.BufferedReader, bytes]
) -> None:
    a, b = pair
    f, content = data_file

    async def main() -> None:
        reader = loop.create_task(read_exactly(loop, a, len(content)))
        # fallback=False succeeds only through the zero-copy path.
        assert await loop.sock_sendfile(b, f, fallback=False) == len(content)
        assert await reader == content
        assert f.tell() == len(content)

    loop.run_until_complete(main())


def test_sock_sendfile_native_large_slow_reader(loop: Loop, tcp_pair: Pair, tmp_path: Any) -> None:
    client, server = tcp_pair
    content = payload(6 * 1024 * 1024)
    path = tmp_path / "big.bin"
    path.write_bytes(content)

    async def main() -> None:
        with open(path, "rb") as f:
            reader = loop.create_task(slow_read(loop, server, len(content)))
            assert await loop.sock_sendfile(client, f, fallback=False) == len(content)
            assert loop.remove_writer(client.fileno()) is False
            assert await reader == content
            assert f.tell() == len(content)

    loop.run_until_complete(main())


@pytest.mark.parametrize("fallback", [False, True])
@pytest.mark.parametrize(
    ("offset", "count", "start", "end"),
    [
        (1000, 5000, 1000, 6000),
        (99_000, 5000, 99_000, 100_000),  # count beyond the end: stops at EOF
        (4000, None, 4000, 100_000),
    ],
)
def test_sock_sendfile_offset_count(
    loop: Loop,
    pair: Pair,
    data_file: tuple[io.BufferedReader, bytes],
    fallback: bool,
    offset: int,
    count: int | None,
    start: int,
    end: int,
) -> None:
    a, b = pair
    f, content = data_file
    src: Any = io.BytesIO(content) if fallback else f  # BytesIO has no fileno()

    async def main() -> None:
        reader = loop.create_task(read_exactly(loop, a, end - start))
        sent = await loop.sock_sendfile(b, src, offset, count)
        assert sent == end - start
        assert await reader == content[start:end]
        assert src.tell() == end

    loop.run_until_complete(main())


def test_sock_sendfile_native_ignores_file_position(
    loop: Loop, pair: Pair, data_file: tuple[io.BufferedReader, bytes]
) -> None:
    a, b = pair
    f, content = data_file
    f.seek(500)

    async def main() -> None:
        reader = loop.create_task(read_exactly(loop, a, len(content)))
        assert await loop.sock_sendfile(b, f) == len(content)
        assert await reader == content
        assert f.tell() == len(content)

    loop.run_until_complete(main())


def test_sock_sendfile_fallback_offset_zero_reads_from_position(loop: Loop, pair: Pair) -> None:
    # asyncio's fallback: offset=0 means "from the current position", yet the
    # final position is offset + bytes sent.
    a, b = pair
    src = io.BytesIO(b"0123456789")
    src.seek(4)

    async def main() -> None:
        assert await loop.sock_sendfile(b, src) == 6
        assert await read_exactly(loop, a, 6) == b"456789"
        assert src.tell() == 6

    loop.run_until_complete(main())


def test_sock_sendfile_fallback_unavailable(loop: Loop, pair: Pair) -> None:
    _, b = pair
    with pytest.raises(asyncio.SendfileNotAvailableError) as info:
        loop.run_until_complete(loop.sock_sendfile(b, io.BytesIO(b"data"), fallback=False))
    assert str(info.value) == "not a regular file"


def test_sock_sendfile_empty_file(loop: Loop, pair: Pair, tmp_path: Any) -> None:
    a, b = pair
    path = tmp_path / "empty"
    path.write_bytes(b"")
    with open(path, "rb") as f:
        assert loop.run_until_complete(loop.sock_sendfile(b, f, fallback=False)) == 0
        assert f.tell() == 0
    with pytest.raises(BlockingIOError):
        a.recv(1)


def test_sock_sendfile_large_fallback(loop: Loop, pair: Pair) -> None:
    a, b = pair
    content = payload(2 * 1024 * 1024 + 17)
    src = io.BytesIO(content)

    async def main() -> None:
        reader = loop.create_task(slow_read(loop, a, len(content)))
        assert await loop.sock_sendfile(b, src) == len(content)
        assert await reader == content
        assert src.tell() == len(content)

    loop.run_until_complete(main())


def test_sock_sendfile_peer_closed(
    loop: Loop, pair: Pair, data_file: tuple[io.BufferedReader, bytes]
) -> None:
    a, b = pair
    f, content = data_file
    a.close()
    with pytest.raises(asyncio.SendfileNotAvailableError) as info:
        loop.run_until_complete(loop.sock_sendfile(b, f, fallback=False))
    assert str(info.value) == "os.sendfile call failed"
    assert f.tell() == 0
    # With the fallback, sock_sendall meets the real error. Nothing was sent,
    # so asyncio leaves the position where its first read left it.
    with pytest.raises(BrokenPipeError):
        loop.run_until_complete(loop.sock_sendfile(b, f))
    assert f.tell() == len(content)


def test_sock_sendfile_cancel_midway(loop: Loop, pair: Pair, tmp_path: Any) -> None:
    a, b = pair
    content = payload(8 * 1024 * 1024)
    path = tmp_path / "big.bin"
    path.write_bytes(content)

    async def main() -> None:
        with open(path, "rb") as f:
            task = loop.create_task(loop.sock_sendfile(b, f, fallback=False))
            await asyncio.sleep(0)
            assert not task.done()
            first = await loop.sock_recv(a, 65536)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert loop.remove_writer(b.fileno()) is False
            b.shutdown(socket.SHUT_WR)
            received = first + await read_until_eof(loop, a)
            assert 0 < len(received) < len(content)
            assert received == content[: len(received)]

    loop.run_until_complete(main())


@pytest.mark.parametrize(
    ("kwargs", "exc_type", "message"),
    [
        ({"count": 0}, ValueError, "count must be a positive integer (got 0)"),
        ({"count": -1}, ValueError, "count must be a positive integer (got -1)"),
        ({"count": "10"}, TypeError, "count must be a positive integer (got '10')"),
        ({"offset": -1}, ValueError, "offset must be a non-negative integer (got -1)"),
        ({"offset": 1.5}, TypeError, "offset must be a non-negative integer (got 1.5)"),
    ],
)
def test_sock_sendfile_bad_params(
    loop: Loop,
    pair: Pair,
    data_file: tuple[io.BufferedReader, bytes],
    kwargs: dict[str, Any],
    exc_type: type[Exception],
    message: str,
) -> None:
    _, b = pair
    f, _ = data_file
    with pytest.raises(exc_type) as info:
        loop.run_until_complete(loop.sock_sendfile(b, f, **kwargs))
    assert str(info.value) == message


def test_sock_sendfile_text_file(loop: Loop, pair: Pair, tmp_path: Any) -> None:
    _, b = pair
    path = tmp_path / "text.txt"
    path.write_text("text")
    with open(path) as f, pytest.raises(ValueError) as info:
        loop.run_until_complete(loop.sock_sendfile(b, f))  # type: ignore[arg-type]
    assert str(info.value) == "file should be opened in binary mode"


def test_sock_sendfile_datagram_socket(
    loop: Loop, udp_pair: Pair, data_file: tuple[io.BufferedReader, bytes]
) -> None:
    u1, _ = udp_pair
    f, _ = data_file
    with pytest.raises(ValueError) as info:
        loop.run_until_complete(loop.sock_sendfile(u1, f))
    assert str(info.value) == "only SOCK_STREAM type sockets are supported"


# -- argument checks -----------------------------------------------------------------

SockCall = Callable[[Loop, socket.socket], Coroutine[Any, Any, Any]]

ALL_METHODS: dict[str, SockCall] = {
    "sock_recv": lambda loop, s: loop.sock_recv(s, 1),
    "sock_recv_into": lambda loop, s: loop.sock_recv_into(s, bytearray(1)),
    "sock_recvfrom": lambda loop, s: loop.sock_recvfrom(s, 1),
    "sock_recvfrom_into": lambda loop, s: loop.sock_recvfrom_into(s, bytearray(1)),
    "sock_sendall": lambda loop, s: loop.sock_sendall(s, b"x"),
    "sock_sendto": lambda loop, s: loop.sock_sendto(s, b"x", ("127.0.0.1", 9)),
    "sock_connect": lambda loop, s: loop.sock_connect(s, ("127.0.0.1", 9)),
    "sock_accept": lambda loop, s: loop.sock_accept(s),
    "sock_sendfile": lambda loop, s: loop.sock_sendfile(s, io.BytesIO(b"x")),
}


@pytest.mark.parametrize("method", sorted(ALL_METHODS))
@pytest.mark.parametrize("timeout", [None, 5.0])
def test_blocking_socket_rejected_in_debug_mode(
    loop: Loop, method: str, timeout: float | None
) -> None:
    loop.set_debug(True)
    with socket.socket() as sock:
        sock.settimeout(timeout)
        with pytest.raises(ValueError) as info:
            loop.run_until_complete(ALL_METHODS[method](loop, sock))
        assert str(info.value) == "the socket must be non-blocking"


def test_blocking_socket_not_checked_outside_debug_mode(loop: Loop) -> None:
    # asyncio checks gettimeout() only in debug mode; a blocking socket with
    # data ready works (and would block the loop otherwise).
    loop.set_debug(False)
    a, b = socket.socketpair()
    with a, b:
        b.sendall(b"data")
        assert loop.run_until_complete(loop.sock_recv(a, 10)) == b"data"
        loop.run_until_complete(loop.sock_sendall(a, b"back"))
        assert b.recv(10) == b"back"


@pytest.fixture
def ssl_sock(loop: Loop) -> Iterator[ssl.SSLSocket]:
    ctx = ssl.create_default_context()
    sock = ctx.wrap_socket(
        socket.socket(), server_hostname="localhost", do_handshake_on_connect=False
    )
    yield sock
    sock.close()


@pytest.mark.parametrize("method", sorted(ALL_METHODS))
def test_ssl_socket_rejected(loop: Loop, ssl_sock: ssl.SSLSocket, method: str) -> None:
    loop.set_debug(False)
    ssl_sock.setblocking(False)
    with pytest.raises(TypeError) as info:
        loop.run_until_complete(ALL_METHODS[method](loop, ssl_sock))
    assert str(info.value) == "Socket cannot be of type SSLSocket"


def test_ssl_check_order_in_debug_mode(loop: Loop, ssl_sock: ssl.SSLSocket) -> None:
    # asyncio checks SSLSocket first everywhere but in sock_sendfile, which
    # checks blocking mode first.
    loop.set_debug(True)
    with pytest.raises(TypeError):
        loop.run_until_complete(loop.sock_recv(ssl_sock, 1))
    with pytest.raises(ValueError) as info:
        loop.run_until_complete(loop.sock_sendfile(ssl_sock, io.BytesIO(b"x")))
    assert str(info.value) == "the socket must be non-blocking"


def test_wrong_argument_types(loop: Loop, pair: Pair) -> None:
    # The socket method's own error comes through unchanged.
    a, _ = pair
    with pytest.raises(TypeError) as direct:
        a.send("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError) as info:
        loop.run_until_complete(loop.sock_sendall(a, "text"))  # type: ignore[arg-type]
    assert str(info.value) == str(direct.value)

    with pytest.raises(TypeError) as direct:
        a.recv("10")  # type: ignore[arg-type]
    with pytest.raises(TypeError) as info:
        loop.run_until_complete(loop.sock_recv(a, "10"))  # type: ignore[arg-type]
    assert str(info.value) == str(direct.value)

    with pytest.raises(TypeError) as direct:
        a.recv_into(b"immutable")
    with pytest.raises(TypeError) as info:
        loop.run_until_complete(loop.sock_recv_into(a, b"immutable"))
    assert str(info.value) == str(direct.value)

    loop.set_debug(False)
    with pytest.raises(AttributeError) as attr:
        loop.run_until_complete(loop.sock_recv(42, 10))  # type: ignore[arg-type]
    assert str(attr.value) == "'int' object has no attribute 'recv'"


# -- closed loop and transports ---------------------------------------------------


def test_closed_loop(loop: Loop, pair: Pair) -> None:
    a, b = pair
    loop.close()
    # Ready data needs no loop: asyncio returns it even from a closed loop.
    b.sendall(b"ready")
    assert drive(loop.sock_recv(a, 10)) == b"ready"
    # Anything that has to wait fails.
    for coro in (
        loop.sock_recv(a, 10),
        loop.sock_recv_into(a, bytearray(10)),
        loop.sock_sendall(b, payload(16 * 1024 * 1024)),
    ):
        with pytest.raises(RuntimeError) as info:
            drive(coro)
        assert str(info.value) == "Event loop is closed"


def test_closed_loop_accept_connect(loop: Loop) -> None:
    with listening_tcp() as lsn, socket.socket() as client:
        client.setblocking(False)
        loop.close()
        with pytest.raises(RuntimeError, match=r"^Event loop is closed$"):
            drive(loop.sock_accept(lsn))
        with pytest.raises(RuntimeError, match=r"^Event loop is closed$"):
            drive(loop.sock_connect(client, lsn.getsockname()))


def test_closed_loop_sendfile(
    loop: Loop, pair: Pair, data_file: tuple[io.BufferedReader, bytes]
) -> None:
    _, b = pair
    f, _ = data_file
    loop.close()
    with pytest.raises(RuntimeError, match=r"^Event loop is closed$"):
        drive(loop.sock_sendfile(b, f))


def test_fd_owned_by_transport(loop: Loop, pair: Pair) -> None:
    a, _ = pair

    async def main() -> None:
        transport, _ = await loop.create_connection(asyncio.Protocol, sock=a)
        fd = a.fileno()
        try:
            # Waiting on a transport's fd is refused (ready data would be
            # returned without the check, as in asyncio).
            with pytest.raises(RuntimeError) as info:
                await loop.sock_recv(a, 10)
            assert str(info.value).startswith(f"File descriptor {fd!r} is used by transport <")
            # So is watching it, by fd or by socket object, in either direction.
            for target in (fd, a):
                for method, args in (
                    (loop.add_reader, (print,)),
                    (loop.add_writer, (print,)),
                    (loop.remove_reader, ()),
                    (loop.remove_writer, ()),
                ):
                    with pytest.raises(RuntimeError) as info:
                        method(target, *args)
                    # asyncio names the object it was given.
                    assert str(info.value).startswith(
                        f"File descriptor {target!r} is used by transport <"
                    )
            # The transport still works.
            assert transport.is_reading()
        finally:
            transport.close()
            await asyncio.sleep(0)

    loop.run_until_complete(main())


class FakeTransport:
    def __init__(self) -> None:
        self.closing = False

    def is_closing(self) -> bool:
        return self.closing

    def __repr__(self) -> str:
        return "<FakeTransport>"


def test_fd_owned_by_transport_checked_only_when_waiting(loop: Loop, pair: Pair) -> None:
    # Until every loop kind has socket transports, register a stand-in in the
    # loop's fd -> transport map: asyncio's private ``_transports``, which
    # tideloop mirrors under the same name (DESIGN.md 5a).
    a, b = pair
    fd = a.fileno()
    transport = FakeTransport()
    transports: Any = loop._transports  # type: ignore[attr-defined]
    transports[fd] = transport
    message = f"File descriptor {fd!r} is used by transport <FakeTransport>"
    try:
        b.sendall(b"ready")
        assert loop.run_until_complete(loop.sock_recv(a, 10)) == b"ready"
        with pytest.raises(RuntimeError) as info:
            loop.run_until_complete(loop.sock_recv(a, 10))
        assert str(info.value) == message
        with pytest.raises(RuntimeError) as info:
            loop.run_until_complete(loop.sock_sendall(a, payload(16 * 1024 * 1024)))
        assert str(info.value) == message
        transport.closing = True  # a closing transport no longer owns the fd
        assert loop.remove_writer(fd) is False

        async def main() -> bytes:
            task = loop.create_task(loop.sock_recv(a, 10))
            await asyncio.sleep(0)
            assert not task.done()
            b.sendall(b"again")
            return await task

        assert loop.run_until_complete(main()) == b"again"
    finally:
        del transports[fd]


@pytest.mark.skipif(sys.platform != "linux", reason="relies on Linux socket buffer behaviour")
def test_concurrent_recv_and_send_on_one_socket(loop: Loop, pair: Pair) -> None:
    # A reader and a writer on the same fd are independent registrations.
    a, b = pair
    data = payload(2 * 1024 * 1024)

    async def main() -> None:
        recv_task = loop.create_task(loop.sock_recv(a, 10))
        send_task = loop.create_task(loop.sock_sendall(a, data))
        await asyncio.sleep(0)
        assert not recv_task.done()
        echo = loop.create_task(read_exactly(loop, b, len(data)))
        await send_task
        assert await echo == data
        b.sendall(b"reply")
        assert await recv_task == b"reply"
        assert loop.remove_reader(a.fileno()) is False
        assert loop.remove_writer(a.fileno()) is False

    loop.run_until_complete(main())
