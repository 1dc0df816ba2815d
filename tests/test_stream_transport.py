"""Stream transports over TCP and Unix sockets (src/tideloop/_transports/_stream.py)
and the ways to make them (create_connection, create_unix_connection,
connect_accepted_socket in src/tideloop/_net.py).

Every test runs on stock asyncio (the oracle) and on tideloop with each
backend, and asserts only what protocols and users observe: the callbacks a
protocol gets and their order, what the peer receives, exceptions and their
messages, exception-handler contexts. Loopback and AF_UNIX only; no sleeps:
tests wait on futures, and ``spin()`` only lets the loop turn.

tideloop gathers the writes of one loop iteration and sends them at its end
(DESIGN.md §4); ``get_write_buffer_size()`` sends them first, so it answers
as asyncio does (tests/test_transport_fidelity.py).
"""

from __future__ import annotations

import asyncio
import errno
import os
import random
import socket
import ssl
import sys
import tempfile
from typing import Any

import pytest

# Hypothesis keeps a cache under ./.hypothesis by default; with this
# project's ``norecursedirs`` (which replaces pytest's defaults) that
# directory then breaks the next collection. Keep it out of the checkout.
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(tempfile.gettempdir(), "tideloop-hypothesis")
)

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import ErrorLog
from .support.streams import (
    HAS_IPV6,
    Echo,
    Loop,
    Recorder,
    close_server,
    echo_server,
    payload,
    raw_peer,
    read_exactly,
    read_until_eof,
    roundtrip,
    run,
    set_linger_reset,
    short_tmpdir,
    small_buffer_socket,
    spin,
)

pytestmark = pytest.mark.timeout(30)

PY312 = sys.version_info >= (3, 12)
PY313 = sys.version_info >= (3, 13)
needs_ipv6 = pytest.mark.skipif(not HAS_IPV6, reason="no IPv6 loopback")


