"""LoopIO: the one interface between the loop and what does I/O on it.

Transports, servers, the sock_* API, pipes and subprocesses never read the
loop's or the backend's private state. They get a ``LoopIO`` from the loop
(``EventLoop._io``, handed to each transport at construction) and use its
verbs:

============================  ==================================================
``start_reading(fd, cb)``     call ``cb()`` on the loop whenever fd is readable
``stop_reading(fd)``          stop that; True if something was watched
``start_writing(fd, cb)``     the same for writability (a send met EAGAIN)
``stop_writing(fd)``
``is_reading(fd)``            for reprs: is a reader registered?
``is_writing(fd)``
``flush_queue``               a transport appends itself to have the loop call
                              ``transport._flush()`` at the end of this
                              iteration, before it polls again
``running``                   is the loop running (else nobody would flush:
                              a transport sends at once)
``ready``                     the loop's ready queue, to read only: a datagram
                              transport stops reading in a batch as soon as
                              a callback is queued (asyncio's order)
``loop``                      the loop itself, for its public API
``recv_buffer``/``recv_view`` one receive buffer per loop, borrowed for the
                              duration of one read callback
``attach(fd, transport)``     fd is owned by a transport (add_reader and the
                              sock_* methods refuse it while it is open)
``detach(fd)``                the transport gave the fd up (loop.sendfile)
``fd_released()``             a transport closed its descriptor: servers that
                              stopped accepting on EMFILE may accept again
``on_fd_released(cb)``        register such a server (``cb()`` is called once)
``tls_read_view()``           the buffer TLS connections decrypt into
============================  ==================================================

A readiness backend (epoll, poll, select, kqueue) implements the verbs by
watching descriptors and calling back when they are ready; the transport then
makes the syscall itself (try first, queue what the kernel refused). A
completion backend (io_uring) would implement the same verbs: ``start_reading``
would keep a receive submitted into ``recv_buffer`` and call back once it
completed, and a transport's send would become a submission. The transports
keep their state machines either way; only ``_on_readable``/``_flush`` would
learn to take a completed result instead of making the call.

Invariants: handles passed to the backend are created here, in the loop's
thread; replacing or stopping a registration cancels the old handle, so a
callback that was already collected in this iteration does not run.

Must not import the loop module (the loop imports this one).
"""

from __future__ import annotations

import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from ._backends import Backend
from ._handles import Handle

RECV_BUFFER_BYTES: Final = 256 * 1024
# The TLS layer's plaintext read chunk, as asyncio's sslproto reads: one
# buffer of this size per loop (tls_read_view), not one per connection.
TLS_READ_CHUNK_BYTES: Final = 256 * 1024


