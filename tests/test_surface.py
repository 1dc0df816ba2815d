"""The surface programs can see besides behaviour: the public methods and
attributes of each transport kind, the private attributes asyncio's loop
code reads from transports (``_sendfile_compatible``,
``_start_tls_compatible``), the loop's public names; and ``loop.sendfile()``
on transports the loop did not make (wrappers), which follows the
transport's ``_sendfile_compatible`` as asyncio does.

The surface tests compare the loop under test with a stock asyncio loop of
the running Python (on the asyncio parameter they compare asyncio with
itself); tideloop's additions are listed explicitly.
"""

from __future__ import annotations

import asyncio
import asyncio.transports
import inspect
import os
import socket
import sys
import tempfile
from asyncio.constants import _SendfileMode
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from .support import certs
from .support.streams import Loop, read_exactly, run, short_tmpdir

pytestmark = pytest.mark.timeout(30)

KINDS = ["tcp", "unix", "udp", "read_pipe", "write_pipe", "subprocess", "tls"]

# Public names tideloop adds, per kind ("loop" for the loop itself).
TIDELOOP_ADDITIONS: dict[str, set[str]] = {"loop": {"stats", "metrics"}}

ABCS = (
    asyncio.BaseTransport,
    asyncio.ReadTransport,
    asyncio.WriteTransport,
    asyncio.Transport,
    asyncio.DatagramTransport,
    asyncio.SubprocessTransport,
)
# asyncio 3.11's datagram transport is not a DatagramTransport; tideloop's
# is on every version (docs/differences.md, "What tideloop adds").
DATAGRAM_ABC_ADDED = sys.version_info < (3, 12)

MISSING = object()


def public_names(obj: Any) -> set[str]:
    return {name for name in dir(obj) if not name.startswith("_")}


class ServerSide(asyncio.Protocol):
    """The server's end: closes on EOF and says when it is gone."""

    instances: list[ServerSide] = []
    made: asyncio.Future[None]

    def __init__(self) -> None:
        self.lost = asyncio.get_running_loop().create_future()
        ServerSide.instances.append(self)

    def connection_made(self, transport: Any) -> None:
        ServerSide.made.set_result(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.set_result(None)


async def make_transport(loop: Loop, kind: str, stack: list[Any]) -> Any:
    """A transport of ``kind`` made the usual way; what needs closing goes on ``stack``."""
    if kind in ("tcp", "tls"):
        kw: dict[str, Any] = {}
        ckw: dict[str, Any] = {}
        if kind == "tls":
            kw["ssl"] = certs.server_context()
            ckw = {"ssl": certs.client_context(), "server_hostname": certs.HOSTNAME}
        server = await loop.create_server(ServerSide, "127.0.0.1", 0, **kw)
        stack.append(server)
        tr, _ = await loop.create_connection(
            asyncio.Protocol, *server.sockets[0].getsockname(), **ckw
        )
        await ServerSide.made
    elif kind == "unix":
        path = os.path.join(short_tmpdir(), "s")
        server = await loop.create_unix_server(ServerSide, path)
        stack.append(server)
        tr, _ = await loop.create_unix_connection(asyncio.Protocol, path)
        await ServerSide.made
    elif kind == "udp":
        tr, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
        )
    elif kind in ("read_pipe", "write_pipe"):
        r, w = os.pipe()
        rf, wf = os.fdopen(r, "rb"), os.fdopen(w, "wb")
        if kind == "read_pipe":
            stack.append(wf)
            tr, _ = await loop.connect_read_pipe(asyncio.Protocol, rf)
        else:
            stack.append(rf)
            tr, _ = await loop.connect_write_pipe(asyncio.Protocol, wf)
    else:
        tr, _ = await loop.subprocess_exec(asyncio.SubprocessProtocol, sys.executable, "-c", "pass")
    return tr