def refused_addr() -> tuple[socket.socket, tuple[str, int]]:
    """A bound, non-listening socket: connecting to its address is refused
    (the caller keeps the socket open so the port stays taken)."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    return holder, holder.getsockname()


def stream_info(addr: tuple[Any, ...], family: int = socket.AF_INET) -> tuple[Any, ...]:
    return (family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", addr)


def fake_getaddrinfo(loop: Loop, infos: list[Any]) -> list[tuple[Any, ...]]:
    """Make loop.getaddrinfo (instance patch) answer ``infos``; returns the call log."""
    calls: list[tuple[Any, ...]] = []

    async def getaddrinfo(host: Any, port: Any, **kw: Any) -> list[Any]:
        calls.append((host, port))
        return list(infos)

    loop.getaddrinfo = getaddrinfo  # type: ignore[method-assign]
    return calls


def connect_failed(addr: tuple[str, int]) -> str:
    return f"[Errno {errno.ECONNREFUSED}] Connect call failed {addr!r}"


def bind_failed_message(addr: Any, err: OSError) -> str:
    # 3.11 and 3.12 use err.strerror, 3.13 str(err).
    detail = str(err).lower() if PY313 else err.strerror.lower()
    return f"error while attempting to bind on address {addr!r}: {detail}"


def eaddrinuse() -> OSError:
    return OSError(errno.EADDRINUSE, os.strerror(errno.EADDRINUSE))


# -- create_connection -----------------------------------------------------------------


def test_create_connection_host_port(loop: Loop) -> None:
    async def main() -> None:
        server, addr = await echo_server(loop)
        made: list[Any] = []

        def factory() -> Recorder:
            pr = Recorder(loop)
            made.append(pr)
            return pr

        tr, pr = await loop.create_connection(factory, "127.0.0.1", addr[1])
        assert made == [pr]
        # connection_made ran before create_connection returned, with this transport.
        assert pr.events == ["made"]
        assert pr.transport is tr
        assert isinstance(tr, asyncio.Transport)
        assert tr.get_protocol() is pr
        assert tr.get_extra_info("peername") == addr
        assert tr.get_extra_info("sockname")[0] == "127.0.0.1"
        tr.write(b"hello")
        assert await pr.wait_bytes(5) == b"hello"
        tr.close()
        assert await pr.lost is None
        pr.check()
        await close_server(server)

    run(loop, main())


def test_create_connection_port_as_string(loop: Loop) -> None:
    async def main() -> None:
        server, addr = await echo_server(loop)
        tr, pr = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", str(addr[1]))
        assert tr.get_extra_info("peername") == addr
        tr.close()
        await pr.lost
        await close_server(server)

    run(loop, main())


@needs_ipv6
def test_create_connection_ipv6(loop: Loop) -> None:
    async def main() -> None:
        server, addr = await echo_server(loop, "::1")
        tr, pr = await loop.create_connection(lambda: Recorder(loop), "::1", addr[1])
        peer = tr.get_extra_info("peername")
        assert peer[:2] == ("::1", addr[1])
        assert tr.get_extra_info("socket").family == socket.AF_INET6
        tr.write(b"six")
        assert await pr.wait_bytes(3) == b"six"
        tr.close()
        await pr.lost
        await close_server(server)

    run(loop, main())


def test_create_connection_with_sock(loop: Loop) -> None:
    async def main() -> None:
        server, addr = await echo_server(loop)
        sock = socket.create_connection(addr)  # connected, blocking
        fd = sock.fileno()
        tr, pr = await loop.create_connection(lambda: Recorder(loop), sock=sock)
        assert sock.getblocking() is False
        tsock = tr.get_extra_info("socket")
        assert isinstance(tsock, asyncio.trsock.TransportSocket)
        assert tsock.fileno() == fd
        assert tr.get_extra_info("peername") == addr
        tr.write(b"via sock")
        assert await pr.wait_bytes(8) == b"via sock"
        tr.close()
        assert await pr.lost is None
        assert sock.fileno() == -1  # the transport closed the socket
        await close_server(server)

    run(loop, main())


def test_create_connection_local_addr(loop: Loop) -> None:
    async def main() -> None:
        peers: list[Echo] = []
        server = await loop.create_server(lambda: Echo(peers), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, pr = await loop.create_connection(
            lambda: Recorder(loop), "127.0.0.1", port, local_addr=("127.0.0.1", 0)
        )
        local = tr.get_extra_info("sockname")
        assert local[0] == "127.0.0.1" and local[1] != 0
        tr.write(b"x")
        await pr.wait_bytes(1)
        assert peers[0].transport.get_extra_info("peername") == local
        tr.close()
        await pr.lost
        await close_server(server)

    run(loop, main())


def test_create_connection_local_addr_in_use(loop: Loop) -> None:
    async def main() -> tuple[Any, Any]:
        server, addr = await echo_server(loop)
        try:
            with socket.create_server(("127.0.0.1", 0)) as taken:
                laddr = taken.getsockname()
                with pytest.raises(OSError) as info:
                    await loop.create_connection(
                        lambda: Recorder(loop), "127.0.0.1", addr[1], local_addr=laddr
                    )
        finally:
            await close_server(server)
        return info.value, laddr

    exc, laddr = run(loop, main())
    assert type(exc) is OSError
    assert exc.errno == errno.EADDRINUSE
    assert exc.strerror == bind_failed_message(laddr, eaddrinuse())


def test_create_connection_refused(loop: Loop) -> None:
    holder, addr = refused_addr()

    async def main() -> None:
        with pytest.raises(ConnectionRefusedError) as info:
            await loop.create_connection(lambda: Recorder(loop), *addr)
        assert info.value.errno == errno.ECONNREFUSED
        assert str(info.value) == connect_failed(addr)

    with holder:
        run(loop, main())


def test_create_connection_several_refused_addresses(loop: Loop) -> None:
    h1, a1 = refused_addr()
    h2, a2 = refused_addr()

    async def main() -> None:
        calls = fake_getaddrinfo(loop, [stream_info(a1), stream_info(a2)])
        with pytest.raises(OSError) as info:
            await loop.create_connection(lambda: Recorder(loop), "tideloop.test", 80)
        assert calls == [("tideloop.test", 80)]
        assert type(info.value) is OSError
        assert str(info.value) == (
            f"Multiple exceptions: {connect_failed(a1)}, {connect_failed(a2)}"
        )

    with h1, h2:
        run(loop, main())


def test_create_connection_same_error_twice_raises_it(loop: Loop) -> None:
    h1, a1 = refused_addr()

    async def main() -> None:
        fake_getaddrinfo(loop, [stream_info(a1), stream_info(a1)])
        with pytest.raises(ConnectionRefusedError) as info:
            await loop.create_connection(lambda: Recorder(loop), "tideloop.test", 80)
        assert str(info.value) == connect_failed(a1)

    with h1:
        run(loop, main())


def test_create_connection_empty_getaddrinfo(loop: Loop) -> None:
    async def main() -> None:
        fake_getaddrinfo(loop, [])
        with pytest.raises(OSError) as info:
            await loop.create_connection(lambda: Recorder(loop), "tideloop.test", 80)
        assert type(info.value) is OSError
        assert str(info.value) == "getaddrinfo() returned empty list"

    run(loop, main())


@pytest.mark.parametrize("delay", [None, 0.25, 30.0])
def test_create_connection_falls_through_to_second_address(loop: Loop, delay: Any) -> None:
    """First address refused, second good: the connection ends up on the
    second, with and without Happy Eyeballs (a long delay must not be waited
    out: a failed attempt starts the next one at once)."""
    holder, bad = refused_addr()

    async def main() -> None:
        server, good = await echo_server(loop)
        fake_getaddrinfo(loop, [stream_info(bad), stream_info(good)])
        t0 = loop.time()
        tr, pr = await loop.create_connection(
            lambda: Recorder(loop), "tideloop.test", 80, happy_eyeballs_delay=delay
        )
        assert loop.time() - t0 < 10
        assert tr.get_extra_info("peername") == good
        tr.write(b"eyeballs")
        assert await pr.wait_bytes(8) == b"eyeballs"
        tr.close()
        await pr.lost
        await close_server(server)

    with holder:
        run(loop, main())


def test_happy_eyeballs_first_address_hangs(loop: Loop) -> None:
    """The first address never answers (a listener whose accept queue is
    full drops SYNs): Happy Eyeballs starts the second attempt after the
    delay, which wins; the hanging attempt is cancelled and its socket closed."""
    lsn = socket.socket()
    lsn.bind(("127.0.0.1", 0))
    lsn.listen(0)  # an accept queue of one
    filler = socket.socket()
    filler.setblocking(False)

    async def main() -> None:
        hang = lsn.getsockname()
        await loop.sock_connect(filler, hang)  # takes the only slot
        server, good = await echo_server(loop)
        fake_getaddrinfo(loop, [stream_info(hang), stream_info(good)])
        tr, pr = await loop.create_connection(
            lambda: Recorder(loop), "tideloop.test", 80, happy_eyeballs_delay=0.05
        )
        assert tr.get_extra_info("peername") == good
        tr.write(b"won")
        assert await pr.wait_bytes(3) == b"won"
        tr.close()
        await pr.lost
        await close_server(server)

    with lsn, filler:
        run(loop, main())


@needs_ipv6
@pytest.mark.parametrize(
    ("interleave", "delay", "expected_family"),
    [
        (None, None, socket.AF_INET),  # order kept: the second IPv4 address wins
        (1, None, socket.AF_INET6),  # v4, v6, v4: the IPv6 address comes second
        (None, 30.0, socket.AF_INET6),  # happy eyeballs implies interleave=1
        (2, None, socket.AF_INET),  # two IPv4 first
    ],
)
def test_create_connection_interleave(
    loop: Loop, interleave: Any, delay: Any, expected_family: int
) -> None:
    holder, bad = refused_addr()

    async def main() -> None:
        server4, good4 = await echo_server(loop, "127.0.0.1")
        server6, good6 = await echo_server(loop, "::1")
        fake_getaddrinfo(
            loop,
            [
                stream_info(bad),
                stream_info(good4),
                stream_info(good6, socket.AF_INET6),
            ],
        )
        tr, pr = await loop.create_connection(
            lambda: Recorder(loop),
            "tideloop.test",
            80,
            happy_eyeballs_delay=delay,
            interleave=interleave,
        )
        assert tr.get_extra_info("socket").family == expected_family
        tr.close()
        await pr.lost
        await close_server(server4)
        await close_server(server6)

    with holder:
        run(loop, main())


@pytest.mark.skipif(not PY312, reason="all_errors is new in Python 3.12")
@pytest.mark.parametrize("delay", [None, 0.25])
def test_create_connection_all_errors(loop: Loop, delay: Any) -> None:
    h1, a1 = refused_addr()
    h2, a2 = refused_addr()

    async def main() -> None:
        fake_getaddrinfo(loop, [stream_info(a1), stream_info(a2)])
        with pytest.raises(ExceptionGroup) as info:
            await loop.create_connection(
                lambda: Recorder(loop),
                "tideloop.test",
                80,
                happy_eyeballs_delay=delay,
                all_errors=True,
            )
        group = info.value
        assert type(group) is ExceptionGroup
        assert group.message == "create_connection failed"
        assert [type(e) for e in group.exceptions] == [ConnectionRefusedError] * 2
        assert [str(e) for e in group.exceptions] == [connect_failed(a1), connect_failed(a2)]

    with h1, h2:
        run(loop, main())


@pytest.mark.skipif(not PY312, reason="all_errors is new in Python 3.12")
def test_create_connection_all_errors_single_address(loop: Loop) -> None:
    holder, addr = refused_addr()

    async def main() -> None:
        with pytest.raises(ExceptionGroup) as info:
            await loop.create_connection(lambda: Recorder(loop), *addr, all_errors=True)
        assert [str(e) for e in info.value.exceptions] == [connect_failed(addr)]

    with holder:
        run(loop, main())


def _arg_error_cases() -> list[Any]:
    return [
        pytest.param(
            {"host": "127.0.0.1", "port": 1, "server_hostname": "x"},
            ValueError,
            "server_hostname is only meaningful with ssl",
            id="server_hostname-without-ssl",
        ),
        pytest.param(
            {"host": "127.0.0.1", "port": 1, "ssl_handshake_timeout": 1.0},
            ValueError,
            "ssl_handshake_timeout is only meaningful with ssl",
            id="handshake-timeout-without-ssl",
        ),
        pytest.param(
            {"host": "127.0.0.1", "port": 1, "ssl_shutdown_timeout": 1.0},
            ValueError,
            "ssl_shutdown_timeout is only meaningful with ssl",
            id="shutdown-timeout-without-ssl",
        ),
        pytest.param(
            {"port": 1, "ssl": True},
            ValueError,
            "You must set server_hostname when using ssl without a host",
            id="ssl-without-host",
        ),
        pytest.param(
            {"host": "127.0.0.1", "port": 1, "sock": "SOCK"},
            ValueError,
            "host/port and sock can not be specified at the same time",
            id="host-and-sock",
        ),
        pytest.param(
            {"port": 1, "sock": "SOCK"},
            ValueError,
            "host/port and sock can not be specified at the same time",
            id="port-and-sock",
        ),
        pytest.param(
            {},
            ValueError,
            "host and port was not specified and no sock specified",
            id="neither",
        ),
        pytest.param(
            {"sock": "DGRAM"},
            ValueError,
            "A Stream Socket was expected, got {sock!r}",
            id="datagram-sock",
        ),
        pytest.param(
            {"sock": "SSLSOCK"},
            TypeError,
            "Socket cannot be of type SSLSocket",
            id="ssl-socket",
        ),
    ]


@pytest.mark.parametrize(("kwargs", "exc_type", "message"), _arg_error_cases())
def test_create_connection_argument_errors(
    loop: Loop, kwargs: dict[str, Any], exc_type: type[BaseException], message: str
) -> None:
    kwargs = dict(kwargs)
    made: list[Any] = []
    with socket.socket() as stream, socket.socket(type=socket.SOCK_DGRAM) as dgram:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        with ctx.wrap_socket(socket.socket(), do_handshake_on_connect=False) as sslsock:
            chosen = {"SOCK": stream, "DGRAM": dgram, "SSLSOCK": sslsock}.get(kwargs.get("sock"))
            if chosen is not None:
                kwargs["sock"] = chosen
            expected = message.format(sock=chosen)

            async def main() -> None:
                with pytest.raises(exc_type) as info:
                    await loop.create_connection(lambda: made.append(1), **kwargs)  # type: ignore[arg-type, return-value]
                assert type(info.value) is exc_type
                assert str(info.value) == expected

            run(loop, main())
    assert made == []  # the protocol factory was never called


# -- Unix sockets and accepted sockets -------------------------------------------------


def test_unix_connection_echo_and_addresses(loop: Loop) -> None:
    path = os.path.join(short_tmpdir(), "s")

    async def main() -> None:
        peers: list[Echo] = []
        server = await loop.create_unix_server(lambda: Echo(peers), path)
        tr, pr = await loop.create_unix_connection(lambda: Recorder(loop), path)
        assert pr.events == ["made"]
        assert tr.get_extra_info("peername") == path
        assert tr.get_extra_info("sockname") == ""
        tsock = tr.get_extra_info("socket")
        assert tsock.family == socket.AF_UNIX
        data = payload(300_000)
        tr.write(data)
        assert await pr.wait_bytes(len(data)) == data
        assert peers[0].transport.get_extra_info("peername") == ""
        assert peers[0].transport.get_extra_info("sockname") == path
        tr.write_eof()
        await pr.eof
        assert await pr.lost is None
        assert pr.events[-2:] == ["eof", "lost"]
        pr.check()
        await close_server(server)

    try:
        run(loop, main())
    finally:
        if os.path.exists(path):
            os.unlink(path)
        os.rmdir(os.path.dirname(path))


def test_unix_connection_with_sock(loop: Loop) -> None:
    a, b = socket.socketpair()

    async def main() -> None:
        tr, pr = await loop.create_unix_connection(lambda: Recorder(loop), sock=a)
        assert a.getblocking() is False
        b.sendall(b"pair")
        assert await pr.wait_bytes(4) == b"pair"
        tr.close()
        assert await pr.lost is None

    with b:
        run(loop, main())


def test_unix_connection_missing_path(loop: Loop) -> None:
    path = os.path.join(short_tmpdir(), "missing")

    async def main() -> None:
        with pytest.raises(FileNotFoundError):
            await loop.create_unix_connection(lambda: Recorder(loop), path)

    try:
        run(loop, main())
    finally:
        os.rmdir(os.path.dirname(path))


@pytest.mark.parametrize(
    ("kwargs", "exc_type", "message"),
    [
        pytest.param(
            {"path": "/tmp/x", "sock": "UNIX"},
            ValueError,
            "path and sock can not be specified at the same time",
            id="path-and-sock",
        ),
        pytest.param({}, ValueError, "no path and sock were specified", id="neither"),
        pytest.param(
            {"sock": "TCP"},
            ValueError,
            "A UNIX Domain Stream Socket was expected, got {sock!r}",
            id="tcp-sock",
        ),
        pytest.param(
            {"sock": "UNIXDGRAM"},
            ValueError,
            "A UNIX Domain Stream Socket was expected, got {sock!r}",
            id="dgram-sock",
        ),
        pytest.param(
            {"path": "/tmp/x", "server_hostname": "x"},
            ValueError,
            "server_hostname is only meaningful with ssl",
            id="server_hostname-without-ssl",
        ),
        pytest.param(
            {"path": "/tmp/x", "ssl_handshake_timeout": 1.0},
            ValueError,
            "ssl_handshake_timeout is only meaningful with ssl",
            id="handshake-timeout-without-ssl",
        ),
        pytest.param(
            {"path": "/tmp/x", "ssl": "CTX"},
            ValueError,
            "you have to pass server_hostname when using ssl",
            id="ssl-without-server_hostname",
        ),
    ],
)
def test_unix_connection_argument_errors(
    loop: Loop, kwargs: dict[str, Any], exc_type: type[BaseException], message: str
) -> None:
    kwargs = dict(kwargs)
    with (
        socket.socket(socket.AF_UNIX) as unix,
        socket.socket() as tcp,
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as udgram,
    ):
        chosen = {"UNIX": unix, "TCP": tcp, "UNIXDGRAM": udgram}.get(kwargs.get("sock"))
        if chosen is not None:
            kwargs["sock"] = chosen
        if kwargs.get("ssl") == "CTX":
            kwargs["ssl"] = ssl.create_default_context()
        expected = message.format(sock=chosen)

        async def main() -> None:
            with pytest.raises(exc_type) as info:
                await loop.create_unix_connection(lambda: Recorder(loop), **kwargs)
            assert str(info.value) == expected

        run(loop, main())


def test_connect_accepted_socket(loop: Loop) -> None:
    async def main() -> None:
        with socket.create_server(("127.0.0.1", 0)) as lsn:
            client = socket.create_connection(lsn.getsockname())
            conn, caddr = lsn.accept()
        with client:
            tr, pr = await loop.connect_accepted_socket(lambda: Recorder(loop), conn)
            assert pr.events == ["made"]
            assert conn.getblocking() is False
            assert tr.get_extra_info("peername") == caddr
            assert tr.get_extra_info("sockname") == client.getpeername()
            client.sendall(b"accepted")
            assert await pr.wait_bytes(8) == b"accepted"
            tr.write(b"reply")
            client.setblocking(False)
            assert await read_exactly(loop, client, 5) == b"reply"
            client.shutdown(socket.SHUT_WR)
            await pr.eof
            assert await pr.lost is None
            pr.check()

    run(loop, main())


def test_connect_accepted_socket_argument_errors(loop: Loop) -> None:
    async def main() -> None:
        with socket.socket(type=socket.SOCK_DGRAM) as dgram:
            with pytest.raises(ValueError) as info:
                await loop.connect_accepted_socket(lambda: Recorder(loop), dgram)
            assert str(info.value) == f"A Stream Socket was expected, got {dgram!r}"
        with socket.socket() as sock:
            with pytest.raises(ValueError) as info:
                await loop.connect_accepted_socket(
                    lambda: Recorder(loop), sock, ssl_handshake_timeout=1.0
                )
            assert str(info.value) == "ssl_handshake_timeout is only meaningful with ssl"
            with pytest.raises(ValueError) as info:
                await loop.connect_accepted_socket(
                    lambda: Recorder(loop), sock, ssl_shutdown_timeout=1.0
                )
            assert str(info.value) == "ssl_shutdown_timeout is only meaningful with ssl"

    run(loop, main())


# -- writing ---------------------------------------------------------------------------


def test_write_and_writelines_keep_order(loop: Loop) -> None:
    async def main() -> None:
        tr, pr, peer = await raw_peer(loop)
        with peer:
            tr.write(b"a")
            tr.writelines([b"b", bytearray(b"c"), memoryview(b"d")])
            tr.write(b"")
            tr.writelines([])
            tr.write(bytearray(b"e"))
            tr.write(memoryview(b"xfx")[1:2])
            tr.writelines(iter([b"g", b"h"]))
            tr.close()
            assert await read_until_eof(loop, peer) == b"abcdefgh"
            assert await pr.lost is None
            pr.check()

    run(loop, main())


def test_write_mutable_buffers_are_copied(loop: Loop) -> None:
    """The peer gets what the buffer held when write() was called."""

    async def main() -> None:
        tr, pr, peer = await raw_peer(loop)
        with peer:
            buf = bytearray(b"original")
            tr.write(buf)
            buf[:] = b"MUTATED!"
            other = bytearray(b"second")
            tr.write(memoryview(other))
            other[:] = b"XXXXXX"
            lines = [bytearray(b"third")]
            tr.writelines(lines)
            lines[0][:] = b"YYYYY"
            tr.close()
            assert await read_until_eof(loop, peer) == b"originalsecondthird"
            await pr.lost

    run(loop, main())


@pytest.mark.parametrize(
    ("data", "name"),
    [("text", "str"), (None, "NoneType"), (123, "int"), ([b"x"], "list")],
)
def test_write_rejects_non_bytes(loop: Loop, data: Any, name: str) -> None:
    async def main() -> None:
        tr, pr, peer = await raw_peer(loop)
        with peer:
            with pytest.raises(TypeError) as info:
                tr.write(data)
            assert str(info.value) == f"data argument must be a bytes-like object, not {name!r}"
            assert not tr.is_closing()
            tr.write(b"still fine")
            tr.close()
            assert await read_until_eof(loop, peer) == b"still fine"
            await pr.lost

    run(loop, main())


def test_writelines_rejects_str_items(loop: Loop) -> None:
    """Nothing of a rejected writelines() call is sent; the message is the
    running Python's (3.11: bytes.join, 3.12+: memoryview())."""

    async def main() -> None:
        tr, pr, peer = await raw_peer(loop)
        with peer:
            with pytest.raises(TypeError) as info:
                tr.writelines([b"lost", "text"])
            if PY312:
                expected = "memoryview: a bytes-like object is required, not 'str'"
            else:
                expected = "sequence item 1: expected a bytes-like object, str found"
            assert str(info.value) == expected
            tr.write(b"kept")
            tr.close()
            assert await read_until_eof(loop, peer) == b"kept"
            await pr.lost

    run(loop, main())