class LoopIO:
    """The verbs transports use to do I/O on one loop (see the module docstring)."""

    __slots__ = (
        "_backend",
        "_fd_released_callbacks",
        "_fileobjs",
        "_tls_view",
        "flush_queue",
        "loop",
        "ready",
        "recv_buffer",
        "recv_view",
        "running",
        "transports",
    )

    def __init__(self, loop: Any, backend: Backend, ready: deque[Any]) -> None:
        self.loop = loop
        self.ready = ready
        self._backend = backend
        # Is the loop running? Set by the loop when it starts and stops.
        self.running = False
        # One receive buffer for every Protocol transport of this loop: 256 KiB
        # so one recv_into takes what a fast peer sent, copied out exactly.
        self.recv_buffer = bytearray(RECV_BUFFER_BYTES)
        self.recv_view = memoryview(self.recv_buffer)
        # Transports with writes to send at the end of this iteration; the loop
        # drains the list.
        self.flush_queue: list[Any] = []
        # fd -> transport, for asyncio's "File descriptor ... is used by
        # transport" checks in add_reader/sock_*.
        self.transports: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()
        # fd -> the file object add_reader/add_writer got, if not an int.
        self._fileobjs: dict[int, Any] = {}
        self._fd_released_callbacks: list[Callable[[], None]] = []
        self._tls_view: memoryview | None = None

    def tls_read_view(self) -> memoryview:
        """The buffer TLS connections decrypt into (one per loop, made with
        the first TLS connection)."""
        view = self._tls_view
        if view is None:
            view = self._tls_view = memoryview(bytearray(TLS_READ_CHUNK_BYTES))
        return view

    # -- watching descriptors ---------------------------------------------------

    def start_reading(self, fd: int, callback: Callable[..., object], *args: Any) -> Handle:
        return self._watch(fd, Handle(callback, args, self.loop, None), self._backend.watch_read)

    def start_writing(self, fd: int, callback: Callable[..., object], *args: Any) -> Handle:
        return self._watch(fd, Handle(callback, args, self.loop, None), self._backend.watch_write)

    def stop_reading(self, fd: Any) -> bool:
        return self._unwatch(fd, self._backend.unwatch_read, self._backend.writer)

    def stop_writing(self, fd: Any) -> bool:
        return self._unwatch(fd, self._backend.unwatch_write, self._backend.reader)

    def is_reading(self, fd: int) -> bool:
        return self._backend.reader(fd) is not None

    def is_writing(self, fd: int) -> bool:
        return self._backend.writer(fd) is not None

    def watch_fileobj(self, fileobj: Any, handle: Handle, write: bool) -> Handle:
        """add_reader/add_writer: watch a file object or an fd number with a
        prepared handle (the user's callback and arguments)."""
        fd = fileobj_to_fd(fileobj)
        self._watch(fd, handle, self._backend.watch_write if write else self._backend.watch_read)
        if fd is not fileobj:
            self._fileobjs[fd] = fileobj
        return handle

    def _watch(
        self, fd: int, handle: Handle, watch: Callable[[int, Handle], Handle | None]
    ) -> Handle:
        if self.loop.is_closed():
            raise RuntimeError("Event loop is closed")
        old = watch(fd, handle)
        if old is not None:
            old.cancel()
        return handle

    def _unwatch(
        self,
        fd: Any,
        unwatch: Callable[[int], Handle | None],
        other_direction: Callable[[int], Handle | None],
    ) -> bool:
        if self.loop.is_closed():
            return False
        fileno = self._lookup_fd(fd)
        old = unwatch(fileno)
        if old is None:
            return False
        old.cancel()
        if self._fileobjs and other_direction(fileno) is None:
            self._fileobjs.pop(fileno, None)
        return True

    def _lookup_fd(self, fileobj: Any) -> int:
        """The fd to unregister: like selectors, a file object that was closed
        after registration is still found by identity."""
        try:
            return fileobj_to_fd(fileobj)
        except ValueError:
            for fd, obj in self._fileobjs.items():
                if obj is fileobj:
                    return fd
            raise

    # -- descriptors owned by transports -----------------------------------------

    def attach(self, fd: int, transport: Any) -> None:
        self.transports[fd] = transport

    def detach(self, fd: int) -> None:
        self.transports.pop(fd, None)

    def transport_of(self, fd: int) -> Any:
        return self.transports.get(fd)

    def on_fd_released(self, callback: Callable[[], None]) -> None:
        if callback not in self._fd_released_callbacks:
            self._fd_released_callbacks.append(callback)

    def cancel_on_fd_released(self, callback: Callable[[], None]) -> None:
        try:
            self._fd_released_callbacks.remove(callback)
        except ValueError:
            pass

    def fd_released(self) -> None:
        """A transport closed its descriptor: wake those waiting for one."""
        if self._fd_released_callbacks:
            callbacks = self._fd_released_callbacks
            self._fd_released_callbacks = []
            for callback in callbacks:
                callback()


def fileobj_to_fd(fileobj: Any) -> int:
    """An fd number from an int or an object with fileno(), with selectors' errors."""
    if isinstance(fileobj, int):
        fd = fileobj
    else:
        try:
            fd = int(fileobj.fileno())
        except (AttributeError, TypeError, ValueError):
            raise ValueError(f"Invalid file object: {fileobj!r}") from None
    if fd < 0:
        raise ValueError(f"Invalid file descriptor: {fd}")
    return fd
