"""TLS transports and start_tls (src/tideloop/_tls.py, _transports/_ssl.py
and _transports/_sslproto.py), and the ``ssl=`` arguments of
create_connection/create_server and friends (src/tideloop/_net.py).

Every test runs on stock asyncio (the oracle) and on tideloop with each
backend, and asserts only what users observe: callbacks and their order,
bytes on the wire, exceptions with their types and messages, exception-handler
contexts, log records. Certificates come from trustme (tests/support/certs.py),
peers are on loopback or AF_UNIX. No sleeps: tests wait on futures; ``spin()``
only lets the loop turn. Timeouts under test are set small (0.1-0.2 s).

Faulty peers are driven by hand (``TLSPeer``: an ``ssl.SSLObject`` over a raw
socket in the same loop), so a test can send half a record, a corrupted
record, garbage, or close without close_notify at an exact point.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from typing import Any

import pytest

from .conftest import ErrorLog
from .support import certs
from .support.streams import (
    Echo,
    Loop,
    Recorder,
    close_server,
    payload,
    read_until_eof,
    run,
    set_linger_reset,
    short_tmpdir,
    small_buffer_socket,
    spin,
)

pytestmark = pytest.mark.timeout(30)

HOST = certs.HOSTNAME
PY313 = sys.version_info >= (3, 13)


# -- helpers -----------------------------------------------------------------------------

# In debug mode (PYTHONASYNCIODEBUG=1) asyncio's server reports each failed
# handshake to the exception handler; test_server_handshake_failure_in_debug_mode
# checks that report, the other tests set it aside.
ACCEPT_REPORT = "Error on transport creation for incoming connection"


def handler_calls(loop: Loop, errors: ErrorLog) -> list[dict[str, Any]]:
    """Take the exception-handler calls, less the debug-mode accept reports."""
    return [c for c in errors.take() if not (loop.get_debug() and c["message"] == ACCEPT_REPORT)]


@pytest.fixture(autouse=True)
def _set_aside_debug_accept_reports(
    request: pytest.FixtureRequest, loop: Loop, errors: ErrorLog
) -> Any:
    yield
    if request.node.name.startswith("test_server_handshake_failure_in_debug_mode"):
        return
    if loop.get_debug() and not loop.is_closed():
        loop.run_until_complete(spin())  # reports come from done-callbacks
        errors[:] = [c for c in errors if c["message"] != ACCEPT_REPORT]


async def tls_server(
    loop: Loop, factory: Callable[[], asyncio.BaseProtocol] = Echo, **kw: Any
) -> tuple[Any, Any]:
    kw.setdefault("ssl", certs.server_context())
    server = await loop.create_server(factory, "127.0.0.1", 0, **kw)
    return server, server.sockets[0].getsockname()


async def tls_connect(
    loop: Loop, addr: Any, factory: Callable[[], asyncio.BaseProtocol] | None = None, **kw: Any
) -> tuple[Any, Any]:
    kw.setdefault("ssl", certs.client_context())
    kw.setdefault("server_hostname", HOST)
    if factory is None:

        def factory() -> Recorder:
            return Recorder(loop, name="client")

    return await loop.create_connection(factory, *addr[:2], **kw)


class Collect:
    """A server-side protocol factory that keeps its protocols and says when
    the first one is made."""

    def __init__(self, loop: Loop, make: Callable[[], Any] | None = None) -> None:
        self.loop = loop
        self.protocols: list[Any] = []
        self.first: asyncio.Future[Any] = loop.create_future()
        self.make = make or (lambda: Recorder(loop, name="server"))

    def __call__(self) -> Any:
        proto = self.make()
        self.protocols.append(proto)
        if not self.first.done():
            self.first.set_result(proto)
        return proto


async def listener(loop: Loop) -> socket.socket:
    lsn = socket.socket()
    lsn.bind(("127.0.0.1", 0))
    lsn.listen(5)
    lsn.setblocking(False)
    return lsn


class TLSPeer:
    """One end of a TLS connection driven by hand over a non-blocking socket."""

    def __init__(
        self,
        loop: Loop,
        sock: socket.socket,
        *,
        server_side: bool,
        context: ssl.SSLContext | None = None,
    ) -> None:
        self.loop = loop
        self.sock = sock
        sock.setblocking(False)
        if context is None:
            context = certs.server_context() if server_side else certs.client_context()
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.obj = context.wrap_bio(
            self.incoming,
            self.outgoing,
            server_side=server_side,
            server_hostname=None if server_side else HOST,
        )
        self.plain = bytearray()
        self.got_close_notify = False
        self.got_eof = False

    async def flush(self) -> None:
        data = self.outgoing.read()
        if data:
            await self.loop.sock_sendall(self.sock, data)

    async def _feed(self) -> None:
        data = await self.loop.sock_recv(self.sock, 65536)
        if not data:
            self.got_eof = True
            raise EOFError
        self.incoming.write(data)

    async def handshake(self) -> None:
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                await self.flush()
                await self._feed()
        await self.flush()

    def record(self, data: bytes) -> bytes:
        """The TLS record(s) carrying data, not sent."""
        self.obj.write(data)
        return self.outgoing.read()

    async def send(self, data: bytes) -> None:
        await self.loop.sock_sendall(self.sock, self.record(data))

    async def recv(self, n: int) -> bytes:
        """Read until n bytes of plaintext arrived (or close_notify/EOF)."""
        while len(self.plain) < n:
            try:
                chunk = self.obj.read(65536)
            except ssl.SSLWantReadError:
                await self.flush()
                try:
                    await self._feed()
                except EOFError:
                    break
                continue
            except ssl.SSLZeroReturnError:
                self.got_close_notify = True
                break
            if not chunk:
                self.got_close_notify = True
                break
            self.plain += chunk
        data = bytes(self.plain[:n])
        del self.plain[:n]
        return data

    async def recv_until_close(self) -> bytes:
        """Plaintext until close_notify or EOF."""
        return await self.recv(1 << 40)

    async def send_close_notify(self) -> None:
        try:
            self.obj.unwrap()
        except ssl.SSLWantReadError:
            pass
        await self.flush()

    def close(self) -> None:
        self.sock.close()


async def accept_tls_peer(loop: Loop, lsn: socket.socket, **kw: Any) -> TLSPeer:
    sock, _ = await loop.sock_accept(lsn)
    return TLSPeer(loop, sock, server_side=True, **kw)


async def client_and_peer(loop: Loop, **kw: Any) -> tuple[Any, Recorder, TLSPeer]:
    """A tideloop/asyncio TLS client connected to a hand-driven TLS server."""
    with await listener(loop) as lsn:
        accept = asyncio.ensure_future(accept_tls_peer(loop, lsn))
        peer_ready = loop.create_future()

        async def serve() -> TLSPeer:
            peer = await accept
            await peer.handshake()
            peer_ready.set_result(peer)
            return peer

        serving = asyncio.ensure_future(serve())
        try:
            tr, pr = await tls_connect(loop, lsn.getsockname(), **kw)
        except BaseException:
            serving.cancel()
            if accept.done() and not accept.cancelled() and accept.exception() is None:
                accept.result().close()
            raise
        peer = await serving
    return tr, pr, peer


async def wait_closed(*protocols: Recorder) -> None:
    for pr in protocols:
        await pr.lost


# -- argument checks ---------------------------------------------------------------------


def test_create_connection_server_hostname_rules(loop: Loop) -> None:
    async def main() -> None:
        with pytest.raises(ValueError, match=r"^server_hostname is only meaningful with ssl$"):
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", 1, server_hostname="x")
        a, b = socket.socketpair()
        with a, b:
            with pytest.raises(
                ValueError, match=r"^You must set server_hostname when using ssl without a host$"
            ):
                await loop.create_connection(asyncio.Protocol, sock=a, ssl=certs.client_context())
            for name in ("ssl_handshake_timeout", "ssl_shutdown_timeout"):
                with pytest.raises(ValueError, match=f"^{name} is only meaningful with ssl$"):
                    await loop.create_connection(asyncio.Protocol, sock=a, **{name: 1.0})

    run(loop, main())


def test_create_unix_connection_server_hostname_rules(loop: Loop) -> None:
    async def main() -> None:
        a, b = socket.socketpair()
        with a, b:
            with pytest.raises(
                ValueError, match=r"^you have to pass server_hostname when using ssl$"
            ):
                await loop.create_unix_connection(
                    asyncio.Protocol, sock=a, ssl=certs.client_context()
                )
            with pytest.raises(ValueError, match=r"^server_hostname is only meaningful with ssl$"):
                await loop.create_unix_connection(asyncio.Protocol, sock=a, server_hostname="x")

    run(loop, main())


def test_create_server_ssl_true_is_refused(loop: Loop) -> None:
    async def main() -> None:
        for create in (loop.create_server, loop.create_unix_server):
            with pytest.raises(TypeError, match=r"^ssl argument must be an SSLContext or None$"):
                await create(asyncio.Protocol, ssl=True)  # type: ignore[operator]
        with pytest.raises(
            ValueError, match=r"^ssl_handshake_timeout is only meaningful with ssl$"
        ):
            await loop.create_server(asyncio.Protocol, "127.0.0.1", 0, ssl_handshake_timeout=1)

    run(loop, main())


@pytest.mark.parametrize("name", ["ssl_handshake_timeout", "ssl_shutdown_timeout"])
@pytest.mark.parametrize("value", [0, -1.5])
def test_timeouts_must_be_positive(loop: Loop, name: str, value: float) -> None:
    async def main() -> None:
        # With sock=, the socket stays the caller's whichever way it fails.
        a, b = socket.socketpair()
        with a, b:
            with pytest.raises(ValueError) as info:
                await loop.create_connection(
                    asyncio.Protocol,
                    sock=a,
                    ssl=certs.client_context(),
                    server_hostname=HOST,
                    **{name: value},
                )
            assert str(info.value) == f"{name} should be a positive number, got {value}"
            with pytest.raises(ValueError) as info:
                await loop.connect_accepted_socket(
                    asyncio.Protocol, a, ssl=certs.server_context(), **{name: value}
                )
            assert str(info.value) == f"{name} should be a positive number, got {value}"

    run(loop, main())


def test_default_timeouts(loop: Loop) -> None:
    async def main() -> None:
        server, addr = await tls_server(loop)
        tr, pr = await tls_connect(loop, addr)
        # asyncio's private names, read by libraries and tests.
        assert tr._ssl_protocol._ssl_handshake_timeout == 60.0
        assert tr._ssl_protocol._ssl_shutdown_timeout == 30.0
        tr.close()
        await pr.lost
        tr2, pr2 = await tls_connect(loop, addr, ssl_handshake_timeout=5, ssl_shutdown_timeout=7)
        assert tr2._ssl_protocol._ssl_handshake_timeout == 5
        assert tr2._ssl_protocol._ssl_shutdown_timeout == 7
        tr2.close()
        await pr2.lost
        await close_server(server)

    run(loop, main())


def test_server_side_needs_a_context(loop: Loop) -> None:
    async def main() -> None:
        a, b = socket.socketpair()
        with a, b:
            with pytest.raises(ValueError, match=r"^Server side SSL needs a valid SSLContext$"):
                await loop.connect_accepted_socket(asyncio.Protocol, a, ssl=True)

    run(loop, main())


def test_empty_server_hostname_skips_the_name_check(loop: Loop) -> None:
    async def main() -> None:
        server, addr = await tls_server(loop)
        tr, pr = await tls_connect(loop, addr, server_hostname="")
        assert tr.get_extra_info("ssl_object").server_hostname is None
        tr.close()
        await pr.lost
        await close_server(server)

    run(loop, main())


# -- connections -------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 1024, 300 * 1024, 3 * 1024 * 1024])
def test_echo_over_tcp(loop: Loop, size: int) -> None:
    async def main() -> None:
        collect = Collect(loop, Echo)
        server, addr = await tls_server(loop, collect)
        tr, pr = await tls_connect(loop, addr)
        data = payload(size)
        tr.write(data)
        assert await pr.wait_bytes(size) == data
        tr.close()
        assert await pr.lost is None
        pr.check()
        assert pr.events[0] == "made"
        assert pr.events[-2:] == ["eof", "lost"]  # the server's close_notify answer
        await close_server(server)

    run(loop, main())


def test_callbacks_on_both_sides(loop: Loop) -> None:
    async def main() -> None:
        collect = Collect(loop)
        server, addr = await tls_server(loop, collect)
        tr, pr = await tls_connect(loop, addr)
        spr: Recorder = await collect.first
        await spr.made
        tr.write(b"hello")
        assert await spr.wait_bytes(5) == b"hello"
        spr.transport.write(b"world")
        assert await pr.wait_bytes(5) == b"world"
        tr.close()
        assert tr.is_closing()
        assert await spr.lost is None
        assert await pr.lost is None
        assert spr.events == ["made", "data", "eof", "lost"]
        assert pr.events == ["made", "data", "eof", "lost"]
        spr.check()
        pr.check()
        await close_server(server)

    run(loop, main())


def test_write_in_connection_made_both_sides(loop: Loop) -> None:
    class Greeter(Recorder):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            transport.write(b"hi from " + self.name.encode())

    async def main() -> None:
        collect = Collect(loop, lambda: Greeter(loop, name="server"))
        server, addr = await tls_server(loop, collect)
        tr, pr = await tls_connect(loop, addr, lambda: Greeter(loop, name="client"))
        spr = await collect.first
        assert await pr.wait_bytes(14) == b"hi from server"
        assert await spr.wait_bytes(14) == b"hi from client"
        tr.close()
        await wait_closed(pr, spr)
        await close_server(server)

    run(loop, main())


@pytest.fixture
def unix_path() -> Any:
    tmp = short_tmpdir()
    path = os.path.join(tmp, "s")
    yield path
    if os.path.exists(path):
        os.unlink(path)
    os.rmdir(tmp)


def test_echo_over_unix(loop: Loop, unix_path: str) -> None:
    path = unix_path

    async def main() -> None:
        server = await loop.create_unix_server(Echo, path, ssl=certs.server_context())
        tr, pr = await loop.create_unix_connection(
            lambda: Recorder(loop), path, ssl=certs.client_context(), server_hostname=HOST
        )
        assert tr.get_extra_info("peername") == path
        data = payload(200 * 1024)
        tr.write(data)
        assert await pr.wait_bytes(len(data)) == data
        tr.close()
        await pr.lost
        await close_server(server)

    run(loop, main())


def test_connect_accepted_socket(loop: Loop) -> None:
    async def main() -> None:
        with await listener(loop) as lsn:
            connecting = asyncio.ensure_future(tls_connect(loop, lsn.getsockname()))
            conn, _ = await loop.sock_accept(lsn)
            str_, spr = await loop.connect_accepted_socket(
                lambda: Recorder(loop, name="server"), conn, ssl=certs.server_context()
            )
            tr, pr = await connecting
        assert str_.get_extra_info("peercert") is None  # no client certificate
        assert tr.get_extra_info("peercert")["subjectAltName"][0] == ("DNS", HOST)
        tr.write(b"abc")
        assert await spr.wait_bytes(3) == b"abc"
        str_.close()
        await wait_closed(pr, spr)
        assert pr.events == ["made", "eof", "lost"]

    run(loop, main())


def test_create_connection_with_sock(loop: Loop) -> None:
    async def main() -> None:
        server, addr = await tls_server(loop)
        sock = socket.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, addr)
        tr, pr = await loop.create_connection(
            lambda: Recorder(loop), sock=sock, ssl=certs.client_context(), server_hostname=HOST
        )
        tr.write(b"xyz")
        assert await pr.wait_bytes(3) == b"xyz"
        tr.close()
        await pr.lost
        await close_server(server)

    run(loop, main())


def test_client_certificates(loop: Loop) -> None:
    async def main() -> None:
        collect = Collect(loop)
        server, addr = await tls_server(
            loop, collect, ssl=certs.server_context_requiring_client_cert()
        )
        tr, pr = await tls_connect(loop, addr, ssl=certs.client_cert_context())
        spr = await collect.first
        await spr.made
        peercert = spr.transport.get_extra_info("peercert")
        assert ("DNS", "client.example") in peercert["subjectAltName"]
        tr.close()
        await wait_closed(pr, spr)
        await close_server(server)

    run(loop, main())


def test_extra_info(loop: Loop) -> None:
    async def main() -> None:
        ctx = certs.client_context()
        server, addr = await tls_server(loop)
        tr, pr = await tls_connect(loop, addr, ssl=ctx)
        ssl_object = tr.get_extra_info("ssl_object")
        assert isinstance(ssl_object, ssl.SSLObject)
        assert ssl_object.server_hostname == HOST
        assert tr.get_extra_info("sslcontext") is ctx
        assert tr.get_extra_info("peercert") == ssl_object.getpeercert()
        assert tr.get_extra_info("cipher") == ssl_object.cipher()
        assert tr.get_extra_info("compression") == ssl_object.compression()
        sock = tr.get_extra_info("socket")
        assert sock.family == socket.AF_INET
        assert tr.get_extra_info("sockname") == sock.getsockname()
        assert tr.get_extra_info("peername") == addr
        assert tr.get_extra_info("nope") is None
        assert tr.get_extra_info("nope", 5) == 5
        # Private names that libraries read (DESIGN.md 5a).
        assert tr._ssl_protocol._sslcontext is ctx
        assert tr._ssl_protocol._app_transport is tr
        assert tr.get_protocol() is pr
        tr.close()
        await pr.lost
        # After the connection: TLS keys stay, socket keys fall back to the default.
        assert tr.get_extra_info("sslcontext") is ctx
        assert tr.get_extra_info("peername", "gone") == "gone"
        await close_server(server)

    run(loop, main())


def test_transport_basics(loop: Loop) -> None:
    async def main() -> None:
        server, addr = await tls_server(loop)
        tr, pr = await tls_connect(loop, addr)
        assert isinstance(tr, asyncio.Transport)
        assert "ssl" in type(tr).__name__.lower()
        assert tr.can_write_eof() is False
        with pytest.raises(NotImplementedError):
            tr.write_eof()
        with pytest.raises(TypeError, match=r"^data: expecting a bytes-like instance, got str$"):
            tr.write("text")
        tr.write(b"")
        tr.writelines([b"a", bytearray(b"b"), memoryview(b"c")])
        assert await pr.wait_bytes(3) == b"abc"
        assert tr.is_reading()
        assert not tr.is_closing()
        repr(tr)
        tr.close()
        tr.close()  # a second close is harmless
        assert tr.is_closing()
        await pr.lost
        await close_server(server)

    run(loop, main())


def test_state_machine_refuses_illegal_transitions(loop: Loop) -> None:
    """The TLS protocol's explicit transition check (asyncio's
    SSLProtocol._set_state, private on both loops): one step forward at a
    time, back to UNWRAPPED from anywhere."""

    async def main() -> None:
        server, addr = await tls_server(loop)
        tr, pr = await tls_connect(loop, addr)
        proto = tr._ssl_protocol
        states = type(proto._state)
        assert proto._state is states["WRAPPED"]
        for illegal in ("DO_HANDSHAKE", "SHUTDOWN", "WRAPPED"):
            with pytest.raises(RuntimeError) as info:
                proto._set_state(states[illegal])
            assert str(info.value) == (
                f"cannot switch state from {states['WRAPPED']} to {states[illegal]}"
            )
            assert proto._state is states["WRAPPED"]
        tr.write(b"still fine")
        assert await pr.wait_bytes(10) == b"still fine"
        tr.close()
        await pr.lost
        await close_server(server)

    run(loop, main())


def test_set_protocol(loop: Loop) -> None:
    async def main() -> None:
        server, addr = await tls_server(loop)
        tr, pr = await tls_connect(loop, addr)
        other = Recorder(loop, name="other")
        tr.set_protocol(other)
        assert tr.get_protocol() is other
        tr.write(b"to other")
        assert await other.wait_bytes(8) == b"to other"
        assert pr.events == ["made"]
        tr.close()
        await other.lost
        await close_server(server)

    run(loop, main())


class BufferedRecorder(asyncio.BufferedProtocol):
    def __init__(self, loop: Loop, size: int) -> None:
        self.buf = bytearray(size)
        self.data = bytearray()
        self.events: list[str] = []
        self.sizehints: list[int] = []
        self.lost: asyncio.Future[Any] = loop.create_future()
        self.want: tuple[int, asyncio.Future[None]] | None = None
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.events.append("made")

    def get_buffer(self, sizehint: int) -> memoryview:
        self.sizehints.append(sizehint)
        return memoryview(self.buf)

    def buffer_updated(self, nbytes: int) -> None:
        self.data += self.buf[:nbytes]
        if not self.events or self.events[-1] != "data":
            self.events.append("data")
        if self.want and len(self.data) >= self.want[0]:
            self.want[1].set_result(None)
            self.want = None

    def eof_received(self) -> None:
        self.events.append("eof")

    def connection_lost(self, exc: BaseException | None) -> None:
        self.events.append("lost")
        self.lost.set_result(exc)

    async def wait_bytes(self, loop: Loop, n: int) -> bytes:
        if len(self.data) < n:
            fut = loop.create_future()
            self.want = (n, fut)
            await fut
        return bytes(self.data)


@pytest.mark.parametrize("bufsize", [7, 16 * 1024, 1024 * 1024])
def test_buffered_protocol(loop: Loop, bufsize: int) -> None:
    async def main() -> None:
        server, addr = await tls_server(loop)
        tr, pr = await tls_connect(loop, addr, lambda: BufferedRecorder(loop, bufsize))
        data = payload(500 * 1024)
        tr.write(data)
        assert await pr.wait_bytes(loop, len(data)) == data
        tr.close()
        assert await pr.lost is None
        assert pr.events == ["made", "data", "eof", "lost"]
        assert all(hint >= 0 for hint in pr.sizehints)
        await close_server(server)

    run(loop, main())


def test_large_transfer_both_ways(loop: Loop) -> None:
    async def main() -> None:
        server, addr = await tls_server(loop)
        tr, pr = await tls_connect(loop, addr)
        data = payload(8 * 1024 * 1024)
        for i in range(0, len(data), 1 << 20):
            tr.write(data[i : i + (1 << 20)])
        assert await pr.wait_bytes(len(data)) == data
        tr.close()
        await pr.lost
        await close_server(server)

    run(loop, main())


def test_other_connections_carry_on(loop: Loop) -> None:
    async def main() -> None:
        server, addr = await tls_server(loop)
        clients = [await tls_connect(loop, addr) for _ in range(3)]
        bad = socket.socket()
        bad.setblocking(False)
        await loop.sock_connect(bad, addr)
        await loop.sock_sendall(bad, b"GET / HTTP/1.0\r\n\r\n")
        assert await read_until_eof(loop, bad) == b""
        bad.close()
        clients[1][0].abort()
        for i, (tr, pr) in enumerate(clients):
            if i == 1:
                continue
            tr.write(b"still here %d" % i)
            assert await pr.wait_bytes(12) == b"still here %d" % i
            tr.close()
            await pr.lost
        await close_server(server)

    run(loop, main())


# -- closing -----------------------------------------------------------------------------


def test_peer_close_notify(loop: Loop) -> None:
    async def main() -> None:
        _tr, pr, peer = await client_and_peer(loop)
        with peer.sock:
            await peer.send(b"bye")
            await peer.send_close_notify()
            assert await pr.lost is None
            assert pr.events == ["made", "data", "eof", "lost"]
            assert bytes(pr.data) == b"bye"
            # We answered with close_notify, then closed.
            assert await peer.recv_until_close() == b""
            assert peer.got_close_notify

    run(loop, main())


def test_close_sends_close_notify_and_waits_for_the_answer(loop: Loop) -> None:
    async def main() -> None:
        tr, pr, peer = await client_and_peer(loop)
        with peer.sock:
            tr.write(b"last words")
            tr.close()
            assert await peer.recv(10) == b"last words"
            assert await peer.recv_until_close() == b""
            assert peer.got_close_notify
            await spin()
            assert "lost" not in pr.events  # waits for the peer's close_notify
            await peer.send_close_notify()
            assert await pr.lost is None
            assert pr.events == ["made", "eof", "lost"]
            assert await read_until_eof(loop, peer.sock) == b""

    run(loop, main())


def test_shutdown_timeout(loop: Loop) -> None:
    async def main() -> None:
        tr, pr, peer = await client_and_peer(loop, ssl_shutdown_timeout=0.1)
        with peer.sock:
            tr.close()
            exc = await pr.lost
            assert type(exc) is TimeoutError
            assert str(exc) == "SSL shutdown timed out"
            assert pr.events == ["made", "lost"]

    run(loop, main())


def test_peer_closes_without_close_notify(loop: Loop) -> None:
    async def main() -> None:
        _tr, pr, peer = await client_and_peer(loop)
        await peer.send(b"data")
        peer.sock.shutdown(socket.SHUT_WR)
        # As asyncio: a TCP EOF without close_notify is a clean end.
        assert await pr.lost is None
        assert pr.events == ["made", "data", "eof", "lost"]
        assert bytes(pr.data) == b"data"
        peer.close()

    run(loop, main())


def test_peer_drops_mid_record(loop: Loop) -> None:
    async def main() -> None:
        _tr, pr, peer = await client_and_peer(loop)
        await peer.send(b"whole")
        record = peer.record(b"cut short")
        await loop.sock_sendall(peer.sock, record[: len(record) // 2])
        peer.sock.shutdown(socket.SHUT_WR)
        assert await pr.lost is None
        assert bytes(pr.data) == b"whole"
        assert pr.events == ["made", "data", "eof", "lost"]
        peer.close()

    run(loop, main())


def test_peer_resets_after_handshake(loop: Loop) -> None:
    async def main() -> None:
        _tr, pr, peer = await client_and_peer(loop)
        await peer.send(b"x")
        await pr.wait_bytes(1)
        set_linger_reset(peer.sock)
        peer.close()
        exc = await pr.lost
        assert isinstance(exc, ConnectionResetError)
        assert pr.events == ["made", "data", "lost"]

    run(loop, main())


def test_corrupted_record(loop: Loop, errors: ErrorLog) -> None:
    async def main() -> None:
        _tr, pr, peer = await client_and_peer(loop)
        with peer.sock:
            record = bytearray(peer.record(b"tampered with"))
            record[-3] ^= 0xFF
            await loop.sock_sendall(peer.sock, bytes(record))
            exc = await pr.lost
            assert type(exc) is ssl.SSLError
            assert pr.events == ["made", "lost"]
            assert await read_until_eof(loop, peer.sock) == b""

    run(loop, main())
    assert handler_calls(loop, errors) == []  # SSLError is an OSError: not reported


def test_garbage_after_handshake(loop: Loop) -> None:
    async def main() -> None:
        _tr, pr, peer = await client_and_peer(loop)
        with peer.sock:
            await loop.sock_sendall(peer.sock, b"\x17\x03\x03\x00\x05hello")
            exc = await pr.lost
            assert isinstance(exc, ssl.SSLError)

    run(loop, main())


def test_abort(loop: Loop) -> None:
    async def main() -> None:
        collect = Collect(loop)
        server, addr = await tls_server(loop, collect)
        tr, pr = await tls_connect(loop, addr)
        spr = await collect.first
        await spr.made
        spr.transport.write(b"ping")  # read: no unread data, so no RST on abort
        await pr.wait_bytes(4)
        tr.write(b"sent before abort")
        tr.abort()
        assert tr.is_closing()
        assert await pr.lost is None
        assert pr.events == ["made", "data", "lost"]
        # The peer sees the data, then a TCP EOF without close_notify.
        assert await spr.lost is None
        assert bytes(spr.data) == b"sent before abort"
        assert spr.events[-2:] == ["eof", "lost"]
        await close_server(server)

    run(loop, main())


def test_write_after_close_is_dropped_then_logged(
    loop: Loop, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        server, addr = await tls_server(loop)
        tr, pr = await tls_connect(loop, addr)
        tr.close()
        with caplog.at_level(logging.WARNING, logger="asyncio"):
            for _ in range(5):
                tr.write(b"x")
            assert not [r for r in caplog.records if "SSL connection is closed" in r.message]
            tr.write(b"x")
            assert [r.message for r in caplog.records] == ["SSL connection is closed"]
        await pr.lost
        await close_server(server)

    run(loop, main())


def test_eof_received_returning_true_is_ignored(
    loop: Loop, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        _tr, pr, peer = await client_and_peer(loop)
        pr.eof_result = True
        with peer.sock, caplog.at_level(logging.WARNING, logger="asyncio"):
            await peer.send_close_notify()
            assert await pr.lost is None
        messages = [r.message for r in caplog.records]
        assert messages == ["returning true from eof_received() has no effect when using ssl"]

    run(loop, main())


def test_peer_closes_tcp_after_our_close_notify(loop: Loop) -> None:
    async def main() -> None:
        tr, pr, peer = await client_and_peer(loop)
        tr.close()
        assert await peer.recv_until_close() == b""
        assert peer.got_close_notify
        peer.sock.shutdown(socket.SHUT_WR)  # no close_notify back, just a TCP EOF
        assert await pr.lost is None
        assert pr.events == ["made", "eof", "lost"]
        peer.close()

    run(loop, main())


def test_garbage_instead_of_the_peers_close_notify(loop: Loop, errors: ErrorLog) -> None:
    async def main() -> None:
        tr, pr, peer = await client_and_peer(loop)
        with peer.sock:
            tr.close()
            assert await peer.recv_until_close() == b""
            await loop.sock_sendall(peer.sock, b"\x15\x03\x03\x00\x02\xff\xff" * 3)
            exc = await pr.lost
            assert isinstance(exc, ssl.SSLError)
            assert pr.events == ["made", "lost"]

    run(loop, main())
    assert handler_calls(loop, errors) == []


def test_peer_close_notify_while_writes_are_held_back(loop: Loop) -> None:
    async def main() -> None:
        tr, pr, peer = await small_buffer_client_and_peer(loop)
        chunk = payload(64 * 1024)
        sent = 0
        while not pr.pause_calls:
            tr.write(chunk)
            sent += len(chunk)
            await asyncio.sleep(0)
        await peer.send_close_notify()
        # Everything written, then our close_notify, then the end.
        received = await peer.recv_until_close()
        assert received == chunk * (sent // len(chunk))
        assert peer.got_close_notify
        assert await pr.lost is None
        assert [e for e in pr.events if e not in ("pause_writing",)][-3:] == [
            "eof",
            "resume_writing",
            "lost",
        ]
        peer.close()

    run(loop, main())


def test_buffered_protocol_close_notify(loop: Loop) -> None:
    async def main() -> None:
        _tr, pr, peer = await client_and_peer(loop, factory=lambda: BufferedRecorder(loop, 64))
        with peer.sock:
            data = payload(1000)
            await loop.sock_sendall(peer.sock, peer.record(data))
            await peer.send_close_notify()
            assert await pr.lost is None
            assert bytes(pr.data) == data
            assert pr.events == ["made", "data", "eof", "lost"]

    run(loop, main())


def test_debug_mode_connection(loop: Loop, caplog: pytest.LogCaptureFixture) -> None:
    loop.set_debug(True)
    loop.slow_callback_duration = 10.0

    async def main() -> None:
        with caplog.at_level(logging.DEBUG, logger="asyncio"):
            _tr, pr, peer = await client_and_peer(loop)
            await peer.send(b"debug")
            assert await pr.wait_bytes(5) == b"debug"
            peer.sock.shutdown(socket.SHUT_WR)
            assert await pr.lost is None
            peer.close()
        messages = [r.getMessage() for r in caplog.records]
        assert any("starts SSL handshake" in m for m in messages)
        assert any("SSL handshake took" in m for m in messages)
        assert any("received EOF" in m for m in messages)

    run(loop, main())


# -- flow control ------------------------------------------------------------------------


async def small_buffer_client_and_peer(loop: Loop) -> tuple[Any, Recorder, TLSPeer]:
    """client_and_peer() with small kernel buffers on both ends."""
    with small_buffer_socket() as lsn:
        lsn.bind(("127.0.0.1", 0))
        lsn.listen(1)
        lsn.setblocking(False)
        accepting = asyncio.ensure_future(loop.sock_accept(lsn))
        sock = small_buffer_socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, lsn.getsockname())
        conn, _ = await accepting
    peer = TLSPeer(loop, conn, server_side=True)
    handshake = asyncio.ensure_future(peer.handshake())
    tr, pr = await loop.create_connection(
        lambda: Recorder(loop), sock=sock, ssl=certs.client_context(), server_hostname=HOST
    )
    await handshake
    return tr, pr, peer


def test_write_flow_control(loop: Loop) -> None:
    async def main() -> None:
        tr, pr, peer = await small_buffer_client_and_peer(loop)
        assert tr.get_write_buffer_limits() == (128 * 1024, 512 * 1024)
        chunk = payload(64 * 1024)
        sent = 0
        while not pr.pause_calls:
            assert sent < 256 * 1024 * 1024, "pause_writing never came"
            tr.write(chunk)
            sent += len(chunk)
            await asyncio.sleep(0)
        assert tr.get_write_buffer_size() >= 512 * 1024
        assert tr._protocol_paused  # loop.sendfile's fallback reads this
        received = await peer.recv(sent)
        assert len(received) == sent
        assert received == chunk * (sent // len(chunk))
        await pr.writable
        assert pr.resume_calls == 1
        assert tr.get_write_buffer_size() <= 128 * 1024
        tr.close()
        await peer.send_close_notify()
        await pr.lost
        peer.close()

    run(loop, main())


def test_write_buffer_limits(loop: Loop) -> None:
    async def main() -> None:
        server, addr = await tls_server(loop)
        tr, pr = await tls_connect(loop, addr)
        tr.set_write_buffer_limits(high=4000)
        assert tr.get_write_buffer_limits() == (1000, 4000)
        tr.set_write_buffer_limits(low=100)
        assert tr.get_write_buffer_limits() == (100, 400)
        with pytest.raises(ValueError, match=r"^high \(1\) must be >= low \(2\) must be >= 0$"):
            tr.set_write_buffer_limits(high=1, low=2)
        assert pr.pause_calls == 0
        tr.set_write_buffer_limits(high=0)  # as asyncio: pauses at once
        assert tr.get_write_buffer_limits() == (0, 0)
        assert pr.pause_calls == 1
        tr.set_write_buffer_limits()
        tr.close()
        await pr.lost
        await close_server(server)

    run(loop, main())


def test_read_flow_control(loop: Loop) -> None:
    async def main() -> None:
        tr, pr, peer = await client_and_peer(loop)
        assert tr.get_read_buffer_limits() == (64 * 1024, 256 * 1024)
        tr.set_read_buffer_limits(high=10_000)
        assert tr.get_read_buffer_limits() == (2500, 10_000)
        tr.set_read_buffer_limits()
        tr.pause_reading()
        assert not tr.is_reading()
        data = payload(2 * 1024 * 1024)
        sending = asyncio.ensure_future(peer.send(data))
        for _ in range(1000):
            if tr.get_read_buffer_size() >= 256 * 1024:
                break
            await asyncio.sleep(0)
        # Ciphertext waits in the incoming buffer; the socket is paused past 256 KiB.
        assert 256 * 1024 <= tr.get_read_buffer_size() < 2 * 1024 * 1024
        assert pr.events == ["made"]
        tr.resume_reading()
        assert tr.is_reading()
        assert await pr.wait_bytes(len(data)) == data
        await sending
        assert tr.get_read_buffer_size() == 0
        tr.close()
        await peer.send_close_notify()
        await pr.lost
        peer.close()

    run(loop, main())


def test_eof_while_reading_paused(loop: Loop) -> None:
    async def main() -> None:
        tr, pr, peer = await client_and_peer(loop)
        tr.pause_reading()
        await peer.send(b"held back")
        await peer.send_close_notify()
        peer.sock.shutdown(socket.SHUT_WR)
        await spin(20)
        assert pr.events == ["made"]
        tr.resume_reading()
        assert await pr.lost is None
        assert bytes(pr.data) == b"held back"
        assert pr.events == ["made", "data", "eof", "lost"]
        peer.close()

    run(loop, main())


def test_flow_control_callback_errors(loop: Loop, errors: ErrorLog) -> None:
    class Failing(Recorder):
        def pause_writing(self) -> None:
            super().pause_writing()
            raise RuntimeError("pause failed")

        def resume_writing(self) -> None:
            super().resume_writing()
            raise RuntimeError("resume failed")

    async def main() -> None:
        server, addr = await tls_server(loop)
        tr, pr = await tls_connect(loop, addr, lambda: Failing(loop))
        tr.set_write_buffer_limits(high=0)
        tr.set_write_buffer_limits(high=0)
        contexts = handler_calls(loop, errors)
        assert [c["message"] for c in contexts] == [
            "protocol.pause_writing() failed",
            "protocol.resume_writing() failed",
        ]
        for ctx in contexts:
            assert ctx["transport"] is tr
            assert ctx["protocol"] is tr._ssl_protocol
            assert isinstance(ctx["exception"], RuntimeError)
        tr.set_write_buffer_limits()
        tr.close()
        await pr.lost
        await close_server(server)

    run(loop, main())


# -- protocol errors ---------------------------------------------------------------------


def test_data_received_error(loop: Loop, errors: ErrorLog) -> None:
    boom = RuntimeError("boom")

    class Failing(Recorder):
        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            raise boom

    async def main() -> None:
        server, addr = await tls_server(loop)
        tr, pr = await tls_connect(loop, addr, lambda: Failing(loop))
        ssl_protocol = tr._ssl_protocol
        tr.write(b"x")
        assert await pr.lost is boom
        [ctx] = handler_calls(loop, errors)
        assert ctx["message"] == "Fatal error on SSL protocol"
        assert ctx["exception"] is boom
        assert ctx["protocol"] is ssl_protocol
        assert ctx["transport"].get_extra_info("socket") is not None
        await close_server(server)

    run(loop, main())


def test_connection_made_error(loop: Loop, errors: ErrorLog) -> None:
    boom = RuntimeError("boom")

    class Failing(Recorder):
        def connection_made(self, transport: Any) -> None:
            raise boom

    async def main() -> None:
        server, addr = await tls_server(loop)
        with pytest.raises(RuntimeError) as info:
            await tls_connect(loop, addr, lambda: Failing(loop))
        assert info.value is boom
        [ctx] = handler_calls(loop, errors)
        assert ctx["message"] == "Fatal error: protocol.buffer_updated() call failed."
        assert ctx["exception"] is boom
        await close_server(server)

    run(loop, main())


def test_eof_received_error(loop: Loop, errors: ErrorLog) -> None:
    boom = RuntimeError("boom")

    class Failing(Recorder):
        def eof_received(self) -> None:
            super().eof_received()
            raise boom

    async def main() -> None:
        _tr, pr, peer = await client_and_peer(loop, factory=lambda: Failing(loop))
        with peer.sock:
            await peer.send_close_notify()
            assert await pr.lost is boom
            [ctx] = handler_calls(loop, errors)
            assert ctx["message"] == "Error calling eof_received()"
            assert ctx["exception"] is boom

    run(loop, main())


def test_writelines_error_is_fatal(loop: Loop, errors: ErrorLog) -> None:
    async def main() -> None:
        server, addr = await tls_server(loop)
        tr, pr = await tls_connect(loop, addr)
        tr.writelines(["not bytes"])
        exc = await pr.lost
        assert isinstance(exc, TypeError)
        [ctx] = handler_calls(loop, errors)
        assert ctx["message"] == "Fatal error on SSL protocol"
        assert ctx["exception"] is exc
        await close_server(server)

    run(loop, main())


# -- handshake failures ------------------------------------------------------------------


def test_unknown_ca(loop: Loop, errors: ErrorLog) -> None:
    async def main() -> None:
        collect = Collect(loop)
        server, addr = await tls_server(loop, collect)
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            await tls_connect(loop, addr, ssl=certs.other_client_context())
        assert info.value.reason == "CERTIFICATE_VERIFY_FAILED"
        assert info.value.verify_code == 20
        await close_server(server)
        assert all(p.events == [] for p in collect.protocols)

    run(loop, main())
    assert handler_calls(loop, errors) == []


def test_hostname_mismatch(loop: Loop) -> None:
    async def main() -> None:
        server, addr = await tls_server(loop)
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            await tls_connect(loop, addr, server_hostname="wrong.example")
        assert "Hostname mismatch" in info.value.verify_message
        await close_server(server)

    run(loop, main())


def test_ssl_true_uses_the_default_context(loop: Loop) -> None:
    async def main() -> None:
        server, addr = await tls_server(loop)
        # The default context trusts the system store, not our test CA.
        with pytest.raises(ssl.SSLCertVerificationError):
            await loop.create_connection(asyncio.Protocol, *addr, ssl=True)
        # No host name check then, but the chain is still verified.
        with pytest.raises(ssl.SSLCertVerificationError):
            await loop.create_connection(asyncio.Protocol, *addr, ssl=True, server_hostname="")
        await close_server(server)

    run(loop, main())


def test_missing_client_certificate(loop: Loop) -> None:
    async def main() -> None:
        collect = Collect(loop)
        server, addr = await tls_server(
            loop, collect, ssl=certs.server_context_requiring_client_cert()
        )
        # TLS 1.3: the client finishes first; the server fails and closes
        # without sending its alert (as asyncio), so the client sees an EOF.
        _tr, pr = await tls_connect(loop, addr)
        assert await pr.lost is None
        assert pr.events == ["made", "eof", "lost"]
        await close_server(server)
        assert all(p.events == [] for p in collect.protocols)

    run(loop, main())


def test_server_gets_garbage(loop: Loop, errors: ErrorLog) -> None:
    async def main() -> None:
        collect = Collect(loop)
        server, addr = await tls_server(loop, collect)
        sock = socket.socket()
        sock.setblocking(False)
        with sock:
            await loop.sock_connect(sock, addr)
            await loop.sock_sendall(sock, b"garbage, not a ClientHello\r\n" * 10)
            assert await read_until_eof(loop, sock) == b""
        await close_server(server)
        assert [p.events for p in collect.protocols] == [[]]

    run(loop, main())
    assert handler_calls(loop, errors) == []


def test_client_gets_garbage(loop: Loop, errors: ErrorLog) -> None:
    async def main() -> None:
        with await listener(loop) as lsn:

            async def serve() -> None:
                sock, _ = await loop.sock_accept(lsn)
                with sock:
                    await loop.sock_recv(sock, 65536)
                    await loop.sock_sendall(sock, b"HTTP/1.1 400 Bad Request\r\n\r\n")
                    await read_until_eof(loop, sock)

            serving = asyncio.ensure_future(serve())
            with pytest.raises(ssl.SSLError) as info:
                await tls_connect(loop, lsn.getsockname())
            assert not isinstance(info.value, ssl.SSLCertVerificationError)
            await serving

    run(loop, main())
    assert handler_calls(loop, errors) == []


@pytest.mark.parametrize("reset", [False, True])
def test_peer_drops_mid_handshake(loop: Loop, reset: bool) -> None:
    async def main() -> None:
        with await listener(loop) as lsn:

            async def serve() -> None:
                sock, _ = await loop.sock_accept(lsn)
                await loop.sock_recv(sock, 65536)  # the ClientHello
                if reset:
                    set_linger_reset(sock)
                sock.close()

            serving = asyncio.ensure_future(serve())
            with pytest.raises(ConnectionResetError) as info:
                await tls_connect(loop, lsn.getsockname())
            await serving
        if reset:
            assert info.value.errno == 104 or info.value.args
        else:
            assert info.value.args == ()  # as asyncio: the bare class, raised

    run(loop, main())


def test_client_handshake_timeout(loop: Loop, errors: ErrorLog) -> None:
    async def main() -> None:
        with await listener(loop) as lsn:
            accepting = asyncio.ensure_future(loop.sock_accept(lsn))
            with pytest.raises(ConnectionAbortedError) as info:
                await tls_connect(loop, lsn.getsockname(), ssl_handshake_timeout=0.1)
            assert str(info.value) == (
                "SSL handshake is taking longer than 0.1 seconds: aborting the connection"
            )
            sock, _ = await accepting
            with sock:
                sock.setblocking(False)
                assert (await read_until_eof(loop, sock))[:1] == b"\x16"  # the ClientHello

    run(loop, main())
    assert handler_calls(loop, errors) == []


def test_server_handshake_timeout(loop: Loop, errors: ErrorLog) -> None:
    async def main() -> None:
        collect = Collect(loop)
        server, addr = await tls_server(loop, collect, ssl_handshake_timeout=0.1)
        sock = socket.socket()
        sock.setblocking(False)
        with sock:
            await loop.sock_connect(sock, addr)
            assert await read_until_eof(loop, sock) == b""  # aborted by the server
        await close_server(server)
        assert [p.events for p in collect.protocols] == [[]]

    run(loop, main())
    assert handler_calls(loop, errors) == []


def test_server_handshake_failure_in_debug_mode(loop: Loop, errors: ErrorLog) -> None:
    loop.set_debug(True)
    loop.slow_callback_duration = 10.0

    async def main() -> None:
        collect = Collect(loop)
        server, addr = await tls_server(loop, collect, ssl_handshake_timeout=0.1)
        sock = socket.socket()
        sock.setblocking(False)
        with sock:
            await loop.sock_connect(sock, addr)
            assert await read_until_eof(loop, sock) == b""
        for _ in range(100):
            if errors:
                break
            await asyncio.sleep(0)
        await close_server(server)

    run(loop, main())
    [ctx] = errors.take()
    assert ctx["message"] == ACCEPT_REPORT
    assert isinstance(ctx["exception"], ConnectionAbortedError)


def test_close_during_handshake(loop: Loop) -> None:
    async def main() -> None:
        with await listener(loop) as lsn:
            connecting = asyncio.ensure_future(tls_connect(loop, lsn.getsockname()))
            sock, _ = await loop.sock_accept(lsn)
            with sock:
                await loop.sock_recv(sock, 65536)
                connecting.cancel()  # create_connection closes the transport: abort
                with pytest.raises(asyncio.CancelledError):
                    await connecting
                sock.setblocking(False)
                assert await read_until_eof(loop, sock) == b""

    run(loop, main())


def test_data_written_during_the_handshake_is_kept(loop: Loop) -> None:
    async def main() -> None:
        server, addr = await tls_server(loop)
        sock = socket.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, addr)
        pr = Recorder(loop)
        waiter = loop.create_future()
        tr = loop._make_ssl_transport(  # type: ignore[attr-defined]
            sock, pr, certs.client_context(), waiter, server_hostname=HOST
        )
        tr.write(b"dropped")  # before the TLS layer is connected: as asyncio, dropped
        await asyncio.sleep(0)  # connection_made: the handshake starts
        assert not waiter.done()
        buf = bytearray(b"kept")
        tr.write(buf)
        tr.writelines([b" ", memoryview(b"too")])
        await waiter
        assert await pr.wait_bytes(8) == b"kept too"
        tr.close()
        await pr.lost
        await close_server(server)

    run(loop, main())


# -- start_tls ---------------------------------------------------------------------------


def test_start_tls_wrong_arguments(loop: Loop) -> None:
    class NotCompatible(asyncio.Transport):
        pass

    async def main() -> None:
        server, addr = await tls_server(loop)
        tr, pr = await loop.create_connection(lambda: Recorder(loop), *addr)
        with pytest.raises(TypeError) as info:
            await loop.start_tls(tr, pr, "not a context")  # type: ignore[arg-type]
        assert str(info.value) == (
            "sslcontext is expected to be an instance of ssl.SSLContext, got 'not a context'"
        )
        fake = NotCompatible()
        with pytest.raises(TypeError) as info:
            await loop.start_tls(fake, pr, certs.client_context())
        assert str(info.value) == f"transport {fake!r} is not supported by start_tls()"
        tr.close()
        await pr.lost
        await close_server(server)

    run(loop, main())


class Upgrader(Recorder):
    """A plain-text protocol that upgrades to TLS when it reads STARTTLS."""

    def __init__(self, loop: Loop, ctx: ssl.SSLContext, **kw: Any) -> None:
        super().__init__(loop, **kw)
        self.ctx = ctx
        self.upgraded: asyncio.Future[Any] = loop.create_future()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if bytes(self.data).endswith(b"STARTTLS\n"):
            self.transport.write(b"GO\n")
            task = asyncio.ensure_future(
                self.loop.start_tls(self.transport, self, self.ctx, server_side=True)
            )
            task.add_done_callback(self._on_upgraded)

    def _on_upgraded(self, task: asyncio.Future[Any]) -> None:
        if task.cancelled():
            self.upgraded.cancel()
        elif task.exception() is not None:
            self.upgraded.set_exception(task.exception())  # type: ignore[arg-type]
        else:
            self.transport = task.result()
            self.upgraded.set_result(self.transport)


async def upgrade_client(loop: Loop, tr: Any, pr: Recorder, **kw: Any) -> Any:
    tr.write(b"STARTTLS\n")
    await pr.wait_bytes(3)
    assert bytes(pr.data) == b"GO\n"
    kw.setdefault("server_hostname", HOST)
    ctx = kw.pop("ctx", None) or certs.client_context()
    return await loop.start_tls(tr, pr, ctx, **kw)


def test_start_tls_both_sides(loop: Loop) -> None:
    async def main() -> None:
        collect = Collect(loop, lambda: Upgrader(loop, certs.server_context(), name="server"))
        server = await loop.create_server(collect, "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()
        tr, pr = await loop.create_connection(lambda: Recorder(loop), *addr)
        new_tr = await upgrade_client(loop, tr, pr)
        spr = await collect.first
        server_tr = await spr.upgraded
        assert new_tr is not tr
        assert new_tr.get_extra_info("ssl_object") is not None
        assert new_tr.get_extra_info("peername") == addr
        assert server_tr.get_extra_info("sslcontext") is spr.ctx
        new_tr.write(b"secret")
        assert await spr.wait_bytes(len(b"STARTTLS\nsecret")) == b"STARTTLS\nsecret"
        server_tr.write(b"reply")
        assert await pr.wait_bytes(8) == b"GO\nreply"
        new_tr.close()
        await wait_closed(pr, spr)
        # One connection_made each: start_tls does not call it again.
        assert pr.events.count("made") == 1
        assert spr.events.count("made") == 1
        await close_server(server)

    run(loop, main())


def test_start_tls_buffered_protocol(loop: Loop) -> None:
    async def main() -> None:
        collect = Collect(loop, lambda: Upgrader(loop, certs.server_context(), name="server"))
        server = await loop.create_server(collect, "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()
        tr, pr = await loop.create_connection(lambda: Recorder(loop), *addr)
        tr.write(b"STARTTLS\n")
        await pr.wait_bytes(3)
        bpr = BufferedRecorder(loop, 100)
        new_tr = await loop.start_tls(tr, bpr, certs.client_context(), server_hostname=HOST)
        spr = await collect.first
        server_tr = await spr.upgraded
        data = payload(100_000)
        server_tr.write(data)
        assert await bpr.wait_bytes(loop, len(data)) == data
        new_tr.close()
        await spr.lost
        await bpr.lost
        await close_server(server)

    run(loop, main())


def test_start_tls_over_tls(loop: Loop) -> None:
    async def main() -> None:
        collect = Collect(loop, lambda: Upgrader(loop, certs.server_context(), name="server"))
        server, addr = await tls_server(loop, collect)
        tr, pr = await tls_connect(loop, addr)
        inner = await upgrade_client(loop, tr, pr)
        spr = await collect.first
        server_inner = await spr.upgraded
        assert inner.get_extra_info("ssl_object") is not tr.get_extra_info("ssl_object")
        data = payload(300 * 1024)
        inner.write(data)
        assert (await spr.wait_bytes(9 + len(data)))[9:] == data
        server_inner.write(b"inner reply")
        assert (await pr.wait_bytes(3 + 11))[3:] == b"inner reply"
        inner.close()
        await spr.lost
        await pr.lost
        # Again, ending with abort(): the inner TLS layer closes the outer one.
        tr2, pr2 = await tls_connect(loop, addr)
        inner2 = await upgrade_client(loop, tr2, pr2)
        spr2 = collect.protocols[1]
        await spr2.upgraded
        inner2.abort()
        assert await pr2.lost is None
        assert tr2.is_closing()
        await spr2.lost
        await close_server(server)

    run(loop, main())


def test_start_tls_failure_closes_the_transport(loop: Loop) -> None:
    async def main() -> None:
        collect = Collect(loop, lambda: Upgrader(loop, certs.server_context(), name="server"))
        server = await loop.create_server(collect, "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()
        tr, pr = await loop.create_connection(lambda: Recorder(loop), *addr)
        with pytest.raises(ssl.SSLCertVerificationError):
            await upgrade_client(loop, tr, pr, ctx=certs.other_client_context())
        assert tr.is_closing()
        spr = await collect.first
        # The client closes without an alert: the server sees an EOF.
        with pytest.raises(ConnectionResetError):
            await spr.upgraded
        await close_server(server)

    run(loop, main())


def test_start_tls_cancelled(loop: Loop) -> None:
    async def main() -> None:
        tr, pr, peer = await plain_pair(loop)
        with peer:
            task = asyncio.ensure_future(
                loop.start_tls(tr, pr, certs.client_context(), server_hostname=HOST)
            )
            assert (await loop.sock_recv(peer, 65536))[:1] == b"\x16"  # ClientHello
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert tr.is_closing()
            assert await read_until_eof(loop, peer) == b""

    run(loop, main())


def test_start_tls_handshake_timeout(loop: Loop) -> None:
    async def main() -> None:
        tr, pr, peer = await plain_pair(loop)
        with peer:
            with pytest.raises(ConnectionAbortedError):
                await loop.start_tls(
                    tr, pr, certs.client_context(), server_hostname=HOST, ssl_handshake_timeout=0.1
                )
            assert tr.is_closing()

    run(loop, main())


def test_start_tls_on_a_closing_transport_returns_none(loop: Loop) -> None:
    async def main() -> None:
        tr, pr, peer = await plain_pair(loop)
        with peer:
            tr.close()
            assert (
                await loop.start_tls(tr, pr, certs.client_context(), server_hostname=HOST) is None
            )

    run(loop, main())


def test_start_tls_unix(loop: Loop, unix_path: str) -> None:
    path = unix_path

    async def main() -> None:
        collect = Collect(loop, lambda: Upgrader(loop, certs.server_context(), name="server"))
        server = await loop.create_unix_server(collect, path)
        tr, pr = await loop.create_unix_connection(lambda: Recorder(loop), path)
        new_tr = await upgrade_client(loop, tr, pr)
        spr = await collect.first
        await spr.upgraded
        new_tr.write(b"over unix")
        assert (await spr.wait_bytes(9 + 9))[9:] == b"over unix"
        new_tr.close()
        await wait_closed(pr, spr)
        await close_server(server)

    run(loop, main())


async def plain_pair(loop: Loop) -> tuple[Any, Recorder, socket.socket]:
    with await listener(loop) as lsn:
        tr, pr = await loop.create_connection(lambda: Recorder(loop), *lsn.getsockname())
        peer, _ = await loop.sock_accept(lsn)
    peer.setblocking(False)
    return tr, pr, peer


def test_stream_writer_start_tls(loop: Loop) -> None:
    async def main() -> None:
        done = loop.create_future()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            assert await reader.readline() == b"STARTTLS\n"
            writer.write(b"GO\n")
            await writer.start_tls(certs.server_context())
            assert writer.get_extra_info("ssl_object") is not None
            line = await reader.readline()
            writer.write(line.upper())
            await writer.drain()
            assert await reader.read() == b""
            writer.close()
            await writer.wait_closed()
            done.set_result(None)

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()
        reader, writer = await asyncio.open_connection(*addr)
        writer.write(b"STARTTLS\n")
        assert await reader.readline() == b"GO\n"
        await writer.start_tls(certs.client_context(), server_hostname=HOST)
        assert writer.get_extra_info("peercert")["subjectAltName"][0] == ("DNS", HOST)
        writer.write(b"over tls\n")
        assert await reader.readline() == b"OVER TLS\n"
        writer.close()
        await writer.wait_closed()
        await done
        await close_server(server)

    run(loop, main())


def test_streams_over_tls(loop: Loop) -> None:
    async def main() -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            data = await reader.read()
            writer.write(data[::-1])
            await writer.drain()
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=certs.server_context())
        addr = server.sockets[0].getsockname()
        _reader, writer = await asyncio.open_connection(
            *addr, ssl=certs.client_context(), server_hostname=HOST
        )
        # StreamWriter.write_eof() on TLS: asyncio's transport has none.
        assert not writer.can_write_eof()
        writer.write(b"abc")
        writer.transport.close()
        await writer.wait_closed()
        await close_server(server)

    run(loop, main())


# -- sendfile ----------------------------------------------------------------------------


def test_sendfile_over_tls(loop: Loop) -> None:
    async def main() -> None:
        data = payload(300 * 1024)
        with tempfile.TemporaryFile() as f:
            f.write(data)
            f.seek(0)
            tr, pr, peer = await client_and_peer(loop)
            with peer.sock:
                with pytest.raises(RuntimeError) as info:
                    await loop.sendfile(tr, f, fallback=False)
                assert str(info.value) == (
                    f"fallback is disabled and native sendfile is not supported "
                    f"for transport {tr!r}"
                )
                receiving = asyncio.ensure_future(peer.recv(len(data) - 1000))
                assert await loop.sendfile(tr, f, 1000) == len(data) - 1000
                assert f.tell() == len(data)
                assert await receiving == data[1000:]
                tr.close()
                with pytest.raises(RuntimeError, match=r"^Transport is closing$"):
                    await loop.sendfile(tr, f)
                await peer.send_close_notify()
                await pr.lost

    run(loop, main())


# -- renegotiation (needs the openssl command) --------------------------------------------

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl command")


class LineReader:
    """Lines of a subprocess's stdout, read by a thread (no loop subprocess API)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.lines: queue.Queue[bytes] = queue.Queue()
        assert proc.stdout is not None
        self.thread = threading.Thread(target=self._pump, args=(proc.stdout,), daemon=True)
        self.thread.start()

    def _pump(self, stream: Any) -> None:
        for line in iter(stream.readline, b""):
            self.lines.put(line)
        self.lines.put(b"")

    async def wait_for(self, loop: Loop, text: bytes) -> bytes:
        while True:
            line = await loop.run_in_executor(None, self.lines.get)
            if not line or text in line:
                return line