def test_write_after_write_eof(loop: Loop) -> None:
    async def main() -> None:
        tr, pr, peer = await raw_peer(loop)
        with peer:
            assert tr.can_write_eof() is True
            tr.write(b"before")
            tr.write_eof()
            tr.write_eof()  # idempotent
            with pytest.raises(RuntimeError) as info:
                tr.write(b"after")
            assert str(info.value) == "Cannot call write() after write_eof()"
            with pytest.raises(RuntimeError) as info:
                tr.write(b"")
            assert str(info.value) == "Cannot call write() after write_eof()"
            # The peer reads the data, then EOF; the other direction still works.
            assert await read_until_eof(loop, peer) == b"before"
            assert not tr.is_closing()
            await loop.sock_sendall(peer, b"reply")
            assert await pr.wait_bytes(5) == b"reply"
            peer.shutdown(socket.SHUT_WR)
            await pr.eof
            assert await pr.lost is None
            assert pr.events == ["made", "data", "eof", "lost"]

    run(loop, main())


def test_writelines_after_write_eof(loop: Loop) -> None:
    async def main() -> list[str]:
        tr, pr, peer = await raw_peer(loop)
        messages = []
        with peer:
            tr.write_eof()
            for lines in ([b"after"], []):
                try:
                    tr.writelines(lines)
                except RuntimeError as exc:
                    messages.append(str(exc))
            tr.close()
            assert await read_until_eof(loop, peer) == b""
            await pr.lost
        return messages

    # 3.11's writelines() is the base class's join-then-write().
    method = "writelines" if PY312 else "write"
    assert run(loop, main()) == [f"Cannot call {method}() after write_eof()"] * 2


