"""The websockets package (its asyncio implementation, client and server),
both ends on the loop under test: stock asyncio (the oracle) and tideloop with
every backend.

Covered: messages of several MB (compressed and not), fragmented messages
(fragment boundaries kept), keep-alive pings answered, keep-alive timeouts
(a peer that stops reading, so never answers a ping, is closed with 1011
within the ping timeout), and close handshakes as both sides see them.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from .conftest import MAIN_LOOP_KINDS
from .support import certs
from .support.servers import import_or_unavailable
from .support.streams import SMALL_SOCKBUF, Loop, payload, run, short_tmpdir

import_or_unavailable("websockets")
from websockets.asyncio.client import ClientConnection, connect, unix_connect  # noqa: E402
from websockets.asyncio.server import ServerConnection, serve, unix_serve  # noqa: E402
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK  # noqa: E402

pytestmark = pytest.mark.timeout(60)

# Tests that move many MB run on the oracle and tideloop's default backend only.
costly = pytest.mark.parametrize("loop_kind", MAIN_LOOP_KINDS, indirect=True)

BIG = 5 * 1024 * 1024 + 7

Handler = Callable[[ServerConnection], Awaitable[None]]


@asynccontextmanager
async def _pair(
    handler: Handler, server_opts: dict[str, Any] | None = None, **client_opts: Any
) -> AsyncIterator[ClientConnection]:
    """A server running ``handler`` and a client connected to it."""
    async with serve(handler, "127.0.0.1", 0, **(server_opts or {})) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", **client_opts) as client:
            yield client


async def _echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


@costly
@pytest.mark.parametrize("compression", [None, "deflate"])
def test_large_messages(loop: Loop, compression: str | None) -> None:
    # Random bytes without compression; compressible data, and less of it (zlib
    # costs time), with permessage-deflate.
    size = BIG if compression is None else BIG // 4
    binary = os.urandom(size) if compression is None else payload(size)
    text = "".join(f"line {i} ñ\n" for i in range(size // 10))
    opts: dict[str, Any] = {"max_size": None, "compression": compression}

    async def main() -> None:
        async with _pair(_echo, opts, **opts) as client:
            await client.send(binary)
            assert await client.recv() == binary
            await client.send(text)
            assert await client.recv() == text
            # Several messages in flight at once come back in order.
            for i in range(3):
                await client.send(binary[i:])
            for i in range(3):
                assert await client.recv() == binary[i:]

    run(loop, main(), timeout=45)


@costly
def test_fragmented_messages(loop: Loop) -> None:
    fragments = [payload(size, salt) for salt, size in enumerate([1, 70_000, 3, 2_000_000, 9])]

    # Sending an iterable, websockets sends each item as a frame, then an empty
    # final frame (it cannot know which item is the last).
    expected = [*fragments, b""]
    server_got: asyncio.Future[list[bytes]] = loop.create_future()

    async def handler(ws: ServerConnection) -> None:
        # Reassemble one message; echo the next one fragment by fragment.
        whole = await ws.recv()
        await ws.send(whole)
        received = [fragment async for fragment in ws.recv_streaming()]
        server_got.set_result(received)
        await ws.send(fragment for fragment in received if fragment)
        await ws.send(iter(["tex", "t fr", "agments ñ"]))

    async def main() -> None:
        async with _pair(handler, {"max_size": None}, max_size=None) as client:
            await client.send(fragments)
            assert await client.recv() == b"".join(fragments)
            await client.send(iter(fragments))
            assert await server_got == expected
            assert [fragment async for fragment in client.recv_streaming()] == expected
            assert await client.recv() == "text fragments ñ"

    run(loop, main(), timeout=45)


def test_keepalive_pings_are_answered(loop: Loop) -> None:
    opts = {"ping_interval": 0.05, "ping_timeout": 2}
    latencies: asyncio.Future[float] = loop.create_future()

    async def handler(ws: ServerConnection) -> None:
        message = await ws.recv()
        latencies.set_result(ws.latency)
        await ws.send(message)
        await _echo(ws)

    async def main() -> None:
        async with _pair(handler, opts, **opts) as client:
            # An explicit ping with a payload is answered with its pong.
            pong = await client.ping(b"tide")
            assert await pong >= 0
            # Idle past several keep-alive intervals: both sides ping and the
            # connection stays open (the passing of time is what is tested).
            await asyncio.sleep(0.3)
            await client.send("still there?")
            assert await latencies > 0  # the server's keep-alive pings were answered
            assert client.latency > 0
            assert await client.recv() == "still there?"

    run(loop, main())


@pytest.mark.parametrize("silent", ["client", "server"])
def test_keepalive_timeout_closes_with_1011(loop: Loop, silent: str) -> None:
    """The side that pings closes the connection with 1011 when the other stops
    reading (and so never answers), within ping_interval + ping_timeout."""
    interval, timeout, close_timeout = 0.1, 0.25, 0.2
    pinging = {"ping_interval": interval, "ping_timeout": timeout, "close_timeout": close_timeout}
    quiet = {"ping_interval": None, "close_timeout": close_timeout}
    server_opts, client_opts = (pinging, quiet) if silent == "client" else (quiet, pinging)
    # What each side saw: when its connection closed, the exception, close code and reason.
    Seen = tuple[float, BaseException, int | None, str | None]
    server_seen: asyncio.Future[Seen] = loop.create_future()
    paused: asyncio.Future[float] = loop.create_future()
    resume: asyncio.Future[None] = loop.create_future()

    async def handler(ws: ServerConnection) -> None:
        if silent == "server":
            ws.transport.pause_reading()
            paused.set_result(loop.time())
            await resume
            ws.transport.resume_reading()
        try:
            await ws.recv()
        except Exception as exc:
            server_seen.set_result((loop.time(), exc, ws.close_code, ws.close_reason))
        else:
            server_seen.set_exception(AssertionError("the server received a message"))

    async def main() -> None:
        async with _pair(handler, server_opts, **client_opts) as client:

            async def client_sees() -> Seen:
                try:
                    await client.recv()
                except Exception as exc:
                    return loop.time(), exc, client.close_code, client.close_reason
                raise AssertionError("the client received a message")

            if silent == "client":
                client.transport.pause_reading()
                paused.set_result(loop.time())
                pinger = await server_seen
                client.transport.resume_reading()
                quiet = await client_sees()
            else:
                pinger = await client_sees()
                resume.set_result(None)
                quiet = await server_seen
        # The pinging side sent 1011 and, hearing nothing back, dropped the
        # connection close_timeout later: abnormal closure (1006) on its side.
        closed_at, exc, code, reason = pinger
        assert isinstance(exc, ConnectionClosedError)
        assert exc.sent is not None and exc.rcvd is None
        assert (exc.sent.code, exc.sent.reason) == (1011, "keepalive ping timeout")
        assert (code, reason) == (1006, "")
        elapsed = closed_at - await paused
        assert timeout - 0.01 <= elapsed < interval + timeout + close_timeout + 3.0  # slack: load
        # The silent side, reading again, finds the 1011 close frame.
        _, exc, code, reason = quiet
        assert isinstance(exc, ConnectionClosedError)
        assert exc.rcvd is not None
        assert (exc.rcvd.code, exc.rcvd.reason) == (1011, "keepalive ping timeout")
        assert (code, reason) == (1011, "keepalive ping timeout")

    run(loop, main())


@pytest.mark.parametrize("closer", ["client", "server", "server-abort", "server-shutdown"])
def test_close_handshake(loop: Loop, closer: str) -> None:
    seen: asyncio.Future[tuple[Any, ...]] = loop.create_future()

    async def handler(ws: ServerConnection) -> None:
        try:
            if closer == "server":
                await ws.send("bye")
                await ws.close(4001, "server says bye")
            elif closer == "server-abort":
                await ws.send("bye")
                ws.transport.abort()
            elif closer == "server-shutdown":
                await ws.send("bye")
                # Closing the server closes its connections with 1001 ("going away").
                ws.server.close()
            await ws.recv()
        except (ConnectionClosedOK, ConnectionClosedError) as exc:
            seen.set_result((type(exc), exc.rcvd, exc.sent, exc.rcvd_then_sent, ws.close_code,
                             ws.close_reason))  # fmt: skip

    async def main() -> None:
        async with _pair(handler) as client:
            if closer == "server-shutdown":
                assert await client.recv() == "bye"
                with pytest.raises(ConnectionClosedOK) as shut:
                    await client.recv()
                assert shut.value.rcvd is not None
                assert (shut.value.rcvd.code, client.close_code) == (1001, 1001)
                kind, rcvd, sent, rcvd_then_sent, code, _ = await seen
                assert kind is ConnectionClosedOK
                assert (sent.code, code, rcvd_then_sent) == (1001, 1001, False)
                return
            if closer == "client":
                await client.close(4000, "client says bye")
                assert (client.close_code, client.close_reason) == (4000, "client says bye")
                kind, rcvd, sent, rcvd_then_sent, code, reason = await seen
                assert kind is ConnectionClosedError  # 4000 is not a normal closure
                assert (rcvd.code, rcvd.reason) == (4000, "client says bye")
                assert (sent.code, sent.reason) == (4000, "client says bye")  # echoed
                assert rcvd_then_sent is True
                assert (code, reason) == (4000, "client says bye")
                # A closed connection refuses to send, saying how it closed.
                with pytest.raises(ConnectionClosedError, match="4000"):
                    await client.send("late")
                return
            assert await client.recv() == "bye"
            with pytest.raises((ConnectionClosedOK, ConnectionClosedError)) as info:
                await client.recv()
            exc = info.value
            if closer == "server":
                assert type(exc) is ConnectionClosedError
                assert exc.rcvd is not None and exc.sent is not None
                assert (exc.rcvd.code, exc.rcvd.reason) == (4001, "server says bye")
                assert exc.rcvd_then_sent is True
                assert (client.close_code, client.close_reason) == (4001, "server says bye")
                kind, rcvd, sent, rcvd_then_sent, code, reason = await seen
                assert (sent.code, sent.reason) == (4001, "server says bye")
                assert (rcvd.code, rcvd.reason) == (4001, "server says bye")
                assert rcvd_then_sent is False
                assert (code, reason) == (4001, "server says bye")
            else:
                # The TCP connection dropped without a close frame: 1006, no reason.
                assert type(exc) is ConnectionClosedError
                assert exc.rcvd is None
                assert (client.close_code, client.close_reason) == (1006, "")
                kind, rcvd, sent, _, code, _ = await seen
                assert kind is ConnectionClosedError and rcvd is None and sent is None
                assert code == 1006

    run(loop, main())


def test_normal_closure_from_the_client(loop: Loop) -> None:
    seen: asyncio.Future[tuple[int | None, str | None]] = loop.create_future()

    async def handler(ws: ServerConnection) -> None:
        async for message in ws:  # ends quietly on a normal closure
            await ws.send(message)
        seen.set_result((ws.close_code, ws.close_reason))

    async def main() -> None:
        async with _pair(handler) as client:
            await client.send("x")
            assert await client.recv() == "x"
        # Leaving the context closes with 1000, no reason.
        assert (client.close_code, client.close_reason) == (1000, "")
        assert await seen == (1000, "")

    run(loop, main())


@costly
def test_tls_and_unix_socket(loop: Loop) -> None:
    message = os.urandom(BIG // 2)  # TLS in Python is costly: a smaller "large" message

    async def main() -> None:
        # wss:// with certificate verification (the server's IP address is in its certificate).
        async with serve(_echo, "127.0.0.1", 0, ssl=certs.server_context(), max_size=None) as srv:
            port = srv.sockets[0].getsockname()[1]
            async with connect(
                f"wss://127.0.0.1:{port}", ssl=certs.client_context(), max_size=None
            ) as client:
                assert client.transport.get_extra_info("sslcontext") is not None
                await client.send(message)
                assert await client.recv() == message
                await client.send(iter([b"a", b"b" * 100_000]))
                assert await client.recv() == b"a" + b"b" * 100_000
                await client.close(4002, "tls bye")
                assert client.close_code == 4002
        # A Unix socket server and client.
        path = os.path.join(short_tmpdir(), "ws.sock")
        try:
            async with unix_serve(_echo, path, max_size=None):
                async with unix_connect(path, max_size=None) as client:
                    await client.send(message)
                    assert await client.recv() == message
                    await client.send("unix ñ")
                    assert await client.recv() == "unix ñ"
        finally:
            shutil.rmtree(os.path.dirname(path), ignore_errors=True)

    run(loop, main(), timeout=45)


@costly
def test_back_pressure_blocks_the_sender(loop: Loop) -> None:
    """A reader that stops reading blocks the sender's ``send()`` (websockets'
    receive queue pauses the transport, the kernel buffers fill, the sender's
    transport buffer passes its high-water mark), and nothing is lost."""
    count, size = 64, 256 * 1024  # 16 MiB: far more than every buffer on the way
    all_sent: asyncio.Future[None] = loop.create_future()

    async def handler(ws: ServerConnection) -> None:
        ws.transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_SOCKBUF
        )
        for i in range(count):
            await ws.send(payload(size, salt=i))
        all_sent.set_result(None)
        await ws.wait_closed()

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, compression=None) as server:
            port = server.sockets[0].getsockname()[1]
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_SOCKBUF)
            sock.setblocking(False)
            await loop.sock_connect(sock, ("127.0.0.1", port))
            async with connect(
                f"ws://127.0.0.1:{port}", sock=sock, max_queue=2, compression=None
            ) as client:
                # While the client reads nothing, the server cannot finish.
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(all_sent), 0.3)
                for i in range(count):
                    assert await client.recv() == payload(size, salt=i)
                await all_sent

    run(loop, main(), timeout=45)


class _TrackedSocket(socket.socket):
    """A socket subclass that records which of its methods the loop calls."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.used_for_read = False
        self.used_for_write = False
        super().__init__(*args, **kwargs)

    def recv(self, *args: Any, **kwargs: Any) -> Any:
        self.used_for_read = True
        return super().recv(*args, **kwargs)

    def recv_into(self, *args: Any, **kwargs: Any) -> Any:
        self.used_for_read = True
        return super().recv_into(*args, **kwargs)

    def send(self, *args: Any, **kwargs: Any) -> Any:
        self.used_for_write = True
        return super().send(*args, **kwargs)

    def sendmsg(self, *args: Any, **kwargs: Any) -> Any:
        self.used_for_write = True
        return super().sendmsg(*args, **kwargs)


def test_explicit_socket_subclass_is_used(loop: Loop) -> None:
    """A connection made on a socket passed with ``sock=`` reads and writes
    through that socket object's methods (websockets' own test suite checks
    this with a socket subclass that records them)."""

    async def main() -> None:
        async with serve(_echo, "127.0.0.1", 0) as server:
            sock = _TrackedSocket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            await loop.sock_connect(sock, server.sockets[0].getsockname())
            assert not sock.used_for_read and not sock.used_for_write
            async with connect("ws://localhost/", sock=sock, ping_interval=None) as client:
                await client.send("Hello!")
                assert await client.recv() == "Hello!"
            assert sock.used_for_read
            assert sock.used_for_write

    run(loop, main())
