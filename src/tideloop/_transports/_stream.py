"""Stream transport for connected TCP and Unix sockets.

Semantics are asyncio's ``_SelectorSocketTransport``: callbacks in the same
order, the same errors and messages, ``connection_lost`` exactly once,
half-close through ``eof_received``'s return value, write flow control with
high/low watermarks. Two things differ inside, for speed (DESIGN.md §4):

Reads: ``Protocol`` transports ``recv_into`` one buffer owned by the loop and
hand ``data_received`` a copy of exactly the bytes received (asyncio's
``recv(256 KiB)`` makes glibc map and unmap a block per read; see the note at
the top of the constants). ``BufferedProtocol`` transports receive straight
into the protocol's buffer.

Writes: ``write()`` appends to the transport's buffer and, while the loop is
running, asks the loop to flush the transport once at the end of the current
iteration; all writes of the iteration then go out in one ``send``/``sendmsg``
(an HTTP server's header write and body write become one syscall). Nobody
sees the gathering: ``get_write_buffer_size()`` first sends what waits (so
right after a small write it is 0, as in asyncio, and a zero-copy
``BufferedProtocol`` may reuse its buffer), and a write that takes the
buffer past the high watermark is sent at once, so ``pause_writing`` fires
only for data the kernel refused, as in asyncio.
Outside a running loop, writes are sent at once. What a protocol writes from
this transport's own ``data_received``/``buffer_updated`` goes out as soon as
that call returns, not at the end of the iteration (a single chunk with
``os.write`` on the socket's current descriptor, inline in ``_on_readable``:
the usual request/response path makes no Python call of its own to send).
A socket whose class is not exactly ``socket.socket`` gets
``SocketMethodsTransport`` instead (chosen at construction): it reads and
writes through the socket's own methods, as asyncio does, without gathering.

Invariants:
- ``_write_state`` is IDLE (nothing buffered), QUEUED (buffered, in the
  loop's flush list, or gathering inside the transport's own
  ``data_received``/``buffer_updated`` call, which flushes when it returns)
  or WAITING (buffered, writer registered for EAGAIN);
- the buffer holds only immutable data (bytes, or memoryviews of bytes);
- ``_conn_lost`` counts from the moment ``connection_lost`` is scheduled;
- ``_rare`` is True whenever ``_closing``, ``_eof``, ``_conn_lost``,
  ``_empty_waiter`` or ``_protocol_paused`` is set or the state is WAITING:
  ``write()`` and a completed send test that one flag, and look at the
  others only then.
"""

from __future__ import annotations

import asyncio
import asyncio.transports  # mypyc: the module of asyncio.Transport
import collections
import errno
import itertools
import logging
import os
import socket
import sys
from asyncio.constants import _SendfileMode
from asyncio.trsock import TransportSocket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Final

from .._handles import set_result_unless_cancelled
from ._base import (
    LOG_THRESHOLD_FOR_CONNLOST_WRITES,
    WRITE_HIGH_WATER_BYTES,
    InstanceDict,
    call_flow_control,
    pause_reading,
    report_fatal_error,
    resume_reading,
    socket_transport_repr,
    warn_unclosed,
    write_buffer_limits,
)

if TYPE_CHECKING:
    from .._io import LoopIO

logger = logging.getLogger("asyncio")

# Protocol reads: recv_into() the loop's 256 KiB buffer, then copy exactly the
# bytes received. Measured alternatives, server CPU per message (echo, 10
# connections): asyncio's recv(256 KiB) crosses glibc's mmap threshold and
# maps/unmaps per read (~24 us at 1 KiB); recv(64 KiB) was as cheap at 1 KiB
# but made glibc trim and regrow the heap top at 100 KiB (brk + page faults:
# 61 us vs 23 us per message with this scheme, uvloop 21 us).
MAX_RECV_BYTES: Final = 256 * 1024  # asyncio's max_size (socket subclasses)
SENDMSG_MAX_BUFFERS: Final = 1024  # IOV_MAX on Linux

# 3.12+ builds memoryviews of the items; 3.11 joins them (different errors).
_WRITELINES_MEMORYVIEW: Final = sys.version_info >= (3, 12)

_write: Final = os.write
IDLE: Final = 0
QUEUED: Final = 1
WAITING: Final = 2


_TCP_FAMILIES: Final = frozenset({socket.AF_INET, socket.AF_INET6})


