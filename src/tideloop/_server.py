"""Server: listening sockets, the accept loop, and asyncio's Server API.

Accepting: each readiness event accepts up to ``backlog`` connections in a
batch, and each accepted socket gets its transport at once (asyncio spawns a
task per connection for this).

Running out of descriptors (EMFILE/ENFILE, or ENOBUFS/ENOMEM): stock asyncio
reports every failed accept and schedules a retry timer each time, and libuv
loops accept and drop connections to make room. tideloop stops watching the
listening socket, reports once per episode to the exception handler, and
starts again when this loop releases a descriptor (any transport closing:
``LoopIO.on_fd_released``) or, as a fallback for descriptors freed
elsewhere, after ``ACCEPT_RETRY_DELAY_S``. The episode lasts until an accept
succeeds or finds the backlog empty. Connections queued in the kernel's
backlog meanwhile are served, not dropped.

The server talks to the loop through ``LoopIO`` and the loop's public API;
the loop hands it ``make_transport(conn, protocol, extra, server)``, which
builds a plain or TLS transport for an accepted socket.

``wait_closed`` follows the running Python's semantics (3.12.1 fixed it to
wait for both the close and the last connection; 3.11 returns at once after
close). Must not import the loop module.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import sys
import weakref
from asyncio.trsock import TransportSocket
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from ._io import LoopIO

    MakeTransport = Callable[
        [socket.socket, asyncio.BaseProtocol, dict[str, Any], "Server"], object
    ]

logger = logging.getLogger("asyncio")

ACCEPT_RETRY_DELAY_S: Final = 1.0
_RESOURCE_ERRNOS: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_WAIT_CLOSED_311: Final = sys.version_info < (3, 12)


class Server(asyncio.AbstractServer):
    def __init__(
        self,
        io: LoopIO,
        sockets: list[socket.socket],
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        make_transport: MakeTransport,
        ssl_context: Any,
        backlog: int,
        ssl_handshake_timeout: float | None,
        ssl_shutdown_timeout: float | None = None,
        unix_inodes: dict[socket.socket, int] | None = None,
    ) -> None:
        self._loop: asyncio.AbstractEventLoop = io.loop
        self._io = io
        self._make_transport = make_transport
        # Unix sockets whose path to remove on close, with the inode bound.
        self._unix_inodes = unix_inodes or {}
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
        self._io.start_reading(sock.fileno(), self._on_acceptable, sock)

    def _on_acceptable(self, sock: socket.socket) -> None:
        """Accept up to ``backlog`` connections and give each its transport."""
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
                if loop.get_debug():
                    logger.debug("%r got a new connection from %r: %r", self, addr, conn)
                conn.setblocking(False)
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                self._accept_paused = False  # the backlog is empty: episode over
                return
            except OSError as exc:
                if exc.errno not in _RESOURCE_ERRNOS:
                    raise  # the loop reports it and carries on
                self._pause_accepting(sock, exc)
                return
            self._accept_paused = False
            self._on_connection(conn, {"peername": addr}, factory)

    def _on_connection(
        self,
        conn: socket.socket,
        extra: dict[str, Any],
        factory: Callable[[], asyncio.BaseProtocol],
    ) -> None:
        protocol = None
        try:
            protocol = factory()
            self._make_transport(conn, protocol, extra, self)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            conn.close()
            loop = self._loop
            if loop.get_debug():
                context: dict[str, Any] = {
                    "message": "Error on transport creation for incoming connection",
                    "exception": exc,
                }
                if protocol is not None:
                    context["protocol"] = protocol
                loop.call_exception_handler(context)

    def _pause_accepting(self, sock: socket.socket, exc: OSError) -> None:
        """Out of descriptors: stop watching, report once per episode, and
        wait for a released descriptor or the retry delay."""
        for s in self._sockets or ():
            self._io.stop_reading(s.fileno())
        if self._retry_timer is not None:
            return  # already waiting (another listening socket of ours)
        if not self._accept_paused:
            self._accept_paused = True
            self._loop.call_exception_handler(
                {
                    "message": "socket.accept() out of system resource",
                    "exception": exc,
                    "socket": TransportSocket(sock),
                }
            )
        self._io.on_fd_released(self._resume_accepting)
        self._retry_timer = self._loop.call_later(ACCEPT_RETRY_DELAY_S, self._resume_accepting)

    def _stop_waiting_for_fd(self) -> None:
        if self._retry_timer is not None:
            self._retry_timer.cancel()
            self._retry_timer = None
        self._io.cancel_on_fd_released(self._resume_accepting)

    def _resume_accepting(self) -> None:
        """A descriptor was freed (or the retry delay passed): accept again,
        at once, from every listening socket; a still-exhausted process stays
        in the same episode and does not report again."""
        self._stop_waiting_for_fd()
        if not self._serving or self._sockets is None:
            return
        for sock in self._sockets:
            self._watch(sock)
        for sock in self._sockets:
            if self._retry_timer is not None:
                break  # paused again
            try:
                self._on_acceptable(sock)
            except OSError:
                pass

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
            self._stop_serving(sock)
        self._serving = False
        self._stop_waiting_for_fd()
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

    def _stop_serving(self, sock: socket.socket) -> None:
        """Close a listening socket; remove its Unix path if it is still ours
        (the same inode: another process may have bound the path since)."""
        path = sock.getsockname() if sock in self._unix_inodes else None
        self._io.stop_reading(sock.fileno())
        sock.close()
        if path is not None:
            prev_ino = self._unix_inodes.pop(sock)
            try:
                if os.stat(path).st_ino == prev_ino:
                    os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as err:
                logger.error("Unable to clean up listening UNIX socket %r: %r", path, err)

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
