"""Servers (src/tideloop/_server.py) and create_server/create_unix_server
(src/tideloop/_net.py).

Every test runs on stock asyncio (the oracle) and on tideloop with each
backend, except where stated: ``Server.close_clients``/``abort_clients`` and
the Unix socket clean-up are 3.13 API that tideloop offers on every version
(so asyncio is checked only on 3.13), and the EMFILE back-off is tideloop's
own behaviour (asyncio reports every failed accept and piles up retry timers,
CPython gh-151615). No sleeps: tests wait on futures; ``spin()`` only lets the
loop turn.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import socket
import ssl
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

import tideloop

from .support.streams import (
    HAS_IPV6,
    Echo,
    Loop,
    Recorder,
    close_server,
    echo_server,
    payload,
    roundtrip,
    run,
    short_tmpdir,
    spin,
)

pytestmark = pytest.mark.timeout(30)

PY312 = sys.version_info >= (3, 12)
PY313 = sys.version_info >= (3, 13)
needs_ipv6 = pytest.mark.skipif(not HAS_IPV6, reason="no IPv6 loopback")


def has_313_server_api(is_tideloop: bool) -> bool:
    """close_clients/abort_clients, cleanup_socket=, keep_alive: asyncio
    from 3.13 on, tideloop on every version. (Whether a Unix server removes
    its socket file by default follows the running Python on both.)"""
    return is_tideloop or PY313


async def expect_refused(loop: Loop, addr: Any) -> None:
    with pytest.raises(ConnectionRefusedError):
        await loop.create_connection(lambda: Recorder(loop), *addr[:2])


@pytest.fixture
def tmpdir_short() -> Any:
    path = short_tmpdir()
    yield path
    for name in os.listdir(path):
        os.unlink(os.path.join(path, name))
    os.rmdir(path)


# -- create_server ---------------------------------------------------------------------


def test_create_server_basics(loop: Loop) -> None:
    async def main() -> None:
        peers: list[Recorder] = []

        def factory() -> Recorder:
            pr = Recorder(loop)
            peers.append(pr)
            return pr

        server = await loop.create_server(factory, "127.0.0.1", 0)
        assert isinstance(server, asyncio.AbstractServer)
        assert server.get_loop() is loop
        assert server.is_serving() is True
        [lsock] = server.sockets
        assert isinstance(lsock, asyncio.trsock.TransportSocket)
        assert lsock.family == socket.AF_INET
        assert lsock.type == socket.SOCK_STREAM
        addr = lsock.getsockname()
        assert addr[0] == "127.0.0.1" and addr[1] != 0
        assert lsock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) != 0
        assert repr(server) == f"<Server sockets={server.sockets!r}>"

        tr, pr = await loop.create_connection(lambda: Recorder(loop), *addr)
        tr.write(b"hello")
        peer = await _first_peer(peers)
        assert await peer.wait_bytes(5) == b"hello"
        stransport = peer.transport
        assert stransport.get_extra_info("peername") == tr.get_extra_info("sockname")
        assert stransport.get_extra_info("sockname") == addr
        assert stransport.get_extra_info("socket").getsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY
        )
        stransport.write(b"back")
        assert await pr.wait_bytes(4) == b"back"
        tr.close()
        await pr.lost
        assert await peer.lost is None
        peer.check()
        await close_server(server)
        assert server.is_serving() is False
        assert server.sockets == ()

    run(loop, main())


async def _first_peer(peers: list[Recorder]) -> Recorder:
    while not peers:
        await asyncio.sleep(0)
    await peers[0].made
    return peers[0]


@needs_ipv6
def test_create_server_host_list(loop: Loop) -> None:
    async def main() -> None:
        server = await loop.create_server(Echo, ["127.0.0.1", "::1"], 0)
        families = sorted(s.family for s in server.sockets)
        assert families == sorted([socket.AF_INET, socket.AF_INET6])
        for lsock in server.sockets:
            if lsock.family == socket.AF_INET6:
                assert lsock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) != 0
            assert await roundtrip(loop, lsock.getsockname(), b"family") == b"family"
        await close_server(server)

    run(loop, main())


def test_create_server_duplicate_hosts_bind_once(loop: Loop) -> None:
    async def main() -> None:
        server = await loop.create_server(Echo, ["127.0.0.1", "127.0.0.1"], 0)
        assert len(server.sockets) == 1
        await close_server(server)

    run(loop, main())


def test_create_server_port_only_binds_wildcard(loop: Loop) -> None:
    async def main() -> None:
        server = await loop.create_server(Echo, None, 0, family=socket.AF_INET)
        [lsock] = server.sockets
        assert lsock.getsockname()[0] == "0.0.0.0"
        addr = ("127.0.0.1", lsock.getsockname()[1])
        assert await roundtrip(loop, addr) == b"ping"
        await close_server(server)

    run(loop, main())


def test_create_server_with_sock(loop: Loop) -> None:
    async def main() -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))  # bound, not listening: the server listens
        server = await loop.create_server(Echo, sock=sock)
        assert sock.getblocking() is False
        [lsock] = server.sockets
        assert lsock.fileno() == sock.fileno()
        assert await roundtrip(loop, sock.getsockname(), b"sock") == b"sock"
        await close_server(server)
        assert sock.fileno() == -1  # the server closed it

    run(loop, main())


def test_create_server_reuse_port(loop: Loop) -> None:
    if not hasattr(socket, "SO_REUSEPORT"):
        pytest.skip("no SO_REUSEPORT")

    async def main() -> None:
        first = await loop.create_server(Echo, "127.0.0.1", 0, reuse_port=True)
        port = first.sockets[0].getsockname()[1]
        second = await loop.create_server(Echo, "127.0.0.1", port, reuse_port=True)
        assert second.sockets[0].getsockname()[1] == port
        for server in (first, second):
            assert server.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) != 0
        assert await roundtrip(loop, ("127.0.0.1", port)) == b"ping"
        await close_server(first)
        await close_server(second)

    run(loop, main())


def test_create_server_keep_alive(loop: Loop, is_tideloop: bool) -> None:
    if not has_313_server_api(is_tideloop):
        pytest.skip("keep_alive is new in Python 3.13 (tideloop has it on every version)")

    async def main() -> None:
        server = await loop.create_server(Echo, "127.0.0.1", 0, keep_alive=True)
        assert server.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0
        await close_server(server)

    run(loop, main())


def test_create_server_backlog(loop: Loop) -> None:
    async def main() -> None:
        server = await loop.create_server(Echo, "127.0.0.1", 0, backlog=3)
        addr = server.sockets[0].getsockname()
        # Sequential: a burst above the backlog makes the kernel drop SYNs,
        # which clients retry only after ~1 s.
        for i in range(10):
            assert await roundtrip(loop, addr, b"%d" % i) == b"%d" % i
        await close_server(server)

    run(loop, main())


def test_create_server_address_in_use(loop: Loop) -> None:
    async def main() -> tuple[Any, Any]:
        server, addr = await echo_server(loop)
        try:
            with pytest.raises(OSError) as info:
                await loop.create_server(Echo, "127.0.0.1", addr[1])
        finally:
            await close_server(server)
        return info.value, addr

    exc, addr = run(loop, main())
    assert type(exc) is OSError
    assert exc.errno == errno.EADDRINUSE
    err = OSError(errno.EADDRINUSE, os.strerror(errno.EADDRINUSE))
    detail = str(err).lower() if PY313 else err.strerror.lower()
    assert exc.strerror == f"error while attempting to bind on address {addr!r}: {detail}"


def test_create_server_no_bindable_address(loop: Loop) -> None:
    """192.0.2.1 (TEST-NET-1) is not a local address: bind() fails with
    EADDRNOTAVAIL. 3.13 skips such addresses (bpo-30945) and then finds none
    left; 3.11 and 3.12 raise the bind error."""
    with socket.socket() as probe:
        try:
            probe.bind(("192.0.2.1", 0))
        except OSError:
            pass
        else:
            pytest.skip("this host binds non-local addresses")

    async def main() -> None:
        with pytest.raises(OSError) as info:
            await loop.create_server(Echo, "192.0.2.1", 0)
        assert type(info.value) is OSError
        if PY313:
            assert info.value.errno is None
            assert str(info.value) == "could not bind on any address out of [('192.0.2.1', 0)]"
        else:
            assert info.value.errno == errno.EADDRNOTAVAIL
            assert info.value.strerror == (
                "error while attempting to bind on address ('192.0.2.1', 0): "
                + os.strerror(errno.EADDRNOTAVAIL).lower()
            )

    run(loop, main())


def _server_arg_cases() -> list[Any]:
    return [
        pytest.param({"ssl": True}, TypeError, "ssl argument must be an SSLContext or None"),
        pytest.param({"ssl": False}, TypeError, "ssl argument must be an SSLContext or None"),
        pytest.param(
            {"host": "127.0.0.1", "port": 0, "ssl_handshake_timeout": 1.0},
            ValueError,
            "ssl_handshake_timeout is only meaningful with ssl",
        ),
        pytest.param(
            {"host": "127.0.0.1", "port": 0, "ssl_shutdown_timeout": 1.0},
            ValueError,
            "ssl_shutdown_timeout is only meaningful with ssl",
        ),
        pytest.param(
            {"host": "127.0.0.1", "port": 0, "sock": "SOCK"},
            ValueError,
            "host/port and sock can not be specified at the same time",
        ),
        pytest.param({}, ValueError, "Neither host/port nor sock were specified"),
        pytest.param({"sock": "DGRAM"}, ValueError, "A Stream Socket was expected, got {sock!r}"),
        pytest.param({"sock": "SSLSOCK"}, TypeError, "Socket cannot be of type SSLSocket"),
    ]


@pytest.mark.parametrize(("kwargs", "exc_type", "message"), _server_arg_cases())
def test_create_server_argument_errors(
    loop: Loop, kwargs: dict[str, Any], exc_type: type[BaseException], message: str
) -> None:
    kwargs = dict(kwargs)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with (
        socket.socket() as stream,
        socket.socket(type=socket.SOCK_DGRAM) as dgram,
        ctx.wrap_socket(socket.socket(), server_side=True) as sslsock,
    ):
        chosen = {"SOCK": stream, "DGRAM": dgram, "SSLSOCK": sslsock}.get(kwargs.get("sock"))
        if chosen is not None:
            kwargs["sock"] = chosen
        expected = message.format(sock=chosen)

        async def main() -> None:
            with pytest.raises(exc_type) as info:
                await loop.create_server(Echo, **kwargs)
            assert type(info.value) is exc_type
            assert str(info.value) == expected

        run(loop, main())


@pytest.mark.parametrize(
    ("kwargs", "exc_type", "message"),
    [
        pytest.param({"ssl": True}, TypeError, "ssl argument must be an SSLContext or None"),
        pytest.param(
            {"path": "/tmp/x", "ssl_handshake_timeout": 1.0},
            ValueError,
            "ssl_handshake_timeout is only meaningful with ssl",
        ),
        pytest.param(
            {"path": "/tmp/x", "ssl_shutdown_timeout": 1.0},
            ValueError,
            "ssl_shutdown_timeout is only meaningful with ssl",
        ),
        pytest.param(
            {"path": "/tmp/x", "sock": "UNIX"},
            ValueError,
            "path and sock can not be specified at the same time",
        ),
        pytest.param({}, ValueError, "path was not specified, and no sock specified"),
        pytest.param(
            {"sock": "TCP"},
            ValueError,
            "A UNIX Domain Stream Socket was expected, got {sock!r}",
        ),
    ],
)
def test_create_unix_server_argument_errors(
    loop: Loop, kwargs: dict[str, Any], exc_type: type[BaseException], message: str
) -> None:
    kwargs = dict(kwargs)
    with socket.socket(socket.AF_UNIX) as unix, socket.socket() as tcp:
        chosen = {"UNIX": unix, "TCP": tcp}.get(kwargs.get("sock"))
        if chosen is not None:
            kwargs["sock"] = chosen
        expected = message.format(sock=chosen)

        async def main() -> None:
            with pytest.raises(exc_type) as info:
                await loop.create_unix_server(Echo, **kwargs)
            assert type(info.value) is exc_type
            assert str(info.value) == expected

        run(loop, main())


# -- serving ---------------------------------------------------------------------------


def test_start_serving_false_then_start_serving(loop: Loop) -> None:
    async def main() -> None:
        server = await loop.create_server(Echo, "127.0.0.1", 0, start_serving=False)
        addr = server.sockets[0].getsockname()
        assert server.is_serving() is False
        await expect_refused(loop, addr)  # not even listening yet
        await server.start_serving()
        assert server.is_serving() is True
        await server.start_serving()  # idempotent
        assert await roundtrip(loop, addr) == b"ping"
        await close_server(server)

    run(loop, main())


def test_serve_forever(loop: Loop) -> None:
    async def main() -> None:
        server = await loop.create_server(Echo, "127.0.0.1", 0, start_serving=False)
        addr = server.sockets[0].getsockname()
        task = loop.create_task(server.serve_forever())
        await spin(3)
        assert server.is_serving() is True
        assert await roundtrip(loop, addr) == b"ping"
        with pytest.raises(RuntimeError) as info:
            await server.serve_forever()
        assert str(info.value) == f"server {server!r} is already being awaited on serve_forever()"
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert server.is_serving() is False
        assert server.sockets == ()
        await expect_refused(loop, addr)
        with pytest.raises(RuntimeError) as info:
            await server.serve_forever()
        assert str(info.value) == f"server {server!r} is closed"
        assert repr(server) == "<Server sockets=()>"
        await server.wait_closed()

    run(loop, main())


def test_serve_forever_ends_when_server_closed(loop: Loop) -> None:
    async def main() -> None:
        server, _ = await echo_server(loop)
        task = loop.create_task(server.serve_forever())
        await spin(3)
        server.close()
        with pytest.raises(asyncio.CancelledError):
            await task
        await server.wait_closed()

    run(loop, main())


def test_close_stops_accepting_but_keeps_connections(loop: Loop) -> None:
    async def main() -> None:
        server, addr = await echo_server(loop)
        tr, pr = await loop.create_connection(lambda: Recorder(loop), *addr)
        tr.write(b"before")
        await pr.wait_bytes(6)
        server.close()
        server.close()  # idempotent
        assert server.is_serving() is False
        assert server.sockets == ()
        await expect_refused(loop, addr)
        tr.write(b"after")
        assert await pr.wait_bytes(11) == b"beforeafter"
        tr.close()
        await pr.lost
        await server.wait_closed()

    run(loop, main())


def test_wait_closed_after_close_waits_for_connections(loop: Loop) -> None:
    """3.12.1+ waits until the last connection is gone; 3.11 returns at once."""

    async def main() -> None:
        server, addr = await echo_server(loop)
        tr, pr = await loop.create_connection(lambda: Recorder(loop), *addr)
        tr.write(b"x")
        await pr.wait_bytes(1)
        server.close()
        waiter = loop.create_task(server.wait_closed())
        await spin()
        assert waiter.done() is (not PY312)
        tr.close()
        await pr.lost
        await waiter
        await server.wait_closed()  # done for good

    run(loop, main())


def test_wait_closed_before_close(loop: Loop) -> None:
    async def main() -> None:
        server, addr = await echo_server(loop)
        tr, pr = await loop.create_connection(lambda: Recorder(loop), *addr)
        tr.write(b"x")
        await pr.wait_bytes(1)
        waiter = loop.create_task(server.wait_closed())
        await spin()
        assert not waiter.done()
        server.close()
        await spin()
        assert not waiter.done()  # a connection is still open
        tr.close()
        await pr.lost
        await waiter

    run(loop, main())


def test_wait_closed_without_connections(loop: Loop) -> None:
    async def main() -> None:
        server, _ = await echo_server(loop)
        waiter = loop.create_task(server.wait_closed())
        await spin()
        # 3.12.1+ waits for close(); 3.11 too (its waiter list is still open).
        assert not waiter.done()
        server.close()
        await waiter

    run(loop, main())


def test_async_with_server(loop: Loop) -> None:
    async def main() -> None:
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()
        async with server as entered:
            assert entered is server
            assert await roundtrip(loop, addr) == b"ping"
        assert server.is_serving() is False
        assert server.sockets == ()
        await expect_refused(loop, addr)

    run(loop, main())


def test_many_concurrent_clients(loop: Loop) -> None:
    # backlog above the client count: with the default (100) the kernel drops
    # SYNs once the accept queue is full and clients retry only after ~1 s.
    clients = 200

    async def main() -> None:
        server, addr = await echo_server(loop, backlog=256)

        async def client(i: int) -> bytes:
            message = payload(1000 + i, salt=i)
            return await roundtrip(loop, addr, message)

        results = await asyncio.gather(*(client(i) for i in range(clients)))
        assert results == [payload(1000 + i, salt=i) for i in range(clients)]
        await close_server(server)

    run(loop, main(), timeout=25)


def test_many_clients_connected_at_once(loop: Loop) -> None:
    """All 200 connections are open together before any is used."""
    clients = 200

    async def main() -> None:
        server, addr = await echo_server(loop, backlog=256)
        pairs = await asyncio.gather(
            *(loop.create_connection(lambda: Recorder(loop), *addr) for _ in range(clients))
        )
        for i, (tr, _) in enumerate(pairs):
            tr.write(b"%05d" % i)
        for i, (_, pr) in enumerate(pairs):
            assert await pr.wait_bytes(5) == b"%05d" % i
        for tr, _ in pairs:
            tr.close()
        for _, pr in pairs:
            assert await pr.lost is None
        await close_server(server)

    run(loop, main(), timeout=25)


# -- close_clients / abort_clients (3.13 API) ------------------------------------------


def _needs_313_api(is_tideloop: bool) -> None:
    if not has_313_server_api(is_tideloop):
        pytest.skip("new in Python 3.13 (tideloop offers it on every version)")


def test_close_clients(loop: Loop, is_tideloop: bool) -> None:
    _needs_313_api(is_tideloop)

    async def main() -> None:
        peers: list[Recorder] = []

        def factory() -> Recorder:
            pr = Recorder(loop)
            peers.append(pr)
            return pr

        server = await loop.create_server(factory, "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()
        conns = [await loop.create_connection(lambda: Recorder(loop), *addr) for _ in range(3)]
        for tr, _ in conns:
            tr.write(b"hi")
        while len(peers) < 3 or any(len(p.data) < 2 for p in peers):
            await asyncio.sleep(0)
        for p in peers:
            p.transport.write(b"bye")
        server.close()
        server.close_clients()
        for p in peers:
            assert p.transport.is_closing()
        for _, pr in conns:
            await pr.eof
            assert await pr.lost is None
            assert pr.data == b"bye"  # pending data was flushed first
        for p in peers:
            assert await p.lost is None
        await server.wait_closed()
        for tr, _ in conns:
            assert tr.is_closing()

    run(loop, main())


def test_abort_clients(loop: Loop, is_tideloop: bool) -> None:
    _needs_313_api(is_tideloop)

    async def main() -> None:
        peers: list[Recorder] = []

        def factory() -> Recorder:
            pr = Recorder(loop)
            peers.append(pr)
            return pr

        server = await loop.create_server(factory, "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()
        tr, pr = await loop.create_connection(lambda: Recorder(loop), *addr)
        tr.pause_reading()  # the server's big write stays queued
        tr.write(b"hi")
        while not peers or len(peers[0].data) < 2:
            await asyncio.sleep(0)
        big = payload(16 * 1024 * 1024)
        peers[0].transport.write(big)
        await spin()
        assert peers[0].transport.get_write_buffer_size() > 0
        server.abort_clients()
        assert await peers[0].lost is None
        assert peers[0].transport.get_write_buffer_size() == 0
        tr.resume_reading()
        exc = await pr.lost
        assert exc is None or isinstance(exc, ConnectionResetError)
        assert len(pr.data) < len(big)
        assert big.startswith(bytes(pr.data))
        server.close()
        await server.wait_closed()

    run(loop, main())


# -- Unix servers ----------------------------------------------------------------------


def test_unix_server_serves_and_cleans_up(loop: Loop, is_tideloop: bool, tmpdir_short: str) -> None:
    path = os.path.join(tmpdir_short, "srv")

    async def main() -> None:
        server = await loop.create_unix_server(Echo, path)
        [lsock] = server.sockets
        assert lsock.family == socket.AF_UNIX
        assert lsock.getsockname() == path
        assert Path(path).is_socket()
        tr, pr = await loop.create_unix_connection(lambda: Recorder(loop), path)
        tr.write(b"unix")
        assert await pr.wait_bytes(4) == b"unix"
        tr.close()
        await pr.lost
        await close_server(server)

    run(loop, main())
    # The socket file is removed on close from 3.13 on; 3.11 and 3.12 leave it.
    assert os.path.exists(path) is (not PY313)


def test_unix_server_pathlike(loop: Loop, tmpdir_short: str) -> None:
    path = Path(tmpdir_short) / "srv"

    async def main() -> None:
        server = await loop.create_unix_server(Echo, path)
        assert server.sockets[0].getsockname() == str(path)
        tr, pr = await loop.create_unix_connection(lambda: Recorder(loop), path)
        assert tr.get_extra_info("peername") == str(path)
        tr.close()
        await pr.lost
        await close_server(server)

    run(loop, main())


def test_unix_server_keeps_path_bound_by_someone_else(loop: Loop, tmpdir_short: str) -> None:
    path = os.path.join(tmpdir_short, "srv")

    async def main() -> None:
        server = await loop.create_unix_server(Echo, path)
        os.unlink(path)
        with socket.socket(socket.AF_UNIX) as other:
            other.bind(path)  # a new inode at the same path
            await close_server(server)
            assert Path(path).is_socket()

    run(loop, main())


@pytest.mark.parametrize("cleanup", [True, False])
def test_unix_server_cleanup_socket_explicit(
    loop: Loop, is_tideloop: bool, tmpdir_short: str, cleanup: bool
) -> None:
    """cleanup_socket= given: the file goes (True) or stays (False) whatever
    the Python version's default is."""
    _needs_313_api(is_tideloop)
    path = os.path.join(tmpdir_short, "srv")

    async def main() -> None:
        server = await loop.create_unix_server(Echo, path, cleanup_socket=cleanup)
        assert Path(path).is_socket()
        await close_server(server)

    run(loop, main())
    assert os.path.exists(path) is (not cleanup)