def test_write_eof_after_peer_left(loop: Loop, errors: ErrorLog) -> None:
    """The peer closed unnoticed (reading paused); write() hands the data to
    the kernel, the peer's kernel answers with a reset, and write_eof()'s
    shutdown() fails: asyncio raises that to the caller of write_eof()."""

    async def main() -> Any:
        tr, pr, peer = await raw_peer(loop)
        tr.pause_reading()
        peer.close()
        await spin()
        tr.write(b"x")
        try:
            tr.write_eof()
        except OSError as exc:
            outcome: Any = exc
        else:
            outcome = None
        await spin()
        handler_calls = errors.take()
        tr.close()
        await pr.lost
        return outcome, handler_calls

    outcome, handler_calls = run(loop, main())
    assert handler_calls == []
    assert type(outcome) is OSError
    assert outcome.errno == errno.ENOTCONN


def test_write_eof_flushes_large_pending_data_first(loop: Loop) -> None:
    async def main() -> None:
        tr, pr, peer = await raw_peer(loop, small_buffers=True)
        with peer:
            data = payload(2 * 1024 * 1024)
            tr.write(data)
            tr.write_eof()
            assert await read_until_eof(loop, peer) == data
            tr.close()
            assert await pr.lost is None

    run(loop, main())


@pytest.mark.parametrize("keep_open", [True, False, None])
def test_half_close_depends_on_eof_received(loop: Loop, keep_open: Any) -> None:
    """eof_received() returning true keeps the transport open for writing;
    false or None closes it."""

    async def main() -> None:
        tr, pr, peer = await raw_peer(loop, lambda: Recorder(loop, eof_result=keep_open))
        with peer:
            await loop.sock_sendall(peer, b"request")
            peer.shutdown(socket.SHUT_WR)
            await pr.eof
            assert pr.data == b"request"
            if keep_open:
                assert not tr.is_closing()
                await spin()
                assert not pr.lost.done()
                tr.write(b"response")
                tr.close()
                assert await read_until_eof(loop, peer) == b"response"
            else:
                assert tr.is_closing()
                assert await read_until_eof(loop, peer) == b""
            assert await pr.lost is None
            assert pr.events == ["made", "data", "eof", "lost"]
            pr.check()

    run(loop, main())


def test_close_flushes_pending_data_then_connection_lost(loop: Loop) -> None:
    async def main() -> None:
        tr, pr, peer = await raw_peer(loop, small_buffers=True)
        with peer:
            data = payload(3 * 1024 * 1024)
            tr.write(data)
            await spin()
            assert tr.get_write_buffer_size() > 0  # the peer has not read yet
            tr.close()
            assert tr.is_closing()
            tr.close()  # idempotent
            await spin()
            assert not pr.lost.done()  # waits for the buffer to drain
            assert await read_until_eof(loop, peer) == data
            assert await pr.lost is None
            assert pr.events.count("lost") == 1
            pr.check()

    run(loop, main())


def test_close_without_pending_data(loop: Loop) -> None:
    async def main() -> None:
        tr, pr, peer = await raw_peer(loop)
        with peer:
            assert not tr.is_closing()
            tr.close()
            assert tr.is_closing()
            assert not pr.lost.done()  # connection_lost is called soon, not now
            assert await pr.lost is None
            assert tr.is_closing()
            assert await read_until_eof(loop, peer) == b""
            assert pr.events == ["made", "lost"]
            tr.close()  # still harmless
            tr.abort()
            await spin()
            assert pr.events == ["made", "lost"]

    run(loop, main())


def test_abort_drops_pending_data(loop: Loop) -> None:
    async def main() -> None:
        tr, pr, peer = await raw_peer(loop, small_buffers=True)
        with peer:
            data = payload(4 * 1024 * 1024)
            tr.write(data)
            await spin()
            assert tr.get_write_buffer_size() > 0
            tr.abort()
            assert tr.is_closing()
            assert tr.get_write_buffer_size() == 0
            assert await pr.lost is None
            assert pr.events.count("lost") == 1
            received = bytearray()
            try:
                received += await read_until_eof(loop, peer)
            except ConnectionResetError:
                pass
            assert len(received) < len(data)
            assert data.startswith(bytes(received))
            pr.check()

    run(loop, main())