async def transport_surface(loop: Loop, kind: str) -> dict[str, Any]:
    stack: list[Any] = []
    ServerSide.instances.clear()
    ServerSide.made = loop.create_future()
    tr = await make_transport(loop, kind, stack)
    try:
        stubs = {}
        for name in sorted(public_names(tr)):
            method = getattr(type(tr), name, None)
            if callable(method) and not _required_params(method):
                stubs[name] = _raises_not_implemented(getattr(tr, name))
        return {
            "names": public_names(tr),
            "abcs": {abc.__name__ for abc in ABCS if isinstance(tr, abc)},
            "private": {
                name: getattr(tr, name, MISSING)
                for name in ("_sendfile_compatible", "_start_tls_compatible")
            },
            "callable": {n for n in public_names(tr) if callable(getattr(tr, n))},
            "not_implemented": {n for n, raised in stubs.items() if raised},
        }
    finally:
        tr.close()
        if kind == "subprocess":
            await tr._wait() if hasattr(tr, "_wait") else None
        for item in stack:
            item.close()
            if isinstance(item, asyncio.AbstractServer):
                await item.wait_closed()
        for side in ServerSide.instances:
            await side.lost
        for _ in range(5):
            await asyncio.sleep(0)


def _required_params(method: Any) -> list[str]:
    try:
        sig = inspect.signature(method)
    except (TypeError, ValueError):
        return ["?"]
    return [
        p.name
        for p in list(sig.parameters.values())[1:]
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]


# Methods that end or half-close the transport: not probed.
_NOT_PROBED = {"close", "abort", "write_eof", "kill", "terminate"}


def _raises_not_implemented(method: Any) -> bool:
    """Whether calling the method (no arguments) raises NotImplementedError,
    as asyncio's abstract stubs do. A pause_reading that works is undone."""
    if method.__name__ in _NOT_PROBED:
        return False
    try:
        method()
    except NotImplementedError:
        return True
    except Exception:
        return False
    if method.__name__ == "pause_reading":
        method.__self__.resume_reading()
    return False


_ASYNCIO_SURFACE: dict[str, dict[str, Any]] = {}


def asyncio_surface(kind: str) -> dict[str, Any]:
    if kind not in _ASYNCIO_SURFACE:
        lp = asyncio.new_event_loop()
        try:
            _ASYNCIO_SURFACE[kind] = lp.run_until_complete(transport_surface(lp, kind))
        finally:
            lp.close()
    return _ASYNCIO_SURFACE[kind]


@pytest.mark.parametrize("kind", KINDS)
def test_transport_surface_matches_asyncio(loop: Loop, kind: str) -> None:
    mine = run(loop, transport_surface(loop, kind))
    theirs = asyncio_surface(kind)
    added = TIDELOOP_ADDITIONS.get(kind, set())
    assert mine["names"] - added == theirs["names"]
    assert mine["callable"] - added == theirs["callable"]
    assert mine["private"] == theirs["private"]
    assert mine["not_implemented"] == theirs["not_implemented"]
    abcs = set(theirs["abcs"])
    if kind == "udp" and DATAGRAM_ABC_ADDED and type(loop).__module__.startswith("tideloop"):
        abcs.add("DatagramTransport")
    assert mine["abcs"] == abcs


def test_loop_surface_matches_asyncio(loop: Loop) -> None:
    reference = asyncio.new_event_loop()
    try:
        theirs = public_names(reference)
    finally:
        reference.close()
    mine = public_names(loop)
    added = TIDELOOP_ADDITIONS["loop"] if type(loop).__module__.startswith("tideloop") else set()
    assert mine - added == theirs
    assert added <= mine


# -- loop.sendfile() on a transport the loop did not make -----------------------------------


class Wrapper(asyncio.Transport):
    """Wraps a transport; public methods only (no _sendfile_compatible)."""

    def __init__(self, inner: Any) -> None:
        super().__init__()
        self.inner = inner
        self.writes = 0

    def __repr__(self) -> str:
        return "<Wrapper>"

    def is_closing(self) -> bool:
        return bool(self.inner.is_closing())

    def close(self) -> None:
        self.inner.close()

    def write(self, data: Any) -> None:
        self.writes += 1
        self.inner.write(data)

    def get_protocol(self) -> Any:
        return self.inner.get_protocol()

    def set_protocol(self, protocol: Any) -> None:
        self.inner.set_protocol(protocol)

    def is_reading(self) -> bool:
        return bool(self.inner.is_reading())

    def pause_reading(self) -> None:
        self.inner.pause_reading()

    def resume_reading(self) -> None:
        self.inner.resume_reading()


class UnsupportedWrapper(Wrapper):
    _sendfile_compatible = _SendfileMode.UNSUPPORTED


class FallbackWrapperWithoutFlowControl(Wrapper):
    _sendfile_compatible = _SendfileMode.FALLBACK