def set_nodelay(sock: socket.socket) -> None:
    # super(): the C getters' ints. socket.socket's family/type properties
    # build an enum member each time (~0.9 us apiece, per connection).
    raw: Any = super(socket.socket, sock)
    if (
        hasattr(socket, "TCP_NODELAY")
        and raw.family in _TCP_FAMILIES
        and raw.type == socket.SOCK_STREAM
        and sock.proto == socket.IPPROTO_TCP
    ):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


# What ``isinstance`` sees (as for the handles, see ``_handles.HANDLE_CLASS``):
# the stream transports are native classes in the compiled build, which
# cannot extend asyncio.Transport (its ``__slots__`` fix a layout of their
# own), so they are not its subclasses; their ``__class__`` names these
# Python subclasses of asyncio.Transport, and ``isinstance(transport,
# asyncio.Transport)`` (or ReadTransport, WriteTransport, BaseTransport)
# holds as for asyncio's transports. ``type(transport)`` is the real class.
# Like asyncio's socket transports, a _FlowControlMixin (asyncio's sendfile
# fallback checks for it).
def _transport_class(name: str) -> type:
    base = asyncio.transports._FlowControlMixin  # type: ignore[attr-defined]
    return type(name, (base,), {"__slots__": (), "__module__": __name__})


STREAM_TRANSPORT_CLASS: Final = _transport_class("StreamTransport")
SOCKET_METHODS_TRANSPORT_CLASS: Final = _transport_class("SocketMethodsTransport")