def test_unix_server_replaces_stale_socket_file(loop: Loop, tmpdir_short: str) -> None:
    path = os.path.join(tmpdir_short, "srv")
    with socket.socket(socket.AF_UNIX) as stale:
        stale.bind(path)
    assert Path(path).is_socket()

    async def main() -> None:
        server = await loop.create_unix_server(Echo, path)
        tr, pr = await loop.create_unix_connection(lambda: Recorder(loop), path)
        tr.write(b"fresh")
        assert await pr.wait_bytes(5) == b"fresh"
        tr.close()
        await pr.lost
        await close_server(server)

    run(loop, main())


def test_unix_server_path_taken_by_a_file(loop: Loop, tmpdir_short: str) -> None:
    path = os.path.join(tmpdir_short, "file")
    Path(path).write_bytes(b"not a socket")

    async def main() -> None:
        with pytest.raises(OSError) as info:
            await loop.create_unix_server(Echo, path)
        assert type(info.value) is OSError
        assert info.value.errno == errno.EADDRINUSE
        assert info.value.strerror == f"Address {path!r} is already in use"

    run(loop, main())
    assert Path(path).read_bytes() == b"not a socket"


def test_unix_server_with_sock(loop: Loop, is_tideloop: bool, tmpdir_short: str) -> None:
    path = os.path.join(tmpdir_short, "srv")

    async def main() -> None:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(path)
        server = await loop.create_unix_server(Echo, sock=sock)
        assert sock.getblocking() is False
        tr, pr = await loop.create_unix_connection(lambda: Recorder(loop), path)
        tr.write(b"s")
        assert await pr.wait_bytes(1) == b"s"
        tr.close()
        await pr.lost
        await close_server(server)

    run(loop, main())
    assert os.path.exists(path) is (not PY313)