def test_write_then_abort_in_one_callback(loop: Loop) -> None:
    """asyncio hands a write() to the kernel at once when nothing is
    buffered, so a small write followed by abort() in the same callback still
    reaches the peer; only what the kernel refused is dropped."""

    async def main() -> None:
        tr, pr, peer = await raw_peer(loop)
        with peer:
            tr.write(b"last words")
            tr.abort()
            assert await read_until_eof(loop, peer) == b"last words"
            assert await pr.lost is None

    run(loop, main())


def test_write_after_close_is_ignored(loop: Loop) -> None:
    async def main() -> None:
        tr, pr, peer = await raw_peer(loop)
        with peer:
            tr.close()
            tr.write(b"ignored")  # no exception
            # (Not writelines(): asyncio 3.12/3.13 raise TypeError there, as
            # close() sets their _write_ready to None; not worth mirroring.)
            assert await read_until_eof(loop, peer) == b""
            await pr.lost
            tr.write(b"ignored too")
            assert tr.get_write_buffer_size() == 0

    run(loop, main())


def test_writes_while_loop_not_running(loop: Loop) -> None:
    async def connect() -> tuple[Any, Any, socket.socket]:
        return await raw_peer(loop)

    tr, pr, peer = run(loop, connect())
    with peer:
        tr.write(b"outside ")
        tr.writelines([b"the ", b"loop"])

        async def finish() -> bytes:
            tr.close()
            data = await read_until_eof(loop, peer)
            await pr.lost
            return data

        assert run(loop, finish()) == b"outside the loop"


@pytest.mark.parametrize("count", [2, 100, 1000])
def test_writes_in_one_callback_arrive_in_order(loop: Loop, count: int) -> None:
    """An HTTP-style header write then body write (and more) in one callback:
    the peer gets them all, in order, and once the iteration is over nothing
    is left buffered (the peer is reading; loopback takes this much at once)."""

    async def main() -> None:
        tr, pr, peer = await raw_peer(loop)
        with peer:
            pieces = [b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", b"hello"]
            pieces += [b"%04d" % i for i in range(count - 2)]
            sizes: asyncio.Future[int] = loop.create_future()

            def respond() -> None:
                for piece in pieces:
                    tr.write(piece)
                loop.call_soon(lambda: sizes.set_result(tr.get_write_buffer_size()))

            loop.call_soon(respond)
            size_next_iteration = await sizes
            expected = b"".join(pieces)
            assert await read_exactly(loop, peer, len(expected)) == expected
            tr.close()
            await pr.lost
            assert size_next_iteration == 0

    run(loop, main())


# -- extra info, protocol switching ----------------------------------------------------


def test_get_extra_info(loop: Loop) -> None:
    async def main() -> None:
        tr, pr, peer = await raw_peer(loop)
        with peer:
            tsock = tr.get_extra_info("socket")
            assert isinstance(tsock, asyncio.trsock.TransportSocket)
            assert tsock.family == socket.AF_INET
            assert tsock.type == socket.SOCK_STREAM
            assert tsock.getpeername() == peer.getsockname()
            assert tsock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
            assert tr.get_extra_info("sockname") == peer.getpeername()
            assert tr.get_extra_info("peername") == peer.getsockname()
            assert tr.get_extra_info("no such key") is None
            sentinel = object()
            assert tr.get_extra_info("no such key", sentinel) is sentinel
            assert tr.get_extra_info("sslcontext") is None
            tr.close()
            await pr.lost
            # Still answered after close: the values were captured up front.
            assert tr.get_extra_info("peername") == peer.getsockname()

    run(loop, main())


def test_set_protocol_mid_stream(loop: Loop) -> None:
    async def main() -> None:
        tr, first, peer = await raw_peer(loop)
        second = Recorder(loop)
        with peer:
            assert tr.get_protocol() is first
            await loop.sock_sendall(peer, b"one")
            await first.wait_bytes(3)
            tr.set_protocol(second)
            assert tr.get_protocol() is second
            await loop.sock_sendall(peer, b"two")
            peer.shutdown(socket.SHUT_WR)
            await second.lost
            assert first.data == b"one"
            assert first.events == ["made", "data"]
            assert second.data == b"two"
            # set_protocol() does not call connection_made.
            assert second.events == ["data", "eof", "lost"]

    run(loop, main())


class Buffered(asyncio.BufferedProtocol):
    def __init__(self, loop: Loop, size: int) -> None:
        self.size = size
        self.buf = bytearray(size)
        self.data = bytearray()
        self.hints: list[int] = []
        self.updates: list[int] = []
        self.events: list[str] = []
        self.transport: Any = None
        self.lost: asyncio.Future[BaseException | None] = loop.create_future()

    def connection_made(self, transport: Any) -> None:
        self.events.append("made")
        self.transport = transport

    def get_buffer(self, sizehint: int) -> Any:
        self.hints.append(sizehint)
        return memoryview(self.buf)

    def buffer_updated(self, nbytes: int) -> None:
        self.events.append("updated")
        assert 0 < nbytes <= self.size
        self.updates.append(nbytes)
        self.data += self.buf[:nbytes]

    def eof_received(self) -> None:
        self.events.append("eof")

    def connection_lost(self, exc: BaseException | None) -> None:
        self.events.append("lost")
        self.lost.set_result(exc)


@pytest.mark.parametrize("size", [7, 4096, 1024 * 1024])
def test_buffered_protocol_receives_exact_bytes(loop: Loop, size: int) -> None:
    async def main() -> None:
        _tr, pr, peer = await raw_peer(loop, lambda: Buffered(loop, size))
        with peer:
            data = payload(300 * 1024 + 3)
            await loop.sock_sendall(peer, data)
            peer.shutdown(socket.SHUT_WR)
            assert await pr.lost is None
            assert pr.data == data
            assert set(pr.hints) == {-1}
            assert all(0 < n <= size for n in pr.updates)
            assert pr.events[0] == "made"
            assert pr.events[-2:] == ["eof", "lost"]

    run(loop, main())


def test_switch_to_buffered_protocol_mid_stream(loop: Loop) -> None:
    async def main() -> None:
        tr, first, peer = await raw_peer(loop)
        second = Buffered(loop, 16)
        with peer:
            await loop.sock_sendall(peer, b"plain")
            await first.wait_bytes(5)
            tr.set_protocol(second)
            await loop.sock_sendall(peer, b"buffered-data")
            peer.shutdown(socket.SHUT_WR)
            assert await second.lost is None
            assert first.data == b"plain"
            assert second.data == b"buffered-data"

    run(loop, main())


class _SwitchOnData(Buffered):
    """A BufferedProtocol that hands the transport to ``then`` from inside
    its first ``buffer_updated`` call."""

    def __init__(self, loop: Loop, then: asyncio.BaseProtocol) -> None:
        super().__init__(loop, 64)
        self.then = then
        self.switched: asyncio.Future[None] = loop.create_future()

    def buffer_updated(self, nbytes: int) -> None:
        super().buffer_updated(nbytes)
        if self.transport.get_protocol() is self:
            self.transport.set_protocol(self.then)
            self.switched.set_result(None)


@pytest.mark.parametrize("paused", [False, True], ids=["reading", "paused"])
def test_switch_protocol_kind_inside_callback_and_while_paused(loop: Loop, paused: bool) -> None:
    # Buffered -> plain from inside buffer_updated, then plain -> buffered
    # (while reading, or while paused and then resumed): each byte reaches
    # the protocol of its time, through the right callbacks.
    async def main() -> None:
        plain = Recorder(loop)
        last = Buffered(loop, 64)
        tr, first, peer = await raw_peer(loop, lambda: _SwitchOnData(loop, plain))
        with peer:
            await loop.sock_sendall(peer, b"first")
            await first.switched
            await loop.sock_sendall(peer, b"second")
            await plain.wait_bytes(6)
            if paused:
                tr.pause_reading()
            tr.set_protocol(last)
            if paused:
                tr.resume_reading()
            await loop.sock_sendall(peer, b"third")
            peer.shutdown(socket.SHUT_WR)
            assert await last.lost is None
            assert (bytes(first.data), bytes(plain.data), bytes(last.data)) == (
                b"first",
                b"second",
                b"third",
            )
            assert plain.events == ["data"]
            assert last.events == ["updated", "eof", "lost"]

    run(loop, main())


class BadBuffer(Buffered):
    def __init__(self, loop: Loop, mode: str) -> None:
        super().__init__(loop, 16)
        self.mode = mode
        self.error = ZeroDivisionError("boom")

    def get_buffer(self, sizehint: int) -> Any:
        if self.mode == "empty":
            return bytearray()
        if self.mode == "raise-get":
            raise self.error
        return super().get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> None:
        if self.mode == "raise-updated":
            raise self.error
        super().buffer_updated(nbytes)


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("empty", "Fatal error: protocol.get_buffer() call failed."),
        ("raise-get", "Fatal error: protocol.get_buffer() call failed."),
        ("raise-updated", "Fatal error: protocol.buffer_updated() call failed."),
    ],
)
def test_buffered_protocol_errors(loop: Loop, errors: ErrorLog, mode: str, message: str) -> None:
    async def main() -> None:
        tr, pr, peer = await raw_peer(loop, lambda: BadBuffer(loop, mode))
        with peer:
            await loop.sock_sendall(peer, b"data")
            exc = await pr.lost
            if mode == "empty":
                assert type(exc) is RuntimeError
                assert str(exc) == "get_buffer() returned an empty buffer"
            else:
                assert exc is pr.error
            assert tr.is_closing()
            [ctx] = errors.take()
            assert ctx["message"] == message
            assert ctx["exception"] is exc
            assert ctx["transport"] is tr
            assert ctx["protocol"] is pr
            assert pr.events[-1] == "lost" and pr.events.count("lost") == 1
            # The transport closed with unread data (get_buffer failed before
            # the read): the kernel resets the connection.
            try:
                rest = await read_until_eof(loop, peer)
            except ConnectionResetError:
                assert mode != "raise-updated"
            else:
                assert rest == b""

    run(loop, main())