class StreamTransport(InstanceDict):
    """A connected stream socket (TCP or Unix) under an asyncio protocol."""

    # InstanceDict gives instances a __dict__: tests patch transport
    # instances (``transport.write = ...``, DESIGN.md 5a).

    # loop.start_tls() and loop.sendfile() check these, as asyncio's do.
    _start_tls_compatible: ClassVar[bool] = True
    _sendfile_compatible: ClassVar[_SendfileMode] = _SendfileMode.TRY_NATIVE
    # asyncio's read size, public on its transports; tideloop's Protocol
    # reads use the loop's buffer of this size (SocketMethodsTransport: recv).
    max_size: ClassVar[int] = MAX_RECV_BYTES

    _extra: dict[str, Any]
    _loop: Any
    _io: LoopIO
    _sock: Any
    _sock_fd: int
    _protocol_connected: bool
    _protocol: Any
    _buffered_proto: bool
    _server: Any
    _buffer: collections.deque[bytes | memoryview]
    _buffer_size: int
    _write_state: int
    _conn_lost: int
    _closing: bool
    _paused: bool
    _eof: bool
    _empty_waiter: asyncio.Future[None] | None
    _rare: bool
    _protocol_paused: bool
    _high_water: int
    _low_water: int
    _flush_queue: list[Any]
    _recv_buffer: bytearray
    _recv_view: memoryview
    _recv_into: Callable[[Any], int]
    _fileno: Callable[[], int]

    def __init__(
        self,
        io: LoopIO,
        sock: socket.socket,
        protocol: asyncio.BaseProtocol,
        waiter: asyncio.Future[None] | None = None,
        extra: dict[str, Any] | None = None,
        server: Any = None,
    ) -> None:
        self._extra = {} if extra is None else extra
        self._extra["socket"] = TransportSocket(sock)
        try:
            self._extra["sockname"] = sock.getsockname()
        except OSError:
            self._extra["sockname"] = None
        if "peername" not in self._extra:
            try:
                self._extra["peername"] = sock.getpeername()
            except OSError:
                self._extra["peername"] = None
        loop = io.loop
        self._loop = loop
        self._io = io
        self._sock = sock
        self._sock_fd = sock.fileno()
        # The socket's methods of the hot path, bound once (os.write goes to
        # the socket's current descriptor: -1, EBADF, once it is closed).
        self._recv_into = sock.recv_into
        self._fileno = sock.fileno
        self._protocol_connected = False
        self._protocol = None
        self._buffered_proto = False
        self.set_protocol(protocol)
        self._server = server
        self._buffer = collections.deque()
        self._buffer_size = 0
        self._write_state = IDLE
        self._conn_lost = 0
        self._closing = False
        self._paused = False
        self._eof = False
        self._empty_waiter = None
        self._rare = False
        self._protocol_paused = False
        self._high_water = WRITE_HIGH_WATER_BYTES
        self._low_water = WRITE_HIGH_WATER_BYTES // 4
        # LoopIO.flush_queue: write() appends this transport to it.
        self._flush_queue = io.flush_queue
        # The loop's receive buffer (shared by its transports; see reads).
        self._recv_buffer = io.recv_buffer
        self._recv_view = io.recv_view
        if server is not None:
            server._attach(self)
        io.attach(self._sock_fd, self)
        set_nodelay(sock)
        loop.call_soon(protocol.connection_made, self)
        # Start reading only once connection_made() has run.
        loop.call_soon(self._start_reading)
        if waiter is not None:
            loop.call_soon(set_result_unless_cancelled, waiter, None)

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # type: ignore[override]
        return STREAM_TRANSPORT_CLASS

    def __dir__(self) -> list[str]:
        # object.__dir__ lists the attributes of __class__; list ours.
        names = set(dir(type(self)))
        names.update(getattr(self, "__dict__", ()))
        return sorted(names)

    def __repr__(self) -> str:
        return socket_transport_repr(self)

    def __del__(self) -> None:
        if self._sock is not None:
            warn_unclosed(self)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """Get optional transport information."""
        return self._extra.get(name, default)

    # -- BaseTransport -----------------------------------------------------

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        buffered = isinstance(protocol, asyncio.BufferedProtocol)
        switch = buffered != self._buffered_proto and self._protocol is not None
        self._buffered_proto = buffered
        self._protocol = protocol
        self._protocol_connected = True
        if switch and self._io.is_reading(self._sock_fd):
            # Reading now: watch with the read method of the new protocol kind.
            self._start_reading()

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol  # type: ignore[no-any-return]

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        if self._write_state == QUEUED:
            # Nothing more to gather: send now, as asyncio's write() would have.
            self._flush()
            if self._closing:
                # The send failed and _force_close has scheduled
                # connection_lost; asyncio's write() would have done so
                # before this close(), which then does nothing.
                return
        self._closing = self._rare = True
        self._io.stop_reading(self._sock_fd)
        if not self._buffer:
            self._conn_lost += 1
            self._io.stop_writing(self._sock_fd)
            self._loop.call_soon(self._call_connection_lost, None)

    def abort(self) -> None:
        # What was written before abort() still goes out, as with asyncio's
        # write(); only a refused rest is dropped (see _force_close).
        self._force_close(None)

    # -- reading ---------------------------------------------------------------

    def is_reading(self) -> bool:
        return not self._closing and not self._paused

    def pause_reading(self) -> None:
        pause_reading(self)

    def resume_reading(self) -> None:
        resume_reading(self)

    def _start_reading(self) -> None:
        if self._closing or self._paused:
            return
        # One read method per protocol kind (set_protocol switches it): the
        # per-read check costs more than the choice made here.
        self._io.start_reading(
            self._sock_fd, self._read_into_protocol if self._buffered_proto else self._on_readable
        )

    def _stop_reading(self) -> None:
        self._io.stop_reading(self._sock_fd)

    def _on_readable(self) -> None:
        # Plain Protocol reads. No closed check: closing removes the reader,
        # which cancels its handle, and the loop skips cancelled handles.
        try:
            recv_into = self._recv_into  # bound once: no method lookup per read
            nbytes = recv_into(self._recv_buffer)
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal read error on socket transport")
            return
        if not nbytes:
            self._on_eof()
            return
        data = self._recv_view[:nbytes].tobytes()
        if self._write_state:  # QUEUED or WAITING: writes join what is there
            try:
                self._protocol.data_received(data)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal error: protocol.data_received() call failed.")
            return
        # The usual case (a request, its response): gather what the protocol
        # writes while it handles this data and send it when it returns, in
        # one send/sendmsg, without the loop's end-of-iteration queue.
        # QUEUED outside that queue is only ever seen inside this call.
        self._write_state = QUEUED
        try:
            self._protocol.data_received(data)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.data_received() call failed.")
        if self._write_state == QUEUED:
            buffer = self._buffer
            if len(buffer) == 1 and not self._rare:
                # _flush's fast path, inline: one Python call less per message.
                chunk = buffer[0]
                try:
                    fileno = self._fileno
                    sent = _write(fileno(), chunk)
                except (BlockingIOError, InterruptedError):
                    sent = 0
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    self._on_write_error(exc)
                    return
                if sent == len(chunk):
                    buffer.clear()
                    self._buffer_size = 0
                    self._write_state = IDLE
                else:
                    self._after_send(sent)
            elif buffer:
                self._flush()
            else:  # nothing written (a streams reader answers later, from a task)
                self._write_state = IDLE

    def _read_into_protocol(self) -> None:
        try:
            buf = self._protocol.get_buffer(-1)
            if not len(buf):
                raise RuntimeError("get_buffer() returned an empty buffer")
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.get_buffer() call failed.")
            return
        try:
            recv_into = self._recv_into
            nbytes = recv_into(buf)
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal read error on socket transport")
            return
        if not nbytes:
            self._on_eof()
            return
        own = not self._write_state  # gather this call's writes, as _on_readable
        if own:
            self._write_state = QUEUED
        try:
            self._protocol.buffer_updated(nbytes)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.buffer_updated() call failed.")
        if own and self._write_state == QUEUED:
            if self._buffer:
                self._flush()
            else:
                self._write_state = IDLE

    def _on_eof(self) -> None:
        if self._loop.get_debug():
            logger.debug("%r received EOF", self)
        try:
            keep_open = self._protocol.eof_received()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.eof_received() call failed.")
            return
        if keep_open:
            # The protocol may still write; we can no longer read.
            self._io.stop_reading(self._sock_fd)
        else:
            self.close()

    # -- writing -------------------------------------------------------------------

    # data: Any, checked below with asyncio's message (a compiled build would
    # otherwise check the annotation first, with its own).
    def write(self, data: Any) -> None:
        if type(data) is not bytes:
            if not isinstance(data, (bytearray, memoryview)):
                raise TypeError(
                    f"data argument must be a bytes-like object, not {type(data).__name__!r}"
                )
            # The caller may reuse a mutable buffer once write() returns.
            data = bytes(data)
        if self._rare or not data:
            if self._write_refused(data):
                return
        self._buffer.append(data)
        size = self._buffer_size = self._buffer_size + len(data)
        if self._write_state == IDLE:
            if not self._io.running:
                # The loop is not running: nobody would flush; send now.
                self._flush()
                return
            self._write_state = QUEUED
            self._flush_queue.append(self)  # flushed at the iteration's end
        if size > self._high_water:
            if self._write_state == QUEUED:
                # Send what the kernel takes before deciding to pause.
                self._flush()
            self._maybe_pause_protocol()

    def _write_refused(self, data: bytes) -> bool:
        """write()'s rare cases, in asyncio's order of checks: raises, or
        says whether to drop the data (True) or buffer it (False)."""
        if self._eof:
            raise RuntimeError("Cannot call write() after write_eof()")
        if self._empty_waiter is not None:
            raise RuntimeError("unable to write; sendfile is in progress")
        if not data:
            return True
        if not self._conn_lost:
            return False  # closing or paused: still buffered, as in asyncio
        if self._conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
            logger.warning("socket.send() raised exception.")
        self._conn_lost += 1
        return True

    def _update_rare(self) -> None:
        self._rare = bool(
            self._closing
            or self._eof
            or self._conn_lost
            or self._empty_waiter is not None
            or self._protocol_paused
            or self._write_state == WAITING
        )

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self._low_water, self._high_water)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._high_water, self._low_water = write_buffer_limits(high, low)
        self._maybe_pause_protocol()

    def _maybe_pause_protocol(self) -> None:
        if self._protocol_paused or self.get_write_buffer_size() <= self._high_water:
            return
        self._protocol_paused = True
        self._update_rare()
        call_flow_control(self, "pause_writing")

    def _maybe_resume_protocol(self) -> None:
        if self._protocol_paused and self.get_write_buffer_size() <= self._low_water:
            self._protocol_paused = False
            self._update_rare()
            call_flow_control(self, "resume_writing")

    def writelines(self, list_of_data: Any) -> None:
        if not _WRITELINES_MEMORYVIEW:
            # Python 3.11: WriteTransport.writelines joins, then write()s.
            self.write(b"".join(list_of_data))
            return
        if self._eof:
            raise RuntimeError("Cannot call writelines() after write_eof()")
        if self._empty_waiter is not None:
            raise RuntimeError("unable to writelines; sendfile is in progress")
        # Check every item before sending any, with 3.12+'s error.
        items = [d if type(d) is bytes else bytes(memoryview(d)) for d in list_of_data]
        for data in items:
            self.write(data)

    def _flush(self) -> None:
        """Send what is buffered now, in any state: inline, when the buffer
        is looked at, and at the end of the loop's iteration (the loop calls
        this for the transports in ``LoopIO.flush_queue``; one
        may have been flushed since, or be WAITING for the kernel)."""
        buffer = self._buffer
        if len(buffer) != 1 or self._conn_lost:
            # Kept out of this function: a long body needs wide jumps, and
            # CPython 3.11 leaves a comparison before a wide jump unspecialized.
            self._flush_many()
            return
        # Fast path: one chunk, usually taken whole by the kernel.
        data = buffer[0]
        try:
            fileno = self._fileno
            sent = _write(fileno(), data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._on_write_error(exc)
            return
        if sent != len(data):
            self._after_send(sent)
            return
        buffer.clear()
        self._buffer_size = 0
        if self._rare:
            # Paused, closing, half-closed, sendfile waiting, or WAITING (a
            # writer registered): _after_send settles each.
            self._after_send(0)
        else:
            self._write_state = IDLE

    def _flush_many(self) -> None:
        """Send the buffer, whatever its length and state (the general path)."""
        buffer = self._buffer
        if self._conn_lost or not buffer:
            if self._write_state == QUEUED:
                self._write_state = IDLE
            return
        sent = 0
        try:
            while True:
                # sendmsg takes at most IOV_MAX buffers; go on while the
                # kernel takes whole batches.
                if len(buffer) <= SENDMSG_MAX_BUFFERS:
                    sent = self._sock.sendmsg(buffer)
                    break
                batch = list(itertools.islice(buffer, SENDMSG_MAX_BUFFERS))
                n = self._sock.sendmsg(batch)
                if n < sum(map(len, batch)):
                    sent = n
                    break
                for _ in range(SENDMSG_MAX_BUFFERS):
                    buffer.popleft()
                self._buffer_size -= n
        except (BlockingIOError, InterruptedError):
            pass
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._on_write_error(exc)
            return
        self._after_send(sent)

    def _on_write_error(self, exc: BaseException) -> None:
        if self._write_state == WAITING:
            self._io.stop_writing(self._sock_fd)
        self._write_state = IDLE
        self._buffer.clear()
        self._buffer_size = 0
        self._fatal_error(exc, "Fatal write error on socket transport")
        if self._empty_waiter is not None:
            self._empty_waiter.set_exception(exc)

    def _after_send(self, sent: int) -> None:
        buffer = self._buffer
        if sent:
            self._buffer_size -= sent
            if self._buffer_size == 0:
                buffer.clear()
            else:
                while sent:
                    head = buffer[0]
                    size = len(head)
                    if sent >= size:
                        buffer.popleft()
                        sent -= size
                    else:
                        buffer[0] = memoryview(head)[sent:]
                        break
        if self._protocol_paused and self._buffer_size <= self._low_water:
            # As asyncio: resume at the low watermark, even with data still
            # buffered; the protocol may write more from resume_writing().
            # (Not _maybe_resume_protocol: it asks get_write_buffer_size(),
            # which would flush again in the middle of this send.)
            self._protocol_paused = False
            self._update_rare()
            call_flow_control(self, "resume_writing")
        if self._buffer_size:
            if self._write_state != WAITING:
                self._write_state = WAITING
                self._rare = True
                self._io.start_writing(self._sock_fd, self._on_writable)
            self._maybe_pause_protocol()
            return
        if self._write_state == WAITING:
            self._io.stop_writing(self._sock_fd)
            self._write_state = IDLE
            self._update_rare()
        self._write_state = IDLE
        if self._empty_waiter is not None:
            self._empty_waiter.set_result(None)
        if self._closing:
            # Directly, as asyncio's _write_ready does once a closing
            # transport's buffer drains.
            self._conn_lost += 1
            self._call_connection_lost(None)
        elif self._eof:
            self._sock.shutdown(socket.SHUT_WR)

    def _on_writable(self) -> None:
        self._flush_many()

    def _call_connection_lost_soon(self, exc: BaseException | None) -> None:
        self._conn_lost += 1
        self._rare = True
        self._loop.call_soon(self._call_connection_lost, exc)

    def write_eof(self) -> None:
        if self._closing or self._eof:
            return
        self._eof = self._rare = True
        if not self._buffer:
            self._sock.shutdown(socket.SHUT_WR)
        elif self._write_state == QUEUED:
            self._flush()  # shuts down once the buffer drains

    def can_write_eof(self) -> bool:
        return True

    def get_write_buffer_size(self) -> int:
        if self._write_state == QUEUED:
            # Whoever looks sees asyncio's answer: its write() has already
            # handed the bytes to the kernel, so send what was gathered now.
            self._flush()
        return self._buffer_size

    # -- sendfile support (loop.sendfile) ----------------------------------------

    def _make_empty_waiter(self) -> asyncio.Future[None]:
        if self._empty_waiter is not None:
            raise RuntimeError("Empty waiter is already set")
        self._empty_waiter = self._loop.create_future()
        self._rare = True
        if not self._buffer:
            self._empty_waiter.set_result(None)
        elif self._write_state == QUEUED:
            self._flush()
        return self._empty_waiter

    def _reset_empty_waiter(self) -> None:
        self._empty_waiter = None
        self._update_rare()

    # -- teardown --------------------------------------------------------------------

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on transport") -> None:
        report_fatal_error(self, exc, message, quiet=isinstance(exc, OSError))
        self._force_close(exc)

    def _force_close(self, exc: BaseException | None) -> None:
        if self._conn_lost:
            return
        if self._write_state == QUEUED:
            # asyncio's write() hands data to the kernel at once: send what
            # was gathered before dropping what the kernel refuses.
            self._flush()
            if self._conn_lost:  # the send failed and closed us
                return
        if self._buffer:
            self._buffer.clear()
            self._buffer_size = 0
            if self._write_state == WAITING:
                self._io.stop_writing(self._sock_fd)
            self._write_state = IDLE
        if not self._closing:
            self._closing = self._rare = True
            self._io.stop_reading(self._sock_fd)
        self._call_connection_lost_soon(exc)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            if self._protocol_connected:
                self._protocol.connection_lost(exc)
        finally:
            self._sock.close()
            self._sock = None
            self._protocol = None
            self._loop = None
            server = self._server
            if server is not None:
                server._detach(self)
                self._server = None
            self._io.fd_released()


class SocketMethodsTransport(StreamTransport):
    """A stream transport over a socket whose class is not exactly
    ``socket.socket`` (a subclass passed with ``sock=`` that overrides
    ``send``/``sendmsg``/``recv``, as some libraries' tests do): every read and
    write goes through the socket's own methods, in asyncio's pattern, and
    writes are not gathered. ``recv(256 KiB)`` for a ``Protocol``,
    ``recv_into`` for a ``BufferedProtocol``, ``send()`` for each write made
    with nothing pending, then, once writable, ``sendmsg()`` of what is left
    (Python 3.11: ``send()`` of it joined)."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # type: ignore[override]
        return SOCKET_METHODS_TRANSPORT_CLASS

    def write(self, data: Any) -> None:
        super().write(data)
        if self._write_state == QUEUED:
            self._flush()  # asyncio's write() sends at once

    def _flush(self) -> None:
        buffer = self._buffer
        if self._conn_lost or len(buffer) != 1:
            self._flush_many()
            return
        try:
            sent = self._sock.send(buffer[0])
        except (BlockingIOError, InterruptedError):
            sent = 0
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._on_write_error(exc)
            return
        self._after_send(sent)

    def _flush_many(self) -> None:
        buffer = self._buffer
        if self._conn_lost or not buffer:
            if self._write_state == QUEUED:
                self._write_state = IDLE
            return
        try:
            if _WRITELINES_MEMORYVIEW and hasattr(socket.socket, "sendmsg"):
                sent = self._sock.sendmsg(itertools.islice(buffer, SENDMSG_MAX_BUFFERS))
            else:
                sent = self._sock.send(b"".join(buffer))
        except (BlockingIOError, InterruptedError):
            sent = 0
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._on_write_error(exc)
            return
        self._after_send(sent)

    def _on_readable(self) -> None:
        try:
            data = self._sock.recv(self.max_size)
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal read error on socket transport")
            return
        if not data:
            self._on_eof()
            return
        try:
            self._protocol.data_received(data)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.data_received() call failed.")


def stream_transport_class(sock: socket.socket) -> type[StreamTransport]:
    """The transport class for ``sock``, decided once per transport: the fast
    paths of ``StreamTransport`` write with ``os.write()`` on the descriptor,
    which a ``socket.socket`` subclass overriding ``send()``/``sendmsg()``/
    ``recv()`` would not see."""
    return StreamTransport if type(sock) is socket.socket else SocketMethodsTransport


def is_connection_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ECONNRESET, errno.EPIPE)
