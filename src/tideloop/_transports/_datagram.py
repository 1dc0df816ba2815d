"""Datagram endpoints: ``create_datagram_endpoint`` and the datagram transport.

Semantics are asyncio's ``_SelectorDatagramTransport`` and
``BaseEventLoop.create_datagram_endpoint``, version by version: the same
argument checks and messages, the same callbacks in the same order.

- A datagram is sent at once when nothing is queued; a send the kernel
  refuses (EAGAIN) queues it, whole, with its address, and the writer drains
  the queue in order. The queue counts towards ``get_write_buffer_size()``
  and drives ``pause_writing``/``resume_writing`` with the usual watermarks.
- ``OSError`` from a send or a receive (an ICMP "port unreachable" reported
  as ECONNREFUSED on a connected socket, ENOBUFS, ...) goes to
  ``protocol.error_received()``; the endpoint stays open. Any other
  exception is fatal.
- Reads ``recvfrom_into`` the loop's receive buffer and hand
  ``datagram_received`` a ``bytes`` copy of exactly the datagram
  (DESIGN.md §4; asyncio allocates 256 KiB per ``recvfrom``).

Differences between Python versions that we reproduce (``sys.version_info``):
- 3.13 sends empty datagrams (gh-113812); 3.11 and 3.12 drop them silently.
  Empty datagrams are *received* on every version.
- 3.13 counts 8 bytes of header per queued datagram in the write buffer size.
  3.13.0-3.13.5 forget to subtract the header again once the datagram is sent
  (gh-135444, fixed in later 3.13 releases); we follow the fix.
- 3.13 accepts any socket but SOCK_STREAM for ``sock=`` ("A datagram socket
  was expected"); 3.11 and 3.12 only SOCK_DGRAM ("A UDP Socket was
  expected", gh-114887).
- 3.12+ refuses a ``sock=`` already used by another open transport
  ("File descriptor ... is used by transport ..."); 3.11 takes it.
- 3.12+ datagram transports are ``asyncio.DatagramTransport`` instances;
  3.11's are only ``asyncio.Transport`` (gh-89049's fix landed in 3.12). Ours
  are both on every version: code testing ``isinstance(t, DatagramTransport)``
  is right to expect it.

Deliberate departures, each where asyncio fails in its own code:
- ``sendto()`` after ``connection_lost`` on an unconnected endpoint: asyncio
  raises ``AttributeError: 'NoneType' object has no attribute
  'call_exception_handler'``; we drop the datagram as asyncio does for a
  connected endpoint (with its warning after repeated attempts);
- a fatal (non-OSError) error while draining the last queued datagram:
  asyncio leaves the writer registered and its next run fails in the
  exception handler; we remove it. Likewise ``abort()`` after the queue
  drained on ``close()`` does not call ``connection_lost`` twice;
- a failing ``protocol_factory``: asyncio leaks the socket it made; we close
  it (a ``sock=`` stays the caller's).

Must not import the loop module at import time (it imports this one).
"""

from __future__ import annotations

import asyncio
import asyncio.transports  # mypyc: the module of asyncio's transport classes
import collections
import logging
import socket
import sys
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

# Datagrams read per readiness event at most (libuv reads up to 32).
DATAGRAMS_PER_WAKEUP: Final = 32
_PY313: Final = sys.version_info >= (3, 13)
# 3.12+ refuses a sock= already used by another transport (3.11 takes it).
_CHECK_FD_IN_USE: Final = sys.version_info >= (3, 12)
# 3.13+: empty datagrams are sent, and each queued datagram counts its header.
SEND_EMPTY_DATAGRAMS: Final = _PY313
DATAGRAM_HEADER_BYTES: Final = 8 if _PY313 else 0

_Address = Any
_Queued = tuple[bytes, _Address]


# What ``isinstance`` sees: as for the stream transports (see
# ``_stream.STREAM_TRANSPORT_CLASS``), a Python class with asyncio's bases
# for this transport kind (a _FlowControlMixin, hence an asyncio.Transport,
# and an asyncio.DatagramTransport).
DATAGRAM_TRANSPORT_CLASS: Final[type] = type(
    "DatagramTransport",
    (asyncio.transports._FlowControlMixin, asyncio.DatagramTransport),  # type: ignore[attr-defined]
    {"__slots__": (), "__module__": __name__},
)