# -- reading flow control --------------------------------------------------------------


def test_pause_and_resume_reading(loop: Loop) -> None:
    async def main() -> None:
        tr, pr, peer = await raw_peer(loop)
        server, addr = await echo_server(loop)
        with peer:
            assert tr.is_reading() is True
            tr.pause_reading()
            tr.pause_reading()  # idempotent
            assert tr.is_reading() is False
            await loop.sock_sendall(peer, b"held")
            # Let the loop poll many times; another connection round-trips meanwhile.
            await spin(20)
            assert await roundtrip(loop, addr) == b"ping"
            await spin(20)
            assert pr.events == ["made"]
            tr.resume_reading()
            tr.resume_reading()  # idempotent
            assert tr.is_reading() is True
            assert await pr.wait_bytes(4) == b"held"
            tr.close()
            assert tr.is_reading() is False
            tr.pause_reading()  # harmless on a closing transport
            tr.resume_reading()
            assert tr.is_reading() is False
            await pr.lost
            await close_server(server)

    run(loop, main())


def test_pause_reading_in_connection_made(loop: Loop) -> None:
    class Paused(Recorder):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            transport.pause_reading()

    async def main() -> None:
        tr, pr, peer = await raw_peer(loop, lambda: Paused(loop))
        with peer:
            await loop.sock_sendall(peer, b"early")
            await spin(20)
            assert pr.events == ["made"]
            assert not tr.is_reading()
            tr.resume_reading()
            assert await pr.wait_bytes(5) == b"early"
            tr.close()
            await pr.lost

    run(loop, main())


def test_eof_is_held_while_paused(loop: Loop) -> None:
    async def main() -> None:
        tr, pr, peer = await raw_peer(loop)
        with peer:
            tr.pause_reading()
            peer.shutdown(socket.SHUT_WR)
            await spin(20)
            assert pr.events == ["made"]
            tr.resume_reading()
            await pr.eof
            assert await pr.lost is None

    run(loop, main())


# -- writing flow control --------------------------------------------------------------


def test_write_buffer_limits(loop: Loop) -> None:
    async def main() -> None:
        tr, pr, peer = await raw_peer(loop)
        with peer:
            assert tr.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
            assert tr.get_write_buffer_size() == 0
            tr.set_write_buffer_limits(high=1000)
            assert tr.get_write_buffer_limits() == (250, 1000)
            tr.set_write_buffer_limits(low=100)
            assert tr.get_write_buffer_limits() == (100, 400)
            tr.set_write_buffer_limits(high=10, low=3)
            assert tr.get_write_buffer_limits() == (3, 10)
            tr.set_write_buffer_limits(high=0)
            assert tr.get_write_buffer_limits() == (0, 0)
            tr.set_write_buffer_limits()
            assert tr.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
            for kwargs, text in [
                ({"high": 1, "low": 2}, "high (1) must be >= low (2) must be >= 0"),
                ({"high": -1}, "high (-1) must be >= low (-1) must be >= 0"),
                ({"high": 5, "low": -1}, "high (5) must be >= low (-1) must be >= 0"),
                ({"low": -4}, "high (-16) must be >= low (-4) must be >= 0"),
            ]:
                with pytest.raises(ValueError) as info:
                    tr.set_write_buffer_limits(**kwargs)
                assert str(info.value) == text
            assert tr.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
            # With the peer reading, small writes never pause, even at high=0.
            tr.set_write_buffer_limits(high=0)
            tr.write(b"abc")
            assert await read_exactly(loop, peer, 3) == b"abc"
            await spin()
            assert pr.pause_calls == 0
            tr.close()
            await pr.lost

    run(loop, main())


def test_pause_and_resume_writing_at_watermarks(loop: Loop) -> None:
    async def main() -> None:
        tr, pr, peer = await raw_peer(loop, small_buffers=True)
        with peer:
            chunk = 16 * 1024
            sent = bytearray()
            salt = 0
            # Write in one callback until the transport pauses the protocol.
            while pr.pause_calls == 0:
                assert len(sent) < 64 * 1024 * 1024, "pause_writing never called"
                piece = payload(chunk, salt)
                salt += chunk
                tr.write(piece)
                sent += piece
            assert tr.get_write_buffer_size() > 64 * 1024
            # More writes while paused do not pause again.
            for _ in range(4):
                piece = payload(chunk, salt)
                salt += chunk
                tr.write(piece)
                sent += piece
            await spin()
            assert pr.pause_calls == 1
            assert pr.resume_calls == 0
            assert not pr.writable.done()
            # The peer reads: the buffer drains below the low mark, the
            # protocol is resumed exactly once.
            reader = loop.create_task(read_exactly(loop, peer, len(sent)))
            await pr.writable
            assert pr.resume_calls == 1
            assert tr.get_write_buffer_size() <= 16 * 1024
            assert await reader == sent
            assert tr.get_write_buffer_size() == 0
            assert pr.pause_calls == 1 and pr.resume_calls == 1
            assert pr.events == ["made", "pause_writing", "resume_writing"]
            tr.close()
            await pr.lost

    run(loop, main())