def write_pems(tmp: str) -> tuple[str, str, str]:
    cert = certs._server_cert()
    paths = (os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem"), os.path.join(tmp, "ca"))
    cert.cert_chain_pems[0].write_to_path(paths[0])
    cert.private_key_pem.write_to_path(paths[1])
    certs.ca().cert_pem.write_to_path(paths[2])
    return paths


@needs_openssl
def test_client_initiated_renegotiation_is_refused(loop: Loop, tmp_path: Any) -> None:
    _, _, ca = write_pems(str(tmp_path))

    async def main() -> None:
        collect = Collect(loop)
        server, addr = await tls_server(
            loop, collect, ssl=certs.server_context(max_version=ssl.TLSVersion.TLSv1_2)
        )
        proc = subprocess.Popen(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{addr[1]}", "-CAfile", ca, "-tls1_2"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert proc.stdin is not None
        try:
            spr = await collect.first
            await spr.made
            proc.stdin.write(b"hello\n")
            proc.stdin.flush()
            await spr.wait_bytes(6)
            proc.stdin.write(b"R\n")  # s_client: renegotiate
            proc.stdin.flush()
            exc = await spr.lost
            # OpenSSL 3 servers refuse client-initiated renegotiation.
            assert isinstance(exc, ssl.SSLError)
            assert bytes(spr.data) == b"hello\n"
        finally:
            proc.kill()
            proc.communicate()
        await close_server(server)

    run(loop, main())


@needs_openssl
def test_server_initiated_renegotiation(loop: Loop, tmp_path: Any) -> None:
    cert, key, _ = write_pems(str(tmp_path))

    async def main() -> None:
        proc = subprocess.Popen(
            ["openssl", "s_server", "-accept", "0", "-cert", cert, "-key", key, "-tls1_2"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert proc.stdin is not None
        lines = LineReader(proc)
        try:
            line = await lines.wait_for(loop, b"ACCEPT")
            port = int(line.split(b":")[-1])
            tr, pr = await tls_connect(loop, ("127.0.0.1", port))
            proc.stdin.write(b"before\n")
            proc.stdin.flush()
            await pr.wait_bytes(7)
            proc.stdin.write(b"R\n")  # s_server: send a HelloRequest
            proc.stdin.flush()
            assert b"SSL_do_handshake" in await lines.wait_for(loop, b"SSL_do_handshake")
            proc.stdin.write(b"after\n")
            proc.stdin.flush()
            assert await pr.wait_bytes(13) == b"before\nafter\n"
            tr.write(b"from client\n")
            assert b"from client" in await lines.wait_for(loop, b"from client")
            tr.abort()
            await pr.lost
        finally:
            proc.kill()
            proc.wait()
            lines.thread.join()  # it reads stdout until EOF: let it finish first
            proc.stdin.close()
            assert proc.stdout is not None
            proc.stdout.close()

    run(loop, main())


# -- resources ---------------------------------------------------------------------------


def test_protocols_are_freed_without_the_cyclic_gc(loop: Loop) -> None:
    import gc
    import weakref

    async def main() -> list[Any]:
        server, addr = await tls_server(loop)
        ctx = certs.client_context()
        tr, pr = await tls_connect(loop, addr, ssl=ctx)
        refs = [weakref.ref(ctx), weakref.ref(tr._ssl_protocol), weakref.ref(pr)]
        tr.close()
        await pr.lost
        await close_server(server)
        await spin()
        return refs

    gc.disable()
    try:
        refs = run(loop, main())
        assert [r() for r in refs] == [None, None, None]
    finally:
        gc.enable()