class DatagramTransport(InstanceDict):
    """A UDP or Unix datagram socket under an ``asyncio.DatagramProtocol``.

    Also an ``asyncio.Transport`` as asyncio's is (``pause_reading``,
    ``resume_reading`` and the write-buffer limits work; ``write()`` raises
    ``NotImplementedError``). A native class in the compiled build;
    InstanceDict gives instances a ``__dict__`` (tests patch transports).
    """

    max_size: ClassVar[int] = 256 * 1024  # asyncio's read size, public on its transport

    _extra: dict[str, Any]
    _connected: bool
    _loop: Any
    _io: LoopIO
    # Set before __init__ can fail, for __del__.
    _sock: Any = None
    _sock_fd: int
    _send: Callable[[Any], int]
    _sendto: Callable[[Any, Any], int]
    _protocol: Any
    _protocol_connected: bool
    _address: Any
    _buffer: collections.deque[_Queued]
    _buffer_size: int
    _conn_lost: int
    _closing: bool
    _paused: bool
    _protocol_paused: bool
    _high_water: int
    _low_water: int

    def __init__(
        self,
        io: LoopIO,
        sock: socket.socket,
        protocol: asyncio.BaseProtocol,
        address: _Address = None,
        waiter: asyncio.Future[None] | None = None,
        extra: dict[str, Any] | None = None,
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
        # asyncio sends with send() when the socket has a peer, else sendto().
        self._connected = bool(self._extra["peername"])
        loop = io.loop
        self._loop = loop
        self._io = io
        self._sock = sock
        self._sock_fd = sock.fileno()
        self._send = sock.send
        self._sendto = sock.sendto
        self._protocol = None
        self._protocol_connected = False
        self.set_protocol(protocol)
        self._address = address
        self._buffer = collections.deque()
        self._buffer_size = 0
        self._conn_lost = 0  # set when connection_lost is scheduled
        self._closing = False
        self._paused = False
        self._protocol_paused = False
        self._high_water = WRITE_HIGH_WATER_BYTES
        self._low_water = WRITE_HIGH_WATER_BYTES // 4
        io.attach(self._sock_fd, self)
        loop.call_soon(protocol.connection_made, self)
        # Start reading only once connection_made() has run.
        loop.call_soon(self._start_reading)
        if waiter is not None:
            loop.call_soon(set_result_unless_cancelled, waiter, None)

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # type: ignore[override]
        return DATAGRAM_TRANSPORT_CLASS

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

    # -- asyncio.Transport's write side, which a datagram transport lacks --------

    def write(self, data: Any) -> None:
        """Write some data bytes to the transport (not for datagrams)."""
        raise NotImplementedError

    def writelines(self, list_of_data: Any) -> None:
        """Write a list (or any iterable) of data bytes to the transport."""
        self.write(b"".join(list_of_data))

    def write_eof(self) -> None:
        raise NotImplementedError

    def can_write_eof(self) -> bool:
        raise NotImplementedError

    # -- flow control (asyncio's _FlowControlMixin) ----------------------------------

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self._low_water, self._high_water)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._high_water, self._low_water = write_buffer_limits(high, low)
        self._maybe_pause_protocol()

    def _maybe_pause_protocol(self) -> None:
        if self._protocol_paused or self._buffer_size <= self._high_water:
            return
        self._protocol_paused = True
        call_flow_control(self, "pause_writing")

    def _maybe_resume_protocol(self) -> None:
        if self._protocol_paused and self._buffer_size <= self._low_water:
            self._protocol_paused = False
            call_flow_control(self, "resume_writing")

    # -- BaseTransport -----------------------------------------------------

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol
        self._protocol_connected = True

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol  # type: ignore[no-any-return]

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._stop_reading()
        if not self._buffer:
            self._conn_lost += 1
            self._stop_writing()
            self._loop.call_soon(self._call_connection_lost, None)
        # else: the writer calls connection_lost once the queue is sent.

    def abort(self) -> None:
        self._force_close(None)

    # -- reading -----------------------------------------------------------------

    def is_reading(self) -> bool:
        return not self._closing and not self._paused

    def pause_reading(self) -> None:
        pause_reading(self)

    def resume_reading(self) -> None:
        resume_reading(self)

    def _start_reading(self) -> None:
        if self._closing or self._paused:
            return
        self._io.start_reading(self._sock_fd, self._on_readable)

    def _stop_reading(self) -> None:
        self._io.stop_reading(self._sock_fd)

    def _stop_writing(self) -> None:
        self._io.stop_writing(self._sock_fd)

    def _on_readable(self) -> None:
        # asyncio reads one datagram per readiness event, so every datagram
        # costs a loop iteration and a poll. We read on while the socket has
        # datagrams (up to DATAGRAMS_PER_WAKEUP, as libuv does) but only as
        # long as nothing else became ready: as soon as a datagram_received()
        # schedules a callback, we stop and let it run first, which is the
        # order asyncio would run them in.
        io = self._io
        ready = io.ready
        recv_into = self._sock.recvfrom_into
        buffer = io.recv_buffer
        view = io.recv_view
        for _ in range(DATAGRAMS_PER_WAKEUP):
            if self._conn_lost or self._closing or self._paused:
                return
            try:
                nbytes, addr = recv_into(buffer)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                # ICMP errors and the like: the endpoint stays usable.
                self._protocol.error_received(exc)
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal read error on datagram transport")
                return
            # As in asyncio, an exception from the protocol goes to the loop's
            # exception handler (it escapes this callback); reading goes on.
            self._protocol.datagram_received(view[:nbytes].tobytes(), addr)
            if ready:
                return

    # -- writing -------------------------------------------------------------------

    def sendto(self, data: Any, addr: _Address = None) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"data argument must be a bytes-like object, not {type(data).__name__!r}"
            )
        if not data and not SEND_EMPTY_DATAGRAMS:
            return
        if self._address:
            if addr not in (None, self._address):
                raise ValueError(f"Invalid address: must be None or {self._address}")
            addr = self._address
        if self._sock is None or (self._conn_lost and self._address):
            if self._conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("socket.send() raised exception.")
            self._conn_lost += 1
            return
        if not self._buffer:
            # Nothing queued: try to send right away.
            try:
                if self._connected:
                    send = self._send  # bound once: no method lookup per datagram
                    send(data)
                else:
                    sendto = self._sendto
                    sendto(data, addr)
                return
            except (BlockingIOError, InterruptedError):
                self._io.start_writing(self._sock_fd, self._on_writable)
            except OSError as exc:
                self._protocol.error_received(exc)
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on datagram transport")
                return
        # Queue an immutable copy: the caller may reuse its buffer.
        self._buffer.append((bytes(data), addr))
        self._buffer_size += len(data) + DATAGRAM_HEADER_BYTES
        self._maybe_pause_protocol()

    def _on_writable(self) -> None:
        buffer = self._buffer
        while buffer:
            data, addr = buffer.popleft()
            try:
                if self._connected:
                    self._sock.send(data)
                else:
                    self._sock.sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                buffer.appendleft((data, addr))  # try again when writable
                break
            except OSError as exc:
                # asyncio drops this datagram and keeps the writer for the rest.
                self._buffer_size -= len(data) + DATAGRAM_HEADER_BYTES
                self._protocol.error_received(exc)
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._buffer_size -= len(data) + DATAGRAM_HEADER_BYTES
                # asyncio leaves the writer registered when this was the last
                # datagram (its _force_close() only removes it for a non-empty
                # queue), and the next writable event then fails on the closed
                # transport in the exception handler. We remove it.
                self._stop_writing()
                self._fatal_error(exc, "Fatal write error on datagram transport")
                return
            self._buffer_size -= len(data) + DATAGRAM_HEADER_BYTES
        self._maybe_resume_protocol()  # may queue more
        if not buffer:
            self._stop_writing()
            if self._closing:
                # Counted (asyncio does not), so that a later abort() does not
                # schedule connection_lost a second time.
                self._conn_lost += 1
                self._call_connection_lost(None)

    def get_write_buffer_size(self) -> int:
        return self._buffer_size

    # -- teardown --------------------------------------------------------------------

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on transport") -> None:
        report_fatal_error(self, exc, message, quiet=isinstance(exc, OSError))
        self._force_close(exc)

    def _force_close(self, exc: BaseException | None) -> None:
        if self._conn_lost:
            return
        if self._buffer:
            # asyncio leaves the size as it was; so do we.
            self._buffer.clear()
            self._stop_writing()
        if not self._closing:
            self._closing = True
            self._stop_reading()
        self._conn_lost += 1
        self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            if self._protocol_connected:
                self._protocol.connection_lost(exc)
        finally:
            self._sock.close()
            self._sock = None
            self._protocol = None
            self._loop = None
            self._io.fd_released()
