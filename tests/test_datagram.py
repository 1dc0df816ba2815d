"""Datagram endpoints (src/tideloop/_transports/_datagram.py):
``loop.create_datagram_endpoint`` and the datagram transport.

Every test runs on stock asyncio (the oracle) and on tideloop with each
backend, and asserts what protocols and users observe: the callbacks and
their order, what peers receive, exceptions and their messages,
exception-handler contexts. Loopback and AF_UNIX only; no sleeps: tests wait
on futures, and ``spin()`` only lets the loop turn.

Sends the kernel refuses are produced two ways: for real, with an AF_UNIX
datagram peer that does not read (the kernel queues at most
``net.unix.max_dgram_qlen`` datagrams for it), and with ``GatedSocket``, a
socket whose sends raise what a test says (a fake at the socket's public
surface, the same for both loops).
"""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import os
import socket
import sys
import warnings
from collections.abc import Callable
from typing import Any

import pytest

from .conftest import ErrorLog
from .support.streams import HAS_IPV6, run, short_tmpdir, spin

pytestmark = pytest.mark.timeout(30)

Loop = asyncio.AbstractEventLoop
PY312 = sys.version_info >= (3, 12)
PY313 = sys.version_info >= (3, 13)
# 3.13 counts 8 bytes of header per queued datagram.
HEADER = 8 if PY313 else 0
needs_ipv6 = pytest.mark.skipif(not HAS_IPV6, reason="no IPv6 loopback")


def _asyncio_forgets_header() -> bool:
    """3.13.0-3.13.5: the header is added when queued, never subtracted (gh-135444)."""
    cls: Any = asyncio.selector_events._SelectorDatagramTransport  # type: ignore[attr-defined]
    return PY313 and not hasattr(cls, "_header_size")


# -- helpers ---------------------------------------------------------------------------


class Recorder(asyncio.DatagramProtocol):
    """Records every callback; ``until(pred)`` waits for a state."""

    def __init__(self, loop: Loop) -> None:
        self.loop = loop
        self.events: list[str] = []
        self.datagrams: list[tuple[bytes, Any]] = []
        self.errors: list[OSError] = []
        self.transport: Any = None
        self.lost: asyncio.Future[BaseException | None] = loop.create_future()
        self._changed: list[asyncio.Future[None]] = []

    def _note(self, event: str) -> None:
        self.events.append(event)
        for fut in self._changed:
            if not fut.done():
                fut.set_result(None)
        self._changed.clear()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self._note("made")

    def datagram_received(self, data: bytes, addr: Any) -> None:
        assert type(data) is bytes
        self.datagrams.append((data, addr))
        self._note("datagram")

    def error_received(self, exc: Exception) -> None:
        assert isinstance(exc, OSError)
        self.errors.append(exc)
        self._note("error")

    def connection_lost(self, exc: BaseException | None) -> None:
        self._note("lost")
        self.lost.set_result(exc)

    def pause_writing(self) -> None:
        self._note("pause")

    def resume_writing(self) -> None:
        self._note("resume")

    async def until(self, pred: Callable[[], bool]) -> None:
        while not pred():
            fut = self.loop.create_future()
            self._changed.append(fut)
            await fut

    async def wait_datagrams(self, n: int) -> list[bytes]:
        await self.until(lambda: len(self.datagrams) >= n)
        return [d for d, _ in self.datagrams]

    async def wait_errors(self, n: int) -> list[OSError]:
        await self.until(lambda: len(self.errors) >= n)
        return self.errors


class GatedSocket(socket.socket):
    """A UDP socket whose send()/sendto() raise ``fail`` (if set) instead of sending."""

    fail: BaseException | None = None
    attempts = 0

    def sendto(self, data: Any, *args: Any) -> int:  # type: ignore[override]
        self.attempts += 1
        if self.fail is not None:
            raise self.fail
        return super().sendto(data, *args)

    def send(self, data: Any, *args: Any) -> int:  # type: ignore[override]
        self.attempts += 1
        if self.fail is not None:
            raise self.fail
        return super().send(data, *args)


def udp_peer(host: str = "127.0.0.1") -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.setblocking(False)
    return sock


async def recv_from(loop: Loop, sock: socket.socket) -> tuple[bytes, Any]:
    return await loop.sock_recvfrom(sock, 65536)


async def endpoint(loop: Loop, **kw: Any) -> tuple[Any, Recorder]:
    tr, pr = await loop.create_datagram_endpoint(lambda: Recorder(loop), **kw)
    assert isinstance(pr, Recorder)
    return tr, pr


async def close(tr: Any, pr: Recorder) -> BaseException | None:
    tr.close()
    return await pr.lost


