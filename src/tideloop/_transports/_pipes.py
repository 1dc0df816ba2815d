"""Read and write pipe transports: ``connect_read_pipe``/``connect_write_pipe``.

Semantics are asyncio's ``unix_events._UnixReadPipeTransport`` and
``_UnixWritePipeTransport`` (the same on 3.11, 3.12 and 3.13): the same file
type checks and messages, the same callbacks in the same order. The
subprocess transport builds its stdin/stdout/stderr on these classes.

What asyncio allows:
- a read pipe on a FIFO (pipe), a socket or a character device (a pty);
- a write pipe on the same; anything else is a ``ValueError``.

Reading: ``readv`` into the loop's receive buffer, then ``data_received``
gets a ``bytes`` copy of exactly what arrived (DESIGN.md §4; asyncio
allocates 256 KiB per ``os.read``). End of file calls ``eof_received`` and
then ``connection_lost(None)``, each in its own callback, and closes the pipe
whatever ``eof_received`` returns (a pipe has no half-close). EIO, what a pty
master reads once the slave side is closed, ends the transport quietly with
``connection_lost(OSError(EIO))``; other read errors also reach the
exception handler.

Writing: a write goes to the pipe at once when nothing is queued; what the
pipe refuses is queued and drained when it is writable, with
``pause_writing``/``resume_writing`` at the watermarks. ``write_eof()`` (and
``close()``) close the pipe once the queue is drained.

The reader going away: a write pipe cannot be read, so asyncio watches it for
*readability*, which on Linux happens exactly when the reading end is closed
(pipe_poll() reports EPOLLERR for a pipe without readers, which poll and
select report as readable too; for a socket, the peer's close makes it
readable). The transport then closes, with ``connection_lost(None)``, or with
``BrokenPipeError`` if data was still queued. Character devices are not
watched (a tty is readable whenever input is waiting). A write that meets the
closed reader (EPIPE) is not raised into the caller: ``connection_lost``
gets the ``BrokenPipeError``.

Deliberate departures, each where asyncio fails in its own code:
- ``abort()`` after ``close()``: asyncio's write pipe schedules
  ``connection_lost`` a second time, and that call fails in the exception
  handler ("Exception in callback ..._call_connection_lost"); we call it once;
- ``close()`` in ``connection_made()``: asyncio still registers the write
  pipe's reader-closed watch afterwards, on an fd about to be closed; we don't;
- a pipe object whose ``fileno()`` fails (a closed file): asyncio's half-made
  transport warns in ``__del__`` and fails in ``__repr__``; ours stays quiet;
- debug mode, pipe closed in ``connection_made()``: asyncio's "... pipe %r
  connected" log calls ``pipe.fileno()`` and raises; we log the transport's fd.

Pipe transports are not attached to the loop (``LoopIO.attach``): asyncio does not
register them, so ``add_reader`` on their fd is allowed there too.

Must not import the loop module at import time (it imports this one).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import stat
import sys
import warnings
from typing import TYPE_CHECKING, Any, Final

from .._handles import set_result_unless_cancelled
from ._base import (
    LOG_THRESHOLD_FOR_CONNLOST_WRITES,
    ReadingControl,
    WriteFlowControl,
    report_fatal_error,
)

if TYPE_CHECKING:
    from .._io import LoopIO

logger = logging.getLogger("asyncio")

# On AIX, readability signals a closed reader only for sockets (asyncio's note).
_FIFO_READER_DETECTION: Final = not sys.platform.startswith("aix")



class _PipeTransport(asyncio.BaseTransport):
    """What both ends share: repr, the unclosed-pipe warning, the protocol
    accessors. Each end says whether it is polling (``_polling()``) and may
    add to the repr (``_repr_extra()``)."""

    # No __slots__ (DESIGN.md 5a). Set before __init__ can fail, for __del__.
    _pipe: Any = None
    _extra: dict[str, Any]
    _loop: Any
    _fileno: Any
    _protocol: Any
    _closing: bool

    def __init__(
        self,
        io: LoopIO,
        pipe: Any,
        protocol: asyncio.BaseProtocol,
        extra: dict[str, Any] | None,
    ) -> None:
        super().__init__(extra)
        self._extra["pipe"] = pipe
        self._loop = io.loop
        self._io = io
        # fileno() first: if it fails (a closed file), __del__ must not think
        # the pipe is ours (asyncio's then warns and fails in __repr__).
        self._fileno = pipe.fileno()
        self._pipe = pipe
        self._protocol = protocol

    def _polling(self) -> bool:
        raise NotImplementedError

    def _repr_extra(self) -> list[str]:
        return []

    def __repr__(self) -> str:
        info = [self.__class__.__name__]
        if self._pipe is None:
            info.append("closed")
        elif self._closing:
            info.append("closing")
        info.append(f"fd={self._fileno}")
        loop = self._loop
        if self._pipe is not None and loop is not None and not loop.is_closed():
            info.append("polling" if self._polling() else "idle")
            info += self._repr_extra()
        elif self._pipe is not None:
            info.append("open")
        else:
            info.append("closed")
        return "<{}>".format(" ".join(info))

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if self._pipe is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._pipe.close()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol  # type: ignore[no-any-return]

    def is_closing(self) -> bool:
        return self._closing


class ReadPipeTransport(ReadingControl, _PipeTransport, asyncio.ReadTransport):
    """The read end of a pipe, a socket or a character device."""

    max_size = 256 * 1024  # asyncio's read size, public on its transport

    def __init__(
        self,
        io: LoopIO,
        pipe: Any,
        protocol: asyncio.BaseProtocol,
        waiter: asyncio.Future[None] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(io, pipe, protocol, extra)
        loop = self._loop
        self._closing = False
        self._paused = False
        self._reading = False  # registered for reading (for __repr__)
        mode = os.fstat(self._fileno).st_mode
        if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)):
            self._pipe = None
            self._fileno = None
            self._protocol = None
            raise ValueError("Pipe transport is for pipes/sockets only.")
        os.set_blocking(self._fileno, False)
        # readv() fills the loop's buffer; one argument tuple for every read.
        self._read_buffers = (io.recv_buffer,)
        loop.call_soon(protocol.connection_made, self)
        # Start reading only once connection_made() has run.
        loop.call_soon(self._start_reading)
        if waiter is not None:
            loop.call_soon(set_result_unless_cancelled, waiter, None)

    def _polling(self) -> bool:
        return self._reading

    def close(self) -> None:
        if not self._closing:
            self._close(None)

    # -- reading (is_reading/pause_reading/resume_reading: ReadingControl) -----

    def _start_reading(self) -> None:
        if self.is_reading():
            self._io.start_reading(self._fileno, self._on_readable)
            self._reading = True

    def _stop_reading(self) -> None:
        self._reading = False
        self._io.stop_reading(self._fileno)

    def _on_readable(self) -> None:
        loop = self._loop
        try:
            nbytes = os.readv(self._fileno, self._read_buffers)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fatal_error(exc, "Fatal read error on pipe transport")
            return
        if nbytes:
            # An exception from the protocol escapes to the loop's handler,
            # as in asyncio; reading goes on.
            self._protocol.data_received(self._io.recv_view[:nbytes].tobytes())
            return
        if loop.get_debug():
            logger.info("%r was closed by peer", self)
        self._closing = True
        self._stop_reading()
        loop.call_soon(self._protocol.eof_received)
        loop.call_soon(self._call_connection_lost, None)

    # -- teardown ------------------------------------------------------------------

    def _fatal_error(
        self, exc: BaseException, message: str = "Fatal error on pipe transport"
    ) -> None:
        # A pty whose other side closed (EIO) is the usual end, not an error.
        quiet = isinstance(exc, OSError) and exc.errno == errno.EIO
        report_fatal_error(self, exc, message, quiet=quiet)
        self._close(exc)

    def _close(self, exc: BaseException | None) -> None:
        self._closing = True
        self._stop_reading()
        self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            self._protocol.connection_lost(exc)
        finally:
            self._pipe.close()
            self._pipe = None
            self._protocol = None
            self._loop = None
            self._io.fd_released()


class WritePipeTransport(WriteFlowControl, _PipeTransport, asyncio.Transport):
    """The write end of a pipe, a socket or a character device.

    An ``asyncio.Transport``, as asyncio's is (through its flow-control
    mixin): ``pause_reading``/``resume_reading``/``is_reading`` exist and
    raise ``NotImplementedError``."""

    def __init__(
        self,
        io: LoopIO,
        pipe: Any,
        protocol: asyncio.BaseProtocol,
        waiter: asyncio.Future[None] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(io, pipe, protocol, extra)
        loop = self._loop
        self._buffer = bytearray()
        self._conn_lost = 0
        self._closing = False  # set by close() or write_eof()
        self._lost_scheduled = False
        self._init_flow_control()
        self._writing = False  # registered for writing (for __repr__)
        mode = os.fstat(self._fileno).st_mode
        is_char = stat.S_ISCHR(mode)
        is_fifo = stat.S_ISFIFO(mode)
        is_socket = stat.S_ISSOCK(mode)
        if not (is_char or is_fifo or is_socket):
            self._pipe = None
            self._fileno = None
            self._protocol = None
            raise ValueError("Pipe transport is only for pipes, sockets and character devices")
        os.set_blocking(self._fileno, False)
        loop.call_soon(protocol.connection_made, self)
        if is_socket or (is_fifo and _FIFO_READER_DETECTION):
            # Readable means the reader went away (see the module docstring);
            # start watching once connection_made() has run.
            loop.call_soon(self._watch_reader)
        if waiter is not None:
            loop.call_soon(set_result_unless_cancelled, waiter, None)

    def _polling(self) -> bool:
        return self._writing

    def _repr_extra(self) -> list[str]:
        return [f"bufsize={len(self._buffer)}"]

    def close(self) -> None:
        if self._pipe is not None and not self._closing:
            # Closing a write pipe is all write_eof() does.
            self.write_eof()

    def abort(self) -> None:
        self._close(None)

    # -- writing ---------------------------------------------------------------------

    def write(self, data: Any) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            # asyncio asserts here (so does this, without -O).
            raise AssertionError(repr(data))
        if isinstance(data, bytearray):
            data = memoryview(data)
        if not data:
            return
        if self._conn_lost or self._closing:
            if self._conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("pipe closed by peer or os.write(pipe, data) raised exception.")
            self._conn_lost += 1
            return
        if not self._buffer:
            # Nothing queued: try to write right away.
            try:
                n = os.write(self._fileno, data)
            except (BlockingIOError, InterruptedError):
                n = 0
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._conn_lost += 1
                self._fatal_error(exc, "Fatal write error on pipe transport")
                return
            if n == len(data):
                return
            if n > 0:
                data = memoryview(data)[n:]
            self._io.start_writing(self._fileno, self._on_writable)
            self._writing = True
        self._buffer += data
        self._maybe_pause_protocol()

    def _on_writable(self) -> None:
        buffer = self._buffer
        try:
            n = os.write(self._fileno, buffer)
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            buffer.clear()
            self._conn_lost += 1
            # With the buffer empty, _close() would not remove the writer.
            self._stop_writing()
            self._fatal_error(exc, "Fatal write error on pipe transport")
            return
        if n == len(buffer):
            buffer.clear()
            self._stop_writing()
            self._maybe_resume_protocol()  # may write more
            if self._closing:
                self._io.stop_reading(self._fileno)
                self._call_connection_lost(None)
        elif n > 0:
            del buffer[:n]

    def _watch_reader(self) -> None:
        # asyncio registers even if the transport was closed in
        # connection_made(), leaving a registration on a closed fd; we don't.
        if not self._closing:
            self._io.start_reading(self._fileno, self._on_reader_closed)

    def _stop_writing(self) -> None:
        self._writing = False
        self._io.stop_writing(self._fileno)

    def _on_reader_closed(self) -> None:
        if self._loop.get_debug():
            logger.info("%r was closed by peer", self)
        if self._buffer:
            self._close(BrokenPipeError())
        else:
            self._close()

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self._closing:
            return
        assert self._pipe
        self._closing = True
        if not self._buffer:
            self._io.stop_reading(self._fileno)
            self._schedule_connection_lost(None)

    def get_write_buffer_size(self) -> int:
        return len(self._buffer)

    # -- teardown ------------------------------------------------------------------

    def _fatal_error(
        self, exc: BaseException, message: str = "Fatal error on pipe transport"
    ) -> None:
        report_fatal_error(self, exc, message, quiet=isinstance(exc, OSError))
        self._close(exc)

    def _close(self, exc: BaseException | None = None) -> None:
        if self._lost_scheduled:
            return  # already on its way (see the module docstring)
        self._closing = True
        if self._buffer:
            self._stop_writing()
        self._buffer.clear()
        self._io.stop_reading(self._fileno)
        self._schedule_connection_lost(exc)

    def _schedule_connection_lost(self, exc: BaseException | None) -> None:
        self._lost_scheduled = True
        self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        self._lost_scheduled = True
        try:
            self._protocol.connection_lost(exc)
        finally:
            self._pipe.close()
            self._pipe = None
            self._protocol = None
            self._loop = None
            self._io.fd_released()