class FallbackWrapper(Wrapper, asyncio.transports._FlowControlMixin):
    """asyncio's fallback needs a _FlowControlMixin (it reads _protocol_paused)."""

    _sendfile_compatible = _SendfileMode.FALLBACK

    def __init__(self, inner: Any) -> None:
        asyncio.transports._FlowControlMixin.__init__(self, None, inner._loop)
        self.inner = inner
        self.writes = 0

    def get_write_buffer_size(self) -> int:
        return int(self.inner.get_write_buffer_size())


class NativeWrapper(Wrapper):
    """Claims TRY_NATIVE and hands the loop the inner transport's internals
    that native sendfile uses (as a wrapper subclassing a loop's transport
    would have)."""

    _sendfile_compatible = _SendfileMode.TRY_NATIVE

    def __getattr__(self, name: str) -> Any:
        if name in ("_sock", "_sock_fd", "_make_empty_waiter", "_reset_empty_waiter"):
            return getattr(self.inner, name)
        raise AttributeError(name)


CONTENT = bytes(range(256)) * 400  # 100 KiB


async def _with_wrapper(
    loop: Loop, wrapper_cls: type, body: Callable[[Any, Any, socket.socket], Awaitable[None]]
) -> None:
    with socket.socket() as lsn:
        lsn.bind(("127.0.0.1", 0))
        lsn.listen(1)
        lsn.setblocking(False)
        tr, _ = await loop.create_connection(asyncio.Protocol, *lsn.getsockname())
        peer, _ = await loop.sock_accept(lsn)
    peer.setblocking(False)
    wrapper = wrapper_cls(tr)
    try:
        with tempfile.TemporaryFile() as f:
            f.write(CONTENT)
            f.seek(0)
            await body(wrapper, f, peer)
    finally:
        tr.close()
        peer.close()
        for _ in range(5):
            await asyncio.sleep(0)


@pytest.mark.parametrize("wrapper_cls", [Wrapper, UnsupportedWrapper])
@pytest.mark.parametrize("fallback", [True, False])
def test_sendfile_unsupported_transport(loop: Loop, wrapper_cls: type, fallback: bool) -> None:
    async def body(wrapper: Any, f: Any, peer: socket.socket) -> None:
        with pytest.raises(RuntimeError) as info:
            await loop.sendfile(wrapper, f, fallback=fallback)
        assert str(info.value) == "sendfile is not supported for transport <Wrapper>"
        assert wrapper.writes == 0

    run(loop, _with_wrapper(loop, wrapper_cls, body))


def test_sendfile_fallback_transport(loop: Loop) -> None:
    async def body(wrapper: Any, f: Any, peer: socket.socket) -> None:
        assert await loop.sendfile(wrapper, f) == len(CONTENT)
        assert await read_exactly(loop, peer, len(CONTENT)) == CONTENT
        assert wrapper.writes > 0  # through the wrapper's write()
        assert f.tell() == len(CONTENT)

    run(loop, _with_wrapper(loop, FallbackWrapper, body))


def test_sendfile_fallback_disabled_for_fallback_transport(loop: Loop) -> None:
    async def body(wrapper: Any, f: Any, peer: socket.socket) -> None:
        with pytest.raises(RuntimeError) as info:
            await loop.sendfile(wrapper, f, fallback=False)
        assert str(info.value) == (
            "fallback is disabled and native sendfile is not supported for transport <Wrapper>"
        )
        assert wrapper.writes == 0

    run(loop, _with_wrapper(loop, FallbackWrapper, body))


def test_sendfile_fallback_needs_flow_control(loop: Loop) -> None:
    async def body(wrapper: Any, f: Any, peer: socket.socket) -> None:
        with pytest.raises(TypeError) as info:
            await loop.sendfile(wrapper, f)
        assert str(info.value) == "transport should be _FlowControlMixin instance"

    run(loop, _with_wrapper(loop, FallbackWrapperWithoutFlowControl, body))


@pytest.mark.parametrize("fallback", [True, False])
def test_sendfile_native_transport(loop: Loop, fallback: bool) -> None:
    async def body(wrapper: Any, f: Any, peer: socket.socket) -> None:
        assert await loop.sendfile(wrapper, f, fallback=fallback) == len(CONTENT)
        assert await read_exactly(loop, peer, len(CONTENT)) == CONTENT
        assert wrapper.writes == 0  # os.sendfile, not write()
        # The transport works as before.
        wrapper.write(b"after")
        assert await read_exactly(loop, peer, 5) == b"after"

    run(loop, _with_wrapper(loop, NativeWrapper, body))