def test_resume_writing_at_low_watermark_not_at_empty(loop: Loop) -> None:
    """resume_writing() comes once the buffer is at or below the low mark,
    while data may still be buffered (asyncio checks after every send)."""

    class Watch(Recorder):
        size_at_resume = -1

        def resume_writing(self) -> None:
            self.size_at_resume = self.transport.get_write_buffer_size()
            super().resume_writing()

    async def main() -> None:
        tr, pr, peer = await raw_peer(loop, lambda: Watch(loop), small_buffers=True)
        with peer:
            low, high = 1024 * 1024, 2 * 1024 * 1024
            tr.set_write_buffer_limits(high=high, low=low)
            data = payload(4 * 1024 * 1024)
            tr.write(data)
            assert pr.pause_calls == 1
            reader = loop.create_task(read_exactly(loop, peer, len(data)))
            await pr.writable
            # The kernel takes well under 1 MiB per send with these buffers.
            assert 0 < pr.size_at_resume <= low
            assert await reader == data
            tr.close()
            await pr.lost

    run(loop, main())


def test_write_from_resume_writing(loop: Loop) -> None:
    """A protocol may write from resume_writing(); nothing is lost."""

    class MoreOnResume(Recorder):
        def resume_writing(self) -> None:
            super().resume_writing()
            self.transport.write(b"<trailer>")

    async def main() -> None:
        tr, pr, peer = await raw_peer(loop, lambda: MoreOnResume(loop), small_buffers=True)
        with peer:
            data = payload(2 * 1024 * 1024)
            tr.write(data)
            assert pr.pause_calls == 1
            reader = loop.create_task(read_exactly(loop, peer, len(data) + 9))
            await pr.writable
            assert await reader == data + b"<trailer>"
            tr.close()
            await pr.lost

    run(loop, main())


def test_write_from_resume_writing_after_close(loop: Loop) -> None:
    """close() waits for the buffer to drain; if resume_writing() (called as
    it drains) writes more, asyncio sends that too before connection_lost."""

    class MoreOnResume(Recorder):
        def resume_writing(self) -> None:
            super().resume_writing()
            self.transport.write(b"<trailer>")

    async def main() -> None:
        tr, pr, peer = await raw_peer(loop, lambda: MoreOnResume(loop), small_buffers=True)
        with peer:
            data = payload(2 * 1024 * 1024)
            tr.write(data)
            assert pr.pause_calls == 1
            tr.close()
            received = await read_until_eof(loop, peer)
            assert await pr.lost is None
            assert len(received) == len(data) + 9
            assert received == data + b"<trailer>"

    run(loop, main())


def test_set_write_buffer_limits_can_pause(loop: Loop) -> None:
    async def main() -> None:
        tr, pr, peer = await raw_peer(loop, small_buffers=True)
        with peer:
            tr.set_write_buffer_limits(high=16 * 1024 * 1024)
            data = payload(2 * 1024 * 1024)
            tr.write(data)
            await spin()
            size = tr.get_write_buffer_size()
            assert 0 < size <= 16 * 1024 * 1024
            assert pr.pause_calls == 0
            tr.set_write_buffer_limits(high=size - 1, low=0)
            assert pr.pause_calls == 1  # at once, from set_write_buffer_limits()
            reader = loop.create_task(read_exactly(loop, peer, len(data)))
            await pr.writable
            assert tr.get_write_buffer_size() == 0
            assert await reader == data
            tr.close()
            await pr.lost

    run(loop, main())


def test_pause_writing_error_goes_to_handler(loop: Loop, errors: ErrorLog) -> None:
    class BadPause(Recorder):
        error = ZeroDivisionError("pause")

        def pause_writing(self) -> None:
            super().pause_writing()
            raise self.error

    async def main() -> None:
        tr, pr, peer = await raw_peer(loop, lambda: BadPause(loop), small_buffers=True)
        with peer:
            data = payload(4 * 1024 * 1024)
            tr.write(data)
            await spin()
            [ctx] = errors.take()
            assert ctx["message"] == "protocol.pause_writing() failed"
            assert ctx["exception"] is pr.error
            assert ctx["transport"] is tr
            assert ctx["protocol"] is pr
            assert not tr.is_closing()
            assert await read_exactly(loop, peer, len(data)) == data
            tr.close()
            assert await pr.lost is None

    run(loop, main())


# -- protocol errors -------------------------------------------------------------------


