"""Server: listening sockets, the accept loop, and asyncio's Server API.

Accepting: each readiness event accepts up to ``backlog`` connections in a
batch, and each accepted socket gets its transport at once (asyncio spawns a
task per connection for this).

Running out of descriptors (EMFILE/ENFILE, or ENOBUFS/ENOMEM): stock asyncio
reports every failed accept and schedules a retry timer each time, and libuv
loops accept and drop connections to make room. tideloop stops watching the
listening socket, reports once per episode to the exception handler, and
starts again when this loop releases a descriptor (any transport closing) or,
as a fallback for descriptors freed elsewhere, after ``ACCEPT_RETRY_DELAY_S``.
Connections queued in the kernel's backlog meanwhile are served, not dropped.

``wait_closed`` follows the running Python's semantics (3.12.1 fixed it to
wait for both the close and the last connection; 3.11 returns at once after
close). Must not import the loop module.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import sys
import weakref
from asyncio.trsock import TransportSocket
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

from ._transports._stream import StreamTransport

if TYPE_CHECKING:
    from ._loop import EventLoop

logger = logging.getLogger("asyncio")

ACCEPT_RETRY_DELAY_S: Final = 1.0
_RESOURCE_ERRNOS: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_WAIT_CLOSED_311: Final = sys.version_info < (3, 12)


class Server(asyncio.AbstractServer):
    def __init__(
        self,
        loop: EventLoop,
        sockets: list[socket.socket],
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        ssl_context: Any,
        backlog: int,
        ssl_handshake_timeout: float | None,
        ssl_shutdown_timeout: float | None = None,
    ) -> None:
        self._loop = loop
        self._sockets: list[socket.socket] | None = sockets
        self._clients: weakref.WeakSet[Any] = weakref.WeakSet()
        self._waiters: list[asyncio.Future[None]] | None = []
        self._protocol_factory = protocol_factory
        self._backlog = backlog
        self._ssl_context = ssl_context
        self._ssl_handshake_timeout = ssl_handshake_timeout
        self._ssl_shutdown_timeout = ssl_shutdown_timeout
        self._serving = False
        self._serving_forever_fut: asyncio.Future[None] | None = None
        self._uncounted_clients = 0
        self._accept_paused = False
        self._retry_timer: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} sockets={self.sockets!r}>"

    # -- connections ------------------------------------------------------------

    # Python 3.12 calls these without a transport (it only counted them);
    # 3.13 passes the transport. Both forms work here.
    def _attach(self, transport: Any = None) -> None:
        assert self._sockets is not None
        if transport is None:
            self._uncounted_clients += 1
        else:
            self._clients.add(transport)

    def _detach(self, transport: Any = None) -> None:
        if transport is None:
            self._uncounted_clients -= 1
        else:
            self._clients.discard(transport)
        if self._no_clients() and self._sockets is None:
            self._wakeup()

    def _no_clients(self) -> bool:
        return len(self._clients) == 0 and self._uncounted_clients == 0

    def _wakeup(self) -> None:
        waiters = self._waiters
        self._waiters = None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    # -- accepting ------------------------------------------------------------------

    def _start_serving(self) -> None:
        if self._serving:
            return
        self._serving = True
        for sock in self._sockets:  # type: ignore[union-attr]  # TypeError once closed, as asyncio
            sock.listen(self._backlog)
            self._watch(sock)

    def _watch(self, sock: socket.socket) -> None:
        self._loop._add_reader(sock.fileno(), self._on_acceptable, sock)

    def _on_acceptable(self, sock: socket.socket) -> None:
        loop = self._loop
        factory = self._protocol_factory
        # socket.accept() without its per-call family/type enum conversions
        # (~1.8 us per connection): the listening socket's ints, once.
        raw: Any = super(socket.socket, sock)
        family, type_, proto = raw.family, raw.type, sock.proto
        for _ in range(self._backlog):
            try:
                fd, addr = sock._accept()  # type: ignore[attr-defined]
                conn = socket.socket(family, type_, proto, fileno=fd)
                if loop._debug:
                    logger.debug("%r got a new connection from %r: %r", self, addr, conn)
                conn.setblocking(False)
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno not in _RESOURCE_ERRNOS:
                    raise  # the loop reports it and carries on
                self._pause_accepting(sock, exc)
                return
            self._on_connection(conn, {"peername": addr}, factory)

    def _on_connection(
        self,
        conn: socket.socket,
        extra: dict[str, Any],
        factory: Callable[[], asyncio.BaseProtocol],
    ) -> None:
        loop = self._loop
        protocol = None
        try:
            protocol = factory()
            if self._ssl_context:
                loop._make_ssl_transport(  # type: ignore[attr-defined]
                    conn,
                    protocol,
                    self._ssl_context,
                    server_side=True,
                    extra=extra,
                    server=self,
                    ssl_handshake_timeout=self._ssl_handshake_timeout,
                    ssl_shutdown_timeout=self._ssl_shutdown_timeout,
                )
            else:
                StreamTransport(loop, conn, protocol, None, extra, self)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            conn.close()
            if loop._debug:
                context: dict[str, Any] = {
                    "message": "Error on transport creation for incoming connection",
                    "exception": exc,
                }
                if protocol is not None:
                    context["protocol"] = protocol
                loop.call_exception_handler(context)

    def _pause_accepting(self, sock: socket.socket, exc: OSError) -> None:
        loop = self._loop
        for s in self._sockets or ():
            loop._remove_reader(s.fileno())
        if self._accept_paused:
            return
        self._accept_paused = True
        loop.call_exception_handler(
            {
                "message": "socket.accept() out of system resource",
                "exception": exc,
                "socket": TransportSocket(sock),
            }
        )
        loop._paused_servers.add(self)
        self._retry_timer = loop.call_later(ACCEPT_RETRY_DELAY_S, self._resume_accepting)

    def _resume_accepting(self) -> None:
        """A descriptor was freed (or the retry delay passed): accept again.

        The episode stays open until an accept succeeds or the backlog is
        empty, so a still-exhausted process does not report again.
        """
        if self._retry_timer is not None:
            self._retry_timer.cancel()
            self._retry_timer = None
        self._loop._paused_servers.discard(self)
        if not self._serving or self._sockets is None:
            return
        paused = self._accept_paused
        for sock in self._sockets:
            self._watch(sock)
        if paused:
            # Accept now; if that fails again we stay in the same episode.
            self._accept_paused = False
            for sock in self._sockets:
                try:
                    self._on_acceptable_quiet(sock)
                except OSError:
                    pass

    def _on_acceptable_quiet(self, sock: socket.socket) -> None:
        loop = self._loop
        factory = self._protocol_factory
        for _ in range(self._backlog):
            try:
                conn, addr = sock.accept()
                conn.setblocking(False)
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno not in _RESOURCE_ERRNOS:
                    raise
                for s in self._sockets or ():
                    loop._remove_reader(s.fileno())
                self._accept_paused = True
                loop._paused_servers.add(self)
                self._retry_timer = loop.call_later(ACCEPT_RETRY_DELAY_S, self._resume_accepting)
                return
            self._on_connection(conn, {"peername": addr}, factory)

    # -- asyncio.AbstractServer ------------------------------------------------------

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._serving

    @property
    def sockets(self) -> tuple[Any, ...]:
        if self._sockets is None:
            return ()
        return tuple(TransportSocket(s) for s in self._sockets)

    def close(self) -> None:
        sockets = self._sockets
        if sockets is None:
            return
        self._sockets = None
        for sock in sockets:
            self._loop._stop_serving(sock)
        self._serving = False
        if self._retry_timer is not None:
            self._retry_timer.cancel()
            self._retry_timer = None
        self._loop._paused_servers.discard(self)
        if self._serving_forever_fut is not None and not self._serving_forever_fut.done():
            self._serving_forever_fut.cancel()
            self._serving_forever_fut = None
        if self._no_clients():
            self._wakeup()

    def close_clients(self) -> None:
        for transport in self._clients.copy():
            transport.close()

    def abort_clients(self) -> None:
        for transport in self._clients.copy():
            transport.abort()

    async def start_serving(self) -> None:
        self._start_serving()
        # One iteration, so the reader registrations are in place.
        await asyncio.sleep(0)

    async def serve_forever(self) -> None:
        if self._serving_forever_fut is not None:
            raise RuntimeError(f"server {self!r} is already being awaited on serve_forever()")
        if self._sockets is None:
            raise RuntimeError(f"server {self!r} is closed")
        self._start_serving()
        self._serving_forever_fut = self._loop.create_future()
        try:
            await self._serving_forever_fut
        except asyncio.CancelledError:
            try:
                self.close()
                await self.wait_closed()
            finally:
                raise
        finally:
            self._serving_forever_fut = None

    async def wait_closed(self) -> None:
        if _WAIT_CLOSED_311 and self._sockets is None:
            return  # Python 3.11's behaviour
        if self._waiters is None:
            return
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        await waiter


def unique_infos(infos: Iterable[Any]) -> list[Any]:
    """Deduplicate getaddrinfo results, keeping their first-seen order."""
    return list(dict.fromkeys(infos))