def test_unix_server_abstract_namespace(loop: Loop) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("abstract Unix sockets are Linux-only")
    name = f"\0tideloop-test-{uuid.uuid4().hex}"

    async def main() -> None:
        server = await loop.create_unix_server(Echo, name)
        assert server.sockets[0].getsockname() == name.encode()
        tr, pr = await loop.create_unix_connection(lambda: Recorder(loop), name)
        tr.write(b"abstract")
        assert await pr.wait_bytes(8) == b"abstract"
        tr.close()
        await pr.lost
        await close_server(server)

    run(loop, main())


def test_unix_server_start_serving_false(loop: Loop, tmpdir_short: str) -> None:
    path = os.path.join(tmpdir_short, "srv")

    async def main() -> None:
        server = await loop.create_unix_server(Echo, path, start_serving=False)
        assert server.is_serving() is False
        with pytest.raises(ConnectionRefusedError):
            await loop.create_unix_connection(lambda: Recorder(loop), path)
        await server.start_serving()
        tr, pr = await loop.create_unix_connection(lambda: Recorder(loop), path)
        tr.close()
        await pr.lost
        await close_server(server)

    run(loop, main())


# -- EMFILE back-off (tideloop only) ---------------------------------------------------

EMFILE_SCRIPT = textwrap.dedent(
    """
    import asyncio, errno, json, os, resource, socket, sys
    import tideloop
    from tideloop import _server

    backend, resume = sys.argv[1], sys.argv[2]
    if resume == "transport":
        # Only a closing transport can resume accepting within the test's bound.
        _server.ACCEPT_RETRY_DELAY_S = 120.0
    elif resume == "retries":
        # Many retries while the table stays full: still one report.
        _server.ACCEPT_RETRY_DELAY_S = 0.02
    NCLIENTS = 6
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 256), hard))

    class Echo(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
        def data_received(self, data):
            self.transport.write(data)

    async def read_exactly(loop, sock, n):
        buf = b""
        while len(buf) < n:
            chunk = await loop.sock_recv(sock, n - len(buf))
            assert chunk, "EOF"
            buf += chunk
        return buf

    async def main():
        loop = asyncio.get_running_loop()
        calls = []
        reported = loop.create_future()

        def handler(_loop, ctx):
            sock = ctx.get("socket")
            ctx["_listener"] = sock is not None and sock.getsockname() == addr
            calls.append(ctx)
            if not reported.done():
                reported.set_result(None)

        server = await loop.create_server(Echo, "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()
        loop.set_exception_handler(handler)
        # An established connection: closing it later frees a tideloop fd.
        first = socket.socket()
        first.setblocking(False)
        await loop.sock_connect(first, addr)
        await loop.sock_sendall(first, b"warm")
        assert await read_exactly(loop, first, 4) == b"warm"
        # Client sockets exist before the table fills up.
        clients = [socket.socket() for _ in range(NCLIENTS)]
        for c in clients:
            c.setblocking(False)
        held = []
        while True:
            try:
                held.append(os.open(os.devnull, os.O_RDONLY))
            except OSError as exc:
                assert exc.errno == errno.EMFILE
                break
        for c in clients[: NCLIENTS // 2]:
            await loop.sock_connect(c, addr)
        await asyncio.wait_for(reported, 10)
        # More clients arrive during the episode; the loop keeps turning.
        for c in clients[NCLIENTS // 2 :]:
            await loop.sock_connect(c, addr)
        for _ in range(200):
            await asyncio.sleep(0)
        if resume == "retries":
            await asyncio.sleep(0.3)  # time for ~15 failing retries, not a sync point
        calls_during = len(calls)
        for fd in held:
            os.close(fd)
        t0 = loop.time()
        if resume == "transport":
            first.close()  # the server's transport sees EOF and closes
        for i, c in enumerate(clients):
            msg = b"client-%d" % i
            await loop.sock_sendall(c, msg)
            got = await asyncio.wait_for(read_exactly(loop, c, len(msg)), 10)
            assert got == msg, (got, msg)
        elapsed = loop.time() - t0
        for c in clients:
            c.close()
        if resume != "transport":
            first.close()
        server.close()
        await server.wait_closed()
        ctx = calls[0]
        return {
            "calls_during": calls_during,
            "calls": len(calls),
            "message": ctx["message"],
            "errno": getattr(ctx.get("exception"), "errno", None),
            "socket_type": type(ctx.get("socket")).__name__,
            "socket_is_listener": ctx["_listener"],
            "elapsed": elapsed,
        }

    loop = tideloop.new_event_loop(backend=backend)
    try:
        print(json.dumps(loop.run_until_complete(main())))
    finally:
        loop.close()
    """
)


@pytest.mark.parametrize("resume", ["transport", "timer", "retries"])
def test_emfile_backoff_reports_once_and_serves_queued_clients(loop_kind: str, resume: str) -> None:
    if loop_kind == "asyncio":
        pytest.skip(
            "tideloop-specific: asyncio reports every failed accept and piles up "
            "retry timers (CPython gh-151615)"
        )
    backend = loop_kind.split("-", 1)[1]
    src = str(Path(tideloop.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-c", EMFILE_SCRIPT, backend, resume],
        capture_output=True,
        text=True,
        timeout=40,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["calls_during"] == 1
    assert result["calls"] == 1
    assert result["message"] == "socket.accept() out of system resource"
    assert result["errno"] == errno.EMFILE
    assert result["socket_type"] == "TransportSocket"
    assert result["socket_is_listener"] is True
    if resume == "transport":
        # The retry timer was pushed out to 120 s: a released transport fd
        # resumed accepting.
        assert result["elapsed"] < 10