class Fragile(Echo):
    """Echo that fails on a magic message."""

    error = ZeroDivisionError("fragile")

    def __init__(self, registry: list[Any], where: str) -> None:
        super().__init__(registry)
        self.where = where
        self.armed = False
        self.lost: list[BaseException | None] = []

    def data_received(self, data: bytes) -> None:
        self.armed = self.armed or b"warm" in data
        if self.where == "data" and b"boom" in data:
            raise self.error
        super().data_received(data)

    def eof_received(self) -> None:
        if self.where == "eof" and self.armed:
            raise self.error
        return super().eof_received()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.append(exc)


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("data", "Fatal error: protocol.data_received() call failed."),
        ("eof", "Fatal error: protocol.eof_received() call failed."),
    ],
)
def test_protocol_error_closes_only_that_transport(
    loop: Loop, errors: ErrorLog, where: str, message: str
) -> None:
    async def main() -> None:
        peers: list[Fragile] = []
        server = await loop.create_server(lambda: Fragile(peers, where), "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()
        tr1, pr1 = await loop.create_connection(lambda: Recorder(loop), *addr)
        tr2, pr2 = await loop.create_connection(lambda: Recorder(loop), *addr)
        tr2.write(b"first")
        await pr2.wait_bytes(5)
        tr1.write(b"warm")
        await pr1.wait_bytes(4)
        if where == "data":
            tr1.write(b"boom")
        else:
            tr1.write_eof()
        await pr1.eof
        assert await pr1.lost is None
        [ctx] = errors.take()
        assert ctx["message"] == message
        assert ctx["exception"] is Fragile.error
        victim = ctx["protocol"]
        assert victim in peers
        assert ctx["transport"] is victim.transport
        assert victim.transport.is_closing()
        assert victim.lost == [Fragile.error]
        # The other connection is untouched.
        tr2.write(b"second")
        assert await pr2.wait_bytes(11) == b"firstsecond"
        assert not tr2.is_closing()
        tr2.close()
        await pr2.lost
        await close_server(server)
        pr1.check()
        pr2.check()

    run(loop, main())


class WriteThenRaise(asyncio.Protocol):
    """Answers, then fails in the same callback."""

    error = ValueError("after the reply")

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(b"reply:")
        self.transport.write(data)
        raise self.error


class BufferedWriteThenRaise(asyncio.BufferedProtocol):
    def __init__(self) -> None:
        self.buf = bytearray(1024)

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def get_buffer(self, sizehint: int) -> bytearray:
        return self.buf

    def buffer_updated(self, nbytes: int) -> None:
        self.transport.write(b"reply:")
        self.transport.write(bytes(self.buf[:nbytes]))
        raise WriteThenRaise.error


@pytest.mark.parametrize(
    "factory", [WriteThenRaise, BufferedWriteThenRaise], ids=["Protocol", "BufferedProtocol"]
)
def test_writes_before_a_protocol_error_are_sent(
    loop: Loop, errors: ErrorLog, factory: Any
) -> None:
    """asyncio's write() hands data to the kernel at once, so what a failing
    data_received/buffer_updated wrote before raising reaches the peer before
    the connection closes."""

    async def main() -> None:
        server = await loop.create_server(factory, "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()
        tr, pr = await loop.create_connection(lambda: Recorder(loop), *addr)
        tr.write(b"ping")
        await pr.eof
        assert bytes(pr.data) == b"reply:ping"
        await pr.lost
        [ctx] = errors.take()
        assert ctx["exception"] is WriteThenRaise.error
        await close_server(server)
        pr.check()

    run(loop, main())


# -- faults ----------------------------------------------------------------------------


def test_peer_reset_while_reading(loop: Loop) -> None:
    async def main() -> None:
        tr, pr, peer = await raw_peer(loop)
        tr2, pr2, peer2 = await raw_peer(loop)
        with peer2:
            await loop.sock_sendall(peer, b"hi")
            await pr.wait_bytes(2)
            set_linger_reset(peer)
            peer.close()
            exc = await pr.lost
            assert type(exc) is ConnectionResetError
            assert exc.errno == errno.ECONNRESET
            assert pr.events == ["made", "data", "lost"]
            assert tr.is_closing()
            # Other connections carry on.
            tr2.write(b"alive")
            assert await read_exactly(loop, peer2, 5) == b"alive"
            tr2.close()
            await pr2.lost

    run(loop, main())


@pytest.mark.parametrize("reading", [True, False])
def test_peer_reset_mid_write(loop: Loop, reading: bool) -> None:
    """The peer resets while the transport has data queued: connection_lost
    gets the error (which one depends on whether the read or the write side
    notices first), pending data is dropped, nothing goes to the handler."""

    async def main() -> None:
        tr, pr, peer = await raw_peer(loop, small_buffers=True)
        if not reading:
            tr.pause_reading()
        data = payload(8 * 1024 * 1024)
        tr.write(data)
        await spin()
        assert tr.get_write_buffer_size() > 0
        set_linger_reset(peer)
        peer.close()
        exc = await pr.lost
        expected = ConnectionResetError if reading else (ConnectionResetError, BrokenPipeError)
        assert isinstance(exc, expected), repr(exc)
        assert tr.is_closing()
        assert tr.get_write_buffer_size() == 0
        assert pr.events[-1] == "lost" and pr.events.count("lost") == 1
        tr.write(b"ignored")  # after connection loss: silently dropped
        pr.check()

    run(loop, main())


def test_peer_vanishes(loop: Loop) -> None:
    async def main() -> None:
        server, addr = await echo_server(loop)
        _tr, pr, peer = await raw_peer(loop)
        await loop.sock_sendall(peer, b"bye")
        peer.close()
        await pr.eof
        assert await pr.lost is None
        assert pr.events == ["made", "data", "eof", "lost"]
        assert pr.data == b"bye"
        assert await roundtrip(loop, addr) == b"ping"
        await close_server(server)

    run(loop, main())


def test_connection_lost_once_under_close_and_abort(loop: Loop) -> None:
    async def main() -> None:
        tr, pr, peer = await raw_peer(loop)
        with peer:
            tr.write(b"x")
            tr.close()
            tr.abort()
            tr.close()
            await pr.lost
            await spin()
            assert pr.events.count("lost") == 1
            pr.check()

    run(loop, main())


# -- no byte lost or reordered ---------------------------------------------------------


class ToggleEcho(asyncio.Protocol):
    """Echo with write flow control (pause reading while the peer does not
    keep up) plus scripted pause_reading/resume_reading toggles."""

    def __init__(self, loop: Loop, toggles: list[int], seen: list[Any]) -> None:
        self.loop = loop
        self.toggles = list(toggles)
        self.flow_paused = False
        self.holds = 0
        self.transport: Any = None
        seen.append(self)
        self.lost: asyncio.Future[BaseException | None] = loop.create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def _update(self) -> None:
        if self.flow_paused or self.holds:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()

    def _release(self, turns: int) -> None:
        if turns > 0:
            self.loop.call_soon(self._release, turns - 1)
            return
        self.holds -= 1
        self._update()

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)
        if self.toggles:
            turns = self.toggles.pop(0)
            if turns:
                self.holds += 1
                self._update()
                self.loop.call_soon(self._release, turns)

    def eof_received(self) -> None:
        return None

    def pause_writing(self) -> None:
        self.flow_paused = True
        self._update()

    def resume_writing(self) -> None:
        self.flow_paused = False
        self._update()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.set_result(exc)


async def _open_echo_pair(
    loop: Loop, kind: str, tmpdir: str | None, factory: Any
) -> tuple[Any, Any, Any]:
    """Server and client for ``kind``: tcp, unix, or either with small kernel
    buffers (so that flow control engages on both sides)."""
    small = kind.endswith("-small")
    family = socket.AF_UNIX if kind.startswith("unix") else socket.AF_INET
    lsn = small_buffer_socket(family) if small else socket.socket(family)
    client = small_buffer_socket(family) if small else socket.socket(family)
    try:
        if family == socket.AF_UNIX:
            assert tmpdir is not None
            lsn.bind(os.path.join(tmpdir, "s"))
            server = await loop.create_unix_server(factory, sock=lsn)
        else:
            lsn.bind(("127.0.0.1", 0))
            server = await loop.create_server(factory, sock=lsn)
    except BaseException:
        lsn.close()
        client.close()
        raise
    try:
        client.setblocking(False)
        await loop.sock_connect(client, lsn.getsockname())
    except BaseException:
        client.close()
        raise
    if family == socket.AF_UNIX:
        tr, pr = await loop.create_unix_connection(lambda: Recorder(loop), sock=client)
    else:
        tr, pr = await loop.create_connection(lambda: Recorder(loop), sock=client)
    return server, tr, pr


@settings(
    max_examples=20,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    sizes=st.lists(
        st.integers(1, 300 * 1024) | st.sampled_from([1, 64 * 1024 + 1, 300 * 1024]),
        min_size=1,
        max_size=8,
    ),
    batch=st.lists(st.booleans(), min_size=8, max_size=8),
    client_holds=st.lists(st.booleans(), min_size=8, max_size=8),
    toggles=st.lists(st.integers(0, 5), max_size=20),
    seed=st.integers(0, 2**32 - 1),
    kind=st.sampled_from(["tcp", "tcp-small", "unix", "unix-small"]),
)
def test_no_byte_lost_or_reordered(
    loop: Loop,
    sizes: list[int],
    batch: list[bool],
    client_holds: list[bool],
    toggles: list[int],
    seed: int,
    kind: str,
) -> None:
    """Random chunks through an echo server that toggles pause_reading() /
    resume_reading() (scripted, and for its own write flow control), with the
    client pausing its reading at random too: the client gets exactly what it
    sent."""
    rng = random.Random(seed)
    chunks = [rng.randbytes(n) for n in sizes]
    expected = b"".join(chunks)
    tmpdir = short_tmpdir() if kind.startswith("unix") else None

    async def main() -> None:
        seen: list[ToggleEcho] = []
        server, tr, pr = await _open_echo_pair(
            loop, kind, tmpdir, lambda: ToggleEcho(loop, toggles, seen)
        )
        for chunk, together, hold in zip(chunks, batch, client_holds, strict=False):
            if hold:
                tr.pause_reading()
            else:
                tr.resume_reading()
            tr.write(chunk)
            if not pr.writable.done():
                tr.resume_reading()  # never wait on writing while not reading
                await pr.writable
            if not together:
                # While not reading, give the server turns to fill its buffer.
                await spin(5 if hold else 1)
        tr.resume_reading()
        tr.write_eof()
        await pr.eof
        assert await pr.lost is None
        assert len(pr.data) == len(expected)
        assert pr.data == expected
        pr.check()
        assert await seen[0].lost is None
        await close_server(server)

    try:
        run(loop, main(), timeout=20)
    finally:
        if tmpdir is not None:
            if os.path.exists(os.path.join(tmpdir, "s")):
                os.unlink(os.path.join(tmpdir, "s"))
            os.rmdir(tmpdir)


# -- misc ------------------------------------------------------------------------------


def test_transport_is_an_asyncio_transport(loop: Loop) -> None:
    async def main() -> None:
        tr, pr, peer = await raw_peer(loop)
        with peer:
            assert isinstance(tr, asyncio.Transport)
            assert isinstance(tr, asyncio.ReadTransport)
            assert isinstance(tr, asyncio.WriteTransport)
            # Tests patch transport instances (DESIGN.md 5a).
            calls: list[bytes] = []
            tr.write = calls.append
            tr.write(b"patched")
            assert calls == [b"patched"]
            del tr.write
            tr.close()
            await pr.lost

    run(loop, main())