def refused_port() -> int:
    """A UDP port with nobody listening (closed just now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unix_dgram(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    return sock


def body(repr_text: str) -> str:
    """repr() without the class name, which differs between loops."""
    return repr_text.split(" ", 1)[1]


# -- creating endpoints -----------------------------------------------------------------


def test_local_addr_receive_and_reply(loop: Loop) -> None:
    async def main() -> None:
        tr, pr = await endpoint(loop, local_addr=("127.0.0.1", 0))
        assert pr.events == ["made"]
        assert pr.transport is tr
        assert tr.get_protocol() is pr
        addr = tr.get_extra_info("sockname")
        assert addr[0] == "127.0.0.1" and addr[1] != 0
        assert tr.get_extra_info("peername") is None
        tsock = tr.get_extra_info("socket")
        assert isinstance(tsock, asyncio.trsock.TransportSocket)
        assert tsock.type == socket.SOCK_DGRAM and tsock.gettimeout() == 0
        assert tr.get_extra_info("nonexistent", "dflt") == "dflt"
        with udp_peer() as peer:
            peer.sendto(b"hello", addr)
            assert await pr.wait_datagrams(1) == [b"hello"]
            assert pr.datagrams[0][1] == peer.getsockname()
            tr.sendto(b"reply", peer.getsockname())
            assert await recv_from(loop, peer) == (b"reply", addr)
        assert await close(tr, pr) is None
        assert pr.events == ["made", "datagram", "lost"]
        assert tsock.fileno() == -1

    run(loop, main())


def test_transport_types(loop: Loop, is_tideloop: bool) -> None:
    async def main() -> None:
        tr, pr = await endpoint(loop, local_addr=("127.0.0.1", 0))
        assert isinstance(tr, asyncio.Transport)
        # 3.11's asyncio transport is not a DatagramTransport (fixed in 3.12);
        # ours is on every version.
        assert isinstance(tr, asyncio.DatagramTransport) is (PY312 or is_tideloop)
        with pytest.raises(NotImplementedError):
            tr.write(b"x")
        with pytest.raises(NotImplementedError):
            tr.writelines([b"x"])
        with pytest.raises(NotImplementedError):
            tr.can_write_eof()
        await close(tr, pr)

    run(loop, main())


def test_remote_addr_connects(loop: Loop) -> None:
    async def main() -> None:
        with udp_peer() as peer:
            paddr = peer.getsockname()
            tr, pr = await endpoint(loop, remote_addr=paddr)
            assert tr.get_extra_info("peername") == paddr
            local = tr.get_extra_info("sockname")
            tr.sendto(b"one")
            tr.sendto(b"two", paddr)
            assert await recv_from(loop, peer) == (b"one", local)
            assert await recv_from(loop, peer) == (b"two", local)
            with pytest.raises(ValueError) as info:
                tr.sendto(b"x", ("127.0.0.1", 1))
            assert str(info.value) == f"Invalid address: must be None or {paddr}"
            peer.sendto(b"back", local)
            assert await pr.wait_datagrams(1) == [b"back"]
            assert pr.datagrams[0][1] == paddr
            await close(tr, pr)

    run(loop, main())


def test_local_and_remote_addr(loop: Loop) -> None:
    async def main() -> None:
        with udp_peer() as peer:
            tr, pr = await endpoint(
                loop, local_addr=("127.0.0.1", 0), remote_addr=peer.getsockname()
            )
            tr.sendto(b"x")
            data, src = await recv_from(loop, peer)
            assert (data, src) == (b"x", tr.get_extra_info("sockname"))
            await close(tr, pr)

    run(loop, main())


def test_port_given_as_string(loop: Loop) -> None:
    async def main() -> None:
        with udp_peer() as peer:
            port = str(peer.getsockname()[1])
            tr, pr = await endpoint(loop, remote_addr=("127.0.0.1", port))
            assert tr.get_extra_info("peername") == peer.getsockname()
            await close(tr, pr)

    run(loop, main())


@needs_ipv6
def test_ipv6_endpoint(loop: Loop) -> None:
    async def main() -> None:
        tr, pr = await endpoint(loop, local_addr=("::1", 0))
        addr = tr.get_extra_info("sockname")
        assert addr[0] == "::1"
        assert tr.get_extra_info("socket").family == socket.AF_INET6
        with udp_peer("::1") as peer:
            peer.sendto(b"six", addr[:2])
            assert await pr.wait_datagrams(1) == [b"six"]
            tr.sendto(b"back", pr.datagrams[0][1])
            assert (await recv_from(loop, peer))[0] == b"back"
        await close(tr, pr)

    run(loop, main())


@needs_ipv6
def test_ipv6_remote_address_is_compared_as_resolved(loop: Loop) -> None:
    # remote_addr is kept as getaddrinfo returned it (a 4-tuple for IPv6), and
    # sendto() compares the caller's address with that.
    async def main() -> None:
        with udp_peer("::1") as peer:
            port = peer.getsockname()[1]
            tr, pr = await endpoint(loop, remote_addr=("::1", port))
            with pytest.raises(ValueError) as info:
                tr.sendto(b"x", ("::1", port))
            assert str(info.value) == f"Invalid address: must be None or ('::1', {port}, 0, 0)"
            tr.sendto(b"x", ("::1", port, 0, 0))
            assert (await recv_from(loop, peer))[0] == b"x"
            await close(tr, pr)

    run(loop, main())


def test_cancelled_while_connecting_closes_the_transport(loop: Loop) -> None:
    made: list[Recorder] = []

    def factory() -> Recorder:
        made.append(Recorder(loop))
        return made[-1]

    async def main() -> None:
        task = loop.create_task(loop.create_datagram_endpoint(factory, local_addr=("127.0.0.1", 0)))
        await asyncio.sleep(0)  # the task now waits for connection_made
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        [pr] = made
        assert await pr.lost is None
        assert pr.events == ["made", "lost"]

    run(loop, main())


def test_set_protocol(loop: Loop) -> None:
    async def main() -> None:
        tr, first = await endpoint(loop, local_addr=("127.0.0.1", 0))
        second = Recorder(loop)
        tr.set_protocol(second)
        assert tr.get_protocol() is second
        with udp_peer() as peer:
            peer.sendto(b"to the second", tr.get_extra_info("sockname"))
            assert await second.wait_datagrams(1) == [b"to the second"]
        assert first.datagrams == []
        tr.close()
        assert await second.lost is None
        assert first.events == ["made"]

    run(loop, main())


def test_family_only_makes_unbound_socket(loop: Loop) -> None:
    async def main() -> None:
        tr, pr = await endpoint(loop, family=socket.AF_INET)
        assert tr.get_extra_info("sockname") == ("0.0.0.0", 0)
        assert tr.get_extra_info("peername") is None
        with udp_peer() as peer:
            tr.sendto(b"auto-bound", peer.getsockname())
            assert (await recv_from(loop, peer))[0] == b"auto-bound"
        await close(tr, pr)

    run(loop, main())


def test_sock_argument(loop: Loop) -> None:
    async def main() -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        addr = sock.getsockname()
        tr, pr = await endpoint(loop, sock=sock)
        assert sock.getblocking() is False
        assert tr.get_extra_info("socket").fileno() == sock.fileno()
        assert tr.get_extra_info("sockname") == addr
        with udp_peer() as peer:
            peer.sendto(b"via sock", addr)
            assert await pr.wait_datagrams(1) == [b"via sock"]
        await close(tr, pr)
        assert sock.fileno() == -1  # the transport closed it

    run(loop, main())


def test_connected_sock_argument_ignores_addr(loop: Loop) -> None:
    # A socket connected beforehand has a peername but no remote_addr: sendto()
    # sends to the peer whatever address it is given (asyncio's send() path).
    async def main() -> None:
        with udp_peer() as peer:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.connect(peer.getsockname())
            tr, pr = await endpoint(loop, sock=sock)
            tr.sendto(b"x", ("127.0.0.1", 1))
            assert (await recv_from(loop, peer))[0] == b"x"
            await close(tr, pr)

    run(loop, main())


def test_reuse_port(loop: Loop) -> None:
    if not hasattr(socket, "SO_REUSEPORT"):
        pytest.skip("no SO_REUSEPORT")

    async def main() -> None:
        tr1, pr1 = await endpoint(loop, local_addr=("127.0.0.1", 0), reuse_port=True)
        addr = tr1.get_extra_info("sockname")
        tr2, pr2 = await endpoint(loop, local_addr=addr, reuse_port=True)
        assert tr2.get_extra_info("sockname") == addr
        assert tr2.get_extra_info("socket").getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
        await close(tr1, pr1)
        await close(tr2, pr2)

    run(loop, main())


def test_allow_broadcast_does_not_connect(loop: Loop) -> None:
    async def main() -> None:
        with udp_peer() as peer:
            paddr = peer.getsockname()
            tr, pr = await endpoint(loop, remote_addr=paddr, allow_broadcast=True)
            sock = tr.get_extra_info("socket")
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST)
            assert tr.get_extra_info("peername") is None
            # Still bound to remote_addr for sendto()'s checks.
            tr.sendto(b"bc")
            assert (await recv_from(loop, peer))[0] == b"bc"
            with pytest.raises(ValueError, match="Invalid address: must be None or"):
                tr.sendto(b"x", ("127.0.0.1", 1))
            await close(tr, pr)

    run(loop, main())


def test_resolves_names(loop: Loop) -> None:
    async def main() -> None:
        tr, pr = await endpoint(loop, local_addr=("localhost", 0), family=socket.AF_INET)
        assert tr.get_extra_info("sockname")[0] == "127.0.0.1"
        await close(tr, pr)

    run(loop, main())


def test_bind_error_is_raised_unchanged(loop: Loop) -> None:
    async def main() -> None:
        with udp_peer() as taken:
            with pytest.raises(OSError) as info:
                await endpoint(loop, local_addr=taken.getsockname())
            assert info.value.errno == errno.EADDRINUSE
            assert str(info.value) == f"[Errno {errno.EADDRINUSE}] {os.strerror(errno.EADDRINUSE)}"

    run(loop, main())


def test_protocol_factory_error_propagates(loop: Loop) -> None:
    def factory() -> asyncio.DatagramProtocol:
        raise ZeroDivisionError

    async def main() -> None:
        with pytest.raises(ZeroDivisionError):
            await loop.create_datagram_endpoint(factory, local_addr=("127.0.0.1", 0))

    # asyncio leaks the socket it made (collected later): let that happen now,
    # so the fd-leak check sees the same on both loops.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        run(loop, main())
        gc.collect()


# -- argument errors ----------------------------------------------------------------


def test_no_address_and_no_family(loop: Loop) -> None:
    async def main() -> None:
        with pytest.raises(ValueError, match=r"^unexpected address family$"):
            await endpoint(loop)

    run(loop, main())


@pytest.mark.parametrize(
    "kw",
    [
        {"local_addr": ("127.0.0.1", 0, 0)},
        {"local_addr": ["127.0.0.1", 0]},
        {"remote_addr": "127.0.0.1:9"},
    ],
    ids=["3-tuple", "list", "str"],
)
def test_address_must_be_2_tuple(loop: Loop, kw: dict[str, Any]) -> None:
    async def main() -> None:
        with pytest.raises(TypeError, match=r"^2-tuple is expected$"):
            await endpoint(loop, **kw)

    run(loop, main())


def test_no_common_family(loop: Loop) -> None:
    async def main() -> None:
        with pytest.raises(ValueError, match=r"^can not get address information$"):
            await endpoint(loop, local_addr=("127.0.0.1", 0), remote_addr=("::1", 9))

    run(loop, main())


def test_reuse_address_is_gone(loop: Loop) -> None:
    async def main() -> None:
        with pytest.raises(TypeError, match="unexpected keyword argument 'reuse_address'"):
            await loop.create_datagram_endpoint(  # type: ignore[call-arg]
                asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0), reuse_address=True
            )

    run(loop, main())


def test_sock_must_be_datagram(loop: Loop) -> None:
    async def main() -> None:
        with socket.socket() as sock:
            with pytest.raises(ValueError) as info:
                await endpoint(loop, sock=sock)
            if PY313:
                assert str(info.value) == f"A datagram socket was expected, got {sock!r}"
            else:
                assert str(info.value) == f"A UDP Socket was expected, got {sock!r}"

    run(loop, main())


def test_sock_with_socket_modifiers(loop: Loop) -> None:
    async def main() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            with pytest.raises(ValueError) as info:
                await endpoint(
                    loop,
                    sock=sock,
                    local_addr=("127.0.0.1", 0),
                    family=socket.AF_INET,
                    flags=0,
                    allow_broadcast=True,
                )
            assert str(info.value) == (
                "socket modifier keyword arguments can not be used when sock is "
                "specified. (local_addr=('127.0.0.1', 0), "
                f"family={socket.AF_INET}, allow_broadcast=True)"
            )
            assert sock.getblocking() is True  # untouched

    run(loop, main())


@pytest.mark.skipif(not PY312, reason="3.11 takes a socket already used by a transport")
def test_sock_in_use_by_another_transport(loop: Loop) -> None:
    async def main() -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tr, pr = await endpoint(loop, sock=sock)
        with pytest.raises(RuntimeError) as info:
            await endpoint(loop, sock=sock)
        assert str(info.value).startswith(f"File descriptor {sock!r} is used by transport <")
        await close(tr, pr)

    run(loop, main())


# -- AF_UNIX ----------------------------------------------------------------------------


def test_unix_local_and_remote(loop: Loop) -> None:
    async def main() -> None:
        tmp = short_tmpdir()
        server_path = os.path.join(tmp, "srv")
        client_path = os.path.join(tmp, "cli")
        srv, spr = await endpoint(loop, family=socket.AF_UNIX, local_addr=server_path)
        assert srv.get_extra_info("sockname") == server_path
        cli, cpr = await endpoint(
            loop, family=socket.AF_UNIX, local_addr=client_path, remote_addr=server_path
        )
        assert cli.get_extra_info("peername") == server_path
        cli.sendto(b"over unix")
        assert await spr.wait_datagrams(1) == [b"over unix"]
        assert spr.datagrams[0][1] == client_path
        srv.sendto(b"reply", client_path)
        assert await cpr.wait_datagrams(1) == [b"reply"]
        with pytest.raises(ValueError, match="Invalid address: must be None or"):
            cli.sendto(b"x", "/nonexistent")
        await close(srv, spr)
        await close(cli, cpr)
        # asyncio leaves the socket files behind.
        assert os.path.exists(server_path) and os.path.exists(client_path)
        os.unlink(server_path)
        os.unlink(client_path)
        os.rmdir(tmp)

    run(loop, main())


def test_unix_replaces_stale_socket_file(loop: Loop) -> None:
    async def main() -> None:
        tmp = short_tmpdir()
        path = os.path.join(tmp, "stale")
        unix_dgram(path).close()  # leaves the socket file
        assert os.path.exists(path)
        tr, pr = await endpoint(loop, family=socket.AF_UNIX, local_addr=path)
        assert tr.get_extra_info("sockname") == path
        await close(tr, pr)
        os.unlink(path)
        os.rmdir(tmp)

    run(loop, main())


def test_unix_does_not_remove_regular_file(loop: Loop) -> None:
    async def main() -> None:
        tmp = short_tmpdir()
        path = os.path.join(tmp, "file")
        with open(path, "w"):
            pass
        with pytest.raises(OSError) as info:
            await endpoint(loop, family=socket.AF_UNIX, local_addr=path)
        assert info.value.errno == errno.EADDRINUSE
        os.unlink(path)
        os.rmdir(tmp)

    run(loop, main())


def test_unix_unbound(loop: Loop) -> None:
    async def main() -> None:
        tmp = short_tmpdir()
        path = os.path.join(tmp, "peer")
        with unix_dgram(path) as peer:
            tr, pr = await endpoint(loop, family=socket.AF_UNIX)
            tr.sendto(b"anon", path)
            assert (await recv_from(loop, peer))[0] == b"anon"
            await close(tr, pr)
        os.unlink(path)
        os.rmdir(tmp)

    run(loop, main())


@pytest.mark.parametrize(
    "kw",
    [{"local_addr": ("127.0.0.1", 0)}, {"remote_addr": b"/tmp/x"}],
    ids=["tuple", "bytes"],
)
def test_unix_address_must_be_str(loop: Loop, kw: dict[str, Any]) -> None:
    async def main() -> None:
        with pytest.raises(TypeError, match=r"^string is expected$"):
            await endpoint(loop, family=socket.AF_UNIX, **kw)

    run(loop, main())


# -- sendto -------------------------------------------------------------------------------


@pytest.mark.parametrize("data", ["text", 42, None, [b"x"]], ids=["str", "int", "None", "list"])
def test_sendto_rejects_non_bytes(loop: Loop, data: Any) -> None:
    async def main() -> None:
        tr, pr = await endpoint(loop, local_addr=("127.0.0.1", 0))
        with pytest.raises(TypeError) as info:
            tr.sendto(data, ("127.0.0.1", 9))
        assert str(info.value) == (
            f"data argument must be a bytes-like object, not {type(data).__name__!r}"
        )
        await close(tr, pr)

    run(loop, main())


def test_sendto_bytes_like(loop: Loop) -> None:
    async def main() -> None:
        tr, pr = await endpoint(loop, local_addr=("127.0.0.1", 0))
        with udp_peer() as peer:
            addr = peer.getsockname()
            buf = bytearray(b"mutable")
            tr.sendto(buf, addr)
            buf[:] = b"changed"
            tr.sendto(memoryview(b"view")[1:], addr)
            assert (await recv_from(loop, peer))[0] == b"mutable"
            assert (await recv_from(loop, peer))[0] == b"iew"
        await close(tr, pr)

    run(loop, main())


def test_empty_datagrams(loop: Loop) -> None:
    async def main() -> None:
        tr, pr = await endpoint(loop, local_addr=("127.0.0.1", 0))
        with udp_peer() as peer:
            # Receiving an empty datagram works on every version.
            peer.sendto(b"", tr.get_extra_info("sockname"))
            assert await pr.wait_datagrams(1) == [b""]
            # Sending one: 3.13+ sends it, 3.11 and 3.12 drop it silently.
            tr.sendto(b"", peer.getsockname())
            tr.sendto(b"after", peer.getsockname())
            first = (await recv_from(loop, peer))[0]
            assert first == (b"" if PY313 else b"after")
        await close(tr, pr)

    run(loop, main())


def test_send_error_goes_to_error_received(loop: Loop) -> None:
    # Broadcasting without SO_BROADCAST fails at once with EACCES.
    async def main() -> None:
        tr, pr = await endpoint(loop, local_addr=("127.0.0.1", 0))
        tr.sendto(b"x", ("255.255.255.255", 9))
        assert len(pr.errors) == 1
        assert isinstance(pr.errors[0], PermissionError)
        assert pr.events == ["made", "error"]
        assert not tr.is_closing()
        with udp_peer() as peer:
            tr.sendto(b"still usable", peer.getsockname())
            assert (await recv_from(loop, peer))[0] == b"still usable"
        await close(tr, pr)

    run(loop, main())


def test_icmp_refused_reaches_error_received_and_endpoint_survives(loop: Loop) -> None:
    async def main() -> None:
        port = refused_port()
        tr, pr = await endpoint(loop, remote_addr=("127.0.0.1", port))
        tr.sendto(b"nobody home")
        [err] = await pr.wait_errors(1)
        assert isinstance(err, ConnectionRefusedError)
        assert err.errno == errno.ECONNREFUSED
        assert not tr.is_closing()
        # Somebody listens on that port now: the same endpoint reaches it.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
            peer.bind(("127.0.0.1", port))
            peer.setblocking(False)
            tr.sendto(b"hello again")
            assert (await recv_from(loop, peer))[0] == b"hello again"
            peer.sendto(b"answer", tr.get_extra_info("sockname"))
            assert await pr.wait_datagrams(1) == [b"answer"]
        assert pr.events == ["made", "error", "datagram"]
        assert await close(tr, pr) is None

    run(loop, main())


def test_send_to_non_listening_address_does_not_stop_receiving(loop: Loop) -> None:
    # CPython gh-91227: an unconnected endpoint that sent to a dead port still receives.
    async def main() -> None:
        tr, pr = await endpoint(loop, local_addr=("127.0.0.1", 0))
        tr.sendto(b"lost", ("127.0.0.1", refused_port()))
        with udp_peer() as peer:
            for i in range(3):
                peer.sendto(b"%d" % i, tr.get_extra_info("sockname"))
            assert await pr.wait_datagrams(3) == [b"0", b"1", b"2"]
        assert pr.errors == []  # Linux reports no ICMP error on unconnected sockets
        await close(tr, pr)

    run(loop, main())


def test_sendto_after_close_with_peer_is_dropped_then_warns(
    loop: Loop, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        with udp_peer() as peer:
            tr, pr = await endpoint(loop, remote_addr=peer.getsockname())
            tr.close()
            with caplog.at_level(logging.WARNING, "asyncio"):
                for _ in range(6):
                    tr.sendto(b"x")
            logged = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
            assert logged == ["socket.send() raised exception."] * 2
            await pr.lost
            tr.sendto(b"x")  # after connection_lost: still silent
            with pytest.raises(BlockingIOError):
                peer.recv(10)

    run(loop, main())


def test_sendto_while_closing_without_peer_still_sends(loop: Loop) -> None:
    async def main() -> None:
        tr, pr = await endpoint(loop, local_addr=("127.0.0.1", 0))
        with udp_peer() as peer:
            tr.close()
            assert tr.is_closing()
            tr.sendto(b"late", peer.getsockname())
            assert peer.recv(10) == b"late"
            await pr.lost

    run(loop, main())


def test_sendto_after_connection_lost_without_peer(
    loop: Loop, is_tideloop: bool, request: pytest.FixtureRequest
) -> None:
    if not is_tideloop:
        reason = "asyncio raises AttributeError from inside its own error path"
        request.applymarker(pytest.mark.xfail(strict=True, raises=AttributeError, reason=reason))

    async def main() -> None:
        tr, pr = await endpoint(loop, local_addr=("127.0.0.1", 0))
        await close(tr, pr)
        tr.sendto(b"x", ("127.0.0.1", 9))  # dropped, like a connected endpoint's

    run(loop, main())


# -- the write queue and flow control --------------------------------------------------------


def test_refused_sends_are_queued_in_order(loop: Loop) -> None:
    async def main() -> None:
        with udp_peer() as peer:
            sock = GatedSocket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            tr, pr = await endpoint(loop, sock=sock)
            paddr = peer.getsockname()
            sock.fail = BlockingIOError()
            tr.sendto(b"one", paddr)
            tr.sendto(bytearray(b"two"), paddr)
            assert tr.get_write_buffer_size() == 6 + 2 * HEADER
            assert body(repr(tr)).endswith(f"write=<polling, bufsize={6 + 2 * HEADER}>>")
            await spin()  # the writer retries and is refused again
            assert tr.get_write_buffer_size() == 6 + 2 * HEADER
            sock.fail = None
            tr.sendto(b"three", paddr)  # queued behind the others, not sent first
            got = [(await recv_from(loop, peer))[0] for _ in range(3)]
            assert got == [b"one", b"two", b"three"]
            await spin()
            assert body(repr(tr)).startswith(f"fd={sock.fileno()} read=polling write=<idle")
            await close(tr, pr)

    run(loop, main())


def test_write_buffer_size_returns_to_zero(
    loop: Loop, is_tideloop: bool, request: pytest.FixtureRequest
) -> None:
    if _asyncio_forgets_header() and not is_tideloop:
        reason = "asyncio 3.13.0-3.13.5 keeps 8 bytes per drained datagram (gh-135444)"
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))

    async def main() -> None:
        with udp_peer() as peer:
            sock = GatedSocket(socket.AF_INET, socket.SOCK_DGRAM)
            tr, pr = await endpoint(loop, sock=sock)
            sock.fail = BlockingIOError()
            for _ in range(3):
                tr.sendto(b"abc", peer.getsockname())
            sock.fail = None
            for _ in range(3):
                await recv_from(loop, peer)
            await spin()
            size = tr.get_write_buffer_size()
            await close(tr, pr)
            assert size == 0

    run(loop, main())


def test_pause_and_resume_writing_with_real_backpressure(loop: Loop) -> None:
    # An AF_UNIX datagram peer that does not read: the kernel queues a few
    # datagrams for it and then refuses (EAGAIN).
    async def main() -> None:
        tmp = short_tmpdir()
        path = os.path.join(tmp, "slow")
        with unix_dgram(path) as peer:
            tr, pr = await endpoint(loop, family=socket.AF_UNIX, remote_addr=path)
            tr.set_write_buffer_limits(high=400, low=100)
            assert tr.get_write_buffer_limits() == (100, 400)
            chunk = b"d" * 100
            sent = 0
            while "pause" not in pr.events:
                tr.sendto(chunk + b"%05d" % sent)
                sent += 1
                assert sent < 10_000, "never paused"
            queued = tr.get_write_buffer_size()
            assert queued > 400
            assert queued % (105 + HEADER) == 0
            assert pr.events == ["made", "pause"]
            got = [await loop.sock_recv(peer, 65536) for _ in range(sent)]
            assert got == [chunk + b"%05d" % i for i in range(sent)]
            await pr.until(lambda: "resume" in pr.events)
            assert pr.events == ["made", "pause", "resume"]
            await close(tr, pr)
        os.unlink(path)
        os.rmdir(tmp)

    run(loop, main())


def test_set_write_buffer_limits(loop: Loop) -> None:
    async def main() -> None:
        tr, pr = await endpoint(loop, local_addr=("127.0.0.1", 0))
        assert tr.get_write_buffer_limits() == (16384, 65536)
        assert tr.get_write_buffer_size() == 0
        tr.set_write_buffer_limits(low=1000)
        assert tr.get_write_buffer_limits() == (1000, 4000)
        tr.set_write_buffer_limits(high=1000)
        assert tr.get_write_buffer_limits() == (250, 1000)
        with pytest.raises(ValueError) as info:
            tr.set_write_buffer_limits(high=1, low=2)
        assert str(info.value) == "high (1) must be >= low (2) must be >= 0"
        with pytest.raises(ValueError, match=r"high \(0\) must be >= low \(-1\)"):
            tr.set_write_buffer_limits(high=0, low=-1)
        await close(tr, pr)

    run(loop, main())


def test_lowering_limits_pauses_at_once(loop: Loop) -> None:
    async def main() -> None:
        sock = GatedSocket(socket.AF_INET, socket.SOCK_DGRAM)
        tr, pr = await endpoint(loop, sock=sock)
        sock.fail = BlockingIOError()
        tr.sendto(b"x" * 100, ("127.0.0.1", 9))
        assert pr.events == ["made"]
        tr.set_write_buffer_limits(high=50)
        assert pr.events == ["made", "pause"]
        tr.abort()
        await pr.lost

    run(loop, main())


def test_close_waits_for_the_queue(loop: Loop) -> None:
    async def main() -> None:
        with udp_peer() as peer:
            sock = GatedSocket(socket.AF_INET, socket.SOCK_DGRAM)
            tr, pr = await endpoint(loop, sock=sock)
            sock.fail = BlockingIOError()
            tr.sendto(b"queued", peer.getsockname())
            tr.close()
            assert tr.is_closing()
            await spin()
            assert pr.events == ["made"]  # not lost while data waits
            sock.fail = None
            assert (await recv_from(loop, peer))[0] == b"queued"
            assert await pr.lost is None
            assert pr.events == ["made", "lost"]

    run(loop, main())


def test_abort_drops_the_queue(loop: Loop) -> None:
    async def main() -> None:
        with udp_peer() as peer:
            sock = GatedSocket(socket.AF_INET, socket.SOCK_DGRAM)
            tr, pr = await endpoint(loop, sock=sock)
            tr.sendto(b"sent", peer.getsockname())
            sock.fail = BlockingIOError()
            tr.sendto(b"dropped", peer.getsockname())
            tr.abort()
            assert tr.is_closing()
            # asyncio leaves the dropped datagrams counted.
            assert tr.get_write_buffer_size() == len(b"dropped") + HEADER
            sock.fail = None
            assert await pr.lost is None
            assert peer.recv(100) == b"sent"
            with pytest.raises(BlockingIOError):
                peer.recv(100)

    run(loop, main())


def test_error_while_draining_drops_one_datagram(loop: Loop) -> None:
    async def main() -> None:
        with udp_peer() as peer:
            sock = GatedSocket(socket.AF_INET, socket.SOCK_DGRAM)
            tr, pr = await endpoint(loop, sock=sock)
            sock.fail = BlockingIOError()
            for name in (b"a", b"b", b"c"):
                tr.sendto(name, peer.getsockname())
            sock.fail = OSError(errno.ENOBUFS, "No buffer space available")
            await pr.wait_errors(1)
            assert pr.errors[0].errno == errno.ENOBUFS
            sock.fail = None
            got = [(await recv_from(loop, peer))[0] for _ in range(2)]
            assert got == [b"b", b"c"]
            assert not tr.is_closing()
            await close(tr, pr)

    run(loop, main())


def test_fatal_write_error(loop: Loop, errors: ErrorLog) -> None:
    async def main() -> None:
        sock = GatedSocket(socket.AF_INET, socket.SOCK_DGRAM)
        tr, pr = await endpoint(loop, sock=sock)
        boom = RuntimeError("boom")
        sock.fail = boom
        tr.sendto(b"x", ("127.0.0.1", 9))
        assert await pr.lost is boom
        [ctx] = errors.take()
        assert ctx["message"] == "Fatal write error on datagram transport"
        assert ctx["exception"] is boom
        assert ctx["transport"] is tr
        assert ctx["protocol"] is pr

    run(loop, main())


def test_fatal_write_error_while_draining(
    loop: Loop, errors: ErrorLog, is_tideloop: bool, request: pytest.FixtureRequest
) -> None:
    if not is_tideloop:
        # asyncio leaves the writer registered when the failing datagram was
        # the last one; its next call fails on the dead transport.
        reason = "asyncio: writer left registered after a fatal drain error"
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))

    async def main() -> None:
        sock = GatedSocket(socket.AF_INET, socket.SOCK_DGRAM)
        tr, pr = await endpoint(loop, sock=sock)
        sock.fail = BlockingIOError()
        tr.sendto(b"x", ("127.0.0.1", 9))
        boom = RuntimeError("boom")
        sock.fail = boom
        assert await pr.lost is boom
        await spin()
        ctx, *more = errors.take()
        assert ctx["message"] == "Fatal write error on datagram transport"
        assert ctx["exception"] is boom
        assert more == []

    run(loop, main())


def test_pause_writing_error_goes_to_handler(loop: Loop, errors: ErrorLog) -> None:
    class Bad(Recorder):
        def pause_writing(self) -> None:
            raise ZeroDivisionError

    async def main() -> None:
        sock = GatedSocket(socket.AF_INET, socket.SOCK_DGRAM)
        tr, pr = await loop.create_datagram_endpoint(lambda: Bad(loop), sock=sock)
        tr.set_write_buffer_limits(high=0)
        sock.fail = BlockingIOError()
        tr.sendto(b"x", ("127.0.0.1", 9))
        [ctx] = errors.take()
        assert ctx["message"] == "protocol.pause_writing() failed"
        assert isinstance(ctx["exception"], ZeroDivisionError)
        assert ctx["transport"] is tr and ctx["protocol"] is pr
        tr.abort()
        await pr.lost

    run(loop, main())


# -- reading ------------------------------------------------------------------------------------


def test_pause_and_resume_reading(loop: Loop) -> None:
    async def main() -> None:
        tr, pr = await endpoint(loop, local_addr=("127.0.0.1", 0))
        assert tr.is_reading()
        tr.pause_reading()
        tr.pause_reading()  # idempotent
        assert not tr.is_reading()
        assert body(repr(tr)).startswith(f"fd={tr.get_extra_info('socket').fileno()} read=idle")
        with udp_peer() as peer:
            peer.sendto(b"held", tr.get_extra_info("sockname"))
            await spin()
            assert pr.datagrams == []
            tr.resume_reading()
            tr.resume_reading()
            assert tr.is_reading()
            assert await pr.wait_datagrams(1) == [b"held"]
        await close(tr, pr)
        assert not tr.is_reading()
        tr.resume_reading()  # no effect once closing
        assert not tr.is_reading()

    run(loop, main())


def test_pause_reading_in_connection_made(loop: Loop) -> None:
    class Pausing(Recorder):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            transport.pause_reading()

    async def main() -> None:
        tr, pr = await loop.create_datagram_endpoint(
            lambda: Pausing(loop), local_addr=("127.0.0.1", 0)
        )
        with udp_peer() as peer:
            peer.sendto(b"x", tr.get_extra_info("sockname"))
            await spin()
            assert pr.datagrams == []
            tr.resume_reading()
            assert await pr.wait_datagrams(1) == [b"x"]
        await close(tr, pr)

    run(loop, main())


def test_datagram_received_error_goes_to_handler_and_reading_goes_on(
    loop: Loop, errors: ErrorLog
) -> None:
    class Flaky(Recorder):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            super().datagram_received(data, addr)
            if data == b"bad":
                raise ZeroDivisionError("protocol bug")

    async def main() -> None:
        tr, pr = await loop.create_datagram_endpoint(
            lambda: Flaky(loop), local_addr=("127.0.0.1", 0)
        )
        with udp_peer() as peer:
            peer.sendto(b"bad", tr.get_extra_info("sockname"))
            await pr.wait_datagrams(1)
            peer.sendto(b"good", tr.get_extra_info("sockname"))
            assert await pr.wait_datagrams(2) == [b"bad", b"good"]
        [ctx] = errors.take()
        assert ctx["message"].startswith("Exception in callback ")
        assert isinstance(ctx["exception"], ZeroDivisionError)
        assert not tr.is_closing()
        await close(tr, pr)

    run(loop, main())


def test_large_datagram(loop: Loop) -> None:
    async def main() -> None:
        tr, pr = await endpoint(loop, local_addr=("127.0.0.1", 0))
        big = os.urandom(65507)  # the largest UDP/IPv4 payload
        with udp_peer() as peer:
            peer.setblocking(True)
            peer.sendto(big, tr.get_extra_info("sockname"))
            peer.sendto(b"small", tr.get_extra_info("sockname"))
            assert await pr.wait_datagrams(2) == [big, b"small"]
        await close(tr, pr)

    run(loop, main())


# -- closing --------------------------------------------------------------------------------------


def test_close_is_idempotent_and_abort_after_close(loop: Loop) -> None:
    async def main() -> None:
        tr, pr = await endpoint(loop, local_addr=("127.0.0.1", 0))
        tr.close()
        tr.close()
        tr.abort()
        assert await pr.lost is None
        await spin()
        assert pr.events == ["made", "lost"]

    run(loop, main())


def test_close_in_connection_made(loop: Loop) -> None:
    class Closer(Recorder):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            transport.close()

    async def main() -> None:
        tr, pr = await loop.create_datagram_endpoint(
            lambda: Closer(loop), local_addr=("127.0.0.1", 0)
        )
        assert tr.is_closing()
        assert await pr.lost is None
        assert pr.events == ["made", "lost"]

    run(loop, main())


def test_repr_states(loop: Loop) -> None:
    async def main() -> None:
        tr, pr = await endpoint(loop, local_addr=("127.0.0.1", 0))
        fd = tr.get_extra_info("socket").fileno()
        assert body(repr(tr)) == f"fd={fd} read=polling write=<idle, bufsize=0>>"
        tr.close()
        assert body(repr(tr)) == f"closing fd={fd} read=idle write=<idle, bufsize=0>>"
        await pr.lost
        assert body(repr(tr)) == f"closed fd={fd}>"

    run(loop, main())


def test_debug_logs_creation(loop: Loop, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        loop.set_debug(True)
        with caplog.at_level(logging.DEBUG, "asyncio"):
            tr, pr = await endpoint(loop, local_addr=("127.0.0.1", 0))
            tr2, pr2 = await endpoint(loop, family=socket.AF_INET)
        loop.set_debug(False)
        msgs = [
            (r.levelname, r.getMessage().split(" created:")[0])
            for r in caplog.records
            if "Datagram endpoint" in r.getMessage()
        ]
        assert msgs == [
            ("INFO", "Datagram endpoint local_addr=('127.0.0.1', 0) remote_addr=None"),
            ("DEBUG", "Datagram endpoint remote_addr=None"),
        ]
        await close(tr, pr)
        await close(tr2, pr2)

    run(loop, main())


def test_unclosed_transport_warns(loop: Loop) -> None:
    async def main() -> tuple[Any, int]:
        tr, _ = await endpoint(loop, local_addr=("127.0.0.1", 0))
        return tr, tr.get_extra_info("socket").fileno()

    tr, fd = run(loop, main())
    loop.close()
    tr.get_protocol().transport = None
    with pytest.warns(ResourceWarning, match="unclosed transport <"):
        del tr
        gc.collect()
    with pytest.raises(OSError):
        os.fstat(fd)  # the socket was closed


def test_queued_datagrams_interleave_with_scheduled_callbacks(loop: Loop) -> None:
    """Datagrams already queued in the socket are delivered one per
    iteration relative to the callbacks datagram_received() schedules:
    d1, cb1, d2, cb2, ... (tideloop reads several per wake-up only while
    nothing else became ready)."""
    order: list[str] = []

    class Proto(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            order.append("d" + data.decode())
            loop.call_soon(order.append, "cb" + data.decode())

    async def main() -> None:
        tr, _ = await loop.create_datagram_endpoint(Proto, local_addr=("127.0.0.1", 0))
        addr = tr.get_extra_info("sockname")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(4):
                s.sendto(str(i).encode(), addr)
            while len(order) < 8:
                await asyncio.sleep(0)
        tr.close()
        await spin()

    run(loop, main())
    assert order == ["d0", "cb0", "d1", "cb1", "d2", "cb2", "d3", "cb3"]


def test_queued_datagrams_all_delivered_in_order(loop: Loop) -> None:
    got: list[bytes] = []
    done = loop.create_future()

    class Proto(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            got.append(data)
            if len(got) == 100 and not done.done():
                done.set_result(None)

    async def main() -> None:
        tr, _ = await loop.create_datagram_endpoint(Proto, local_addr=("127.0.0.1", 0))
        addr = tr.get_extra_info("sockname")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(100):
                s.sendto(b"%03d" % i, addr)
            await asyncio.wait_for(done, 10)
        tr.close()
        await spin()

    run(loop, main())
    assert got == [b"%03d" % i for i in range(100)]
