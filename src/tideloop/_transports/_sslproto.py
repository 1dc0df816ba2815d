"""``SSLProtocol``: asyncio's TLS state machine as the protocol of the
transport underneath (see ``_ssl`` for the layering and the differences
from asyncio).

Must not import the loop module.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Iterable
from typing import Any

try:
    import ssl
except ImportError:  # pragma: no cover - Python built without OpenSSL
    ssl = None  # type: ignore[assignment]

from .._io import TLS_READ_CHUNK_BYTES
from ._base import LOG_THRESHOLD_FOR_CONNLOST_WRITES
from ._ssl import (
    _AGAIN,
    _NEXT_STATE,
    DO_HANDSHAKE,
    FLUSHING,
    SHUTDOWN,
    SSL_HANDSHAKE_TIMEOUT_S,
    SSL_SHUTDOWN_TIMEOUT_S,
    TLS_READ_HIGH_WATER_BYTES,
    TLS_RECORD_BYTES,
    TLS_WRITE_HIGH_WATER_BYTES,
    UNWRAPPED,
    WRAPPED,
    AppState,
    SSLTransport,
    TLSState,
    _check_timeout,
    _default_client_context,
    _flow_limits,
    _force_close,
)

logger = logging.getLogger("asyncio")


class SSLProtocol(asyncio.BufferedProtocol):
    """The protocol of the transport underneath: asyncio's ``SSLProtocol``."""

    _handshake_start_time: float | None = None
    _handshake_timeout_handle: asyncio.TimerHandle | None = None
    _shutdown_timeout_handle: asyncio.TimerHandle | None = None

    def __init__(
        self,
        loop: Any,
        app_protocol: asyncio.BaseProtocol,
        sslcontext: ssl.SSLContext | None,
        waiter: asyncio.Future[Any] | None,
        server_side: bool = False,
        server_hostname: str | None = None,
        call_connection_made: bool = True,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        read_view: memoryview | None = None,
    ) -> None:
        if ssl is None:  # pragma: no cover
            raise RuntimeError("stdlib ssl module not available")
        self._ssl_handshake_timeout = _check_timeout(
            "ssl_handshake_timeout", ssl_handshake_timeout, SSL_HANDSHAKE_TIMEOUT_S
        )
        self._ssl_shutdown_timeout = _check_timeout(
            "ssl_shutdown_timeout", ssl_shutdown_timeout, SSL_SHUTDOWN_TIMEOUT_S
        )
        if not sslcontext:
            sslcontext = _default_client_context(server_side, server_hostname)
        self._server_side = server_side
        self._server_hostname = server_hostname if server_hostname and not server_side else None
        self._sslcontext = sslcontext
        # More keys arrive with the handshake.
        self._extra: dict[str, Any] = {"sslcontext": sslcontext}

        # One buffer per loop (see the module docstring): the loop passes it.
        self._buffer_view: memoryview = (
            read_view if read_view is not None else memoryview(bytearray(TLS_READ_CHUNK_BYTES))
        )

        self._write_backlog: collections.deque[Any] = collections.deque()
        self._write_buffer_size = 0
        self._waiter = waiter
        self._loop = loop
        self._app_protocol: Any = None
        self._app_protocol_get_buffer: Any = None
        self._app_protocol_buffer_updated: Any = None
        self._app_protocol_is_buffer = False
        self._set_app_protocol(app_protocol)
        self._app_transport: SSLTransport | None = None
        self._app_transport_created = False
        self._transport: Any = None  # the transport underneath

        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._state = UNWRAPPED
        self._conn_lost = 0
        self._app_state = AppState.INIT if call_connection_made else AppState.CON_MADE
        self._sslobj = sslcontext.wrap_bio(
            self._incoming,
            self._outgoing,
            server_side=server_side,
            server_hostname=self._server_hostname,
        )

        self._ssl_writing_paused = False
        self._app_reading_paused = False
        self._ssl_reading_paused = False
        self._eof_received = False
        self._incoming_high_water = 0
        self._incoming_low_water = 0
        self._set_read_buffer_limits()
        self._app_writing_paused = False
        self._outgoing_high_water = 0
        self._outgoing_low_water = 0
        self._set_write_buffer_limits()
        self._get_app_transport()

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} state={self._state.value}>"

    def _set_app_protocol(self, app_protocol: Any) -> None:
        self._app_protocol = app_protocol
        if hasattr(app_protocol, "get_buffer") and isinstance(
            app_protocol, asyncio.BufferedProtocol
        ):
            self._app_protocol_get_buffer = app_protocol.get_buffer
            self._app_protocol_buffer_updated = app_protocol.buffer_updated
            self._app_protocol_is_buffer = True
        else:
            self._app_protocol_is_buffer = False

    def _wakeup_waiter(self, exc: BaseException | None = None) -> None:
        waiter = self._waiter
        if waiter is None:
            return
        if not waiter.cancelled():
            if exc is not None:
                waiter.set_exception(exc)
            else:
                waiter.set_result(None)
        self._waiter = None

    def _get_app_transport(self) -> SSLTransport:
        if self._app_transport is None:
            if self._app_transport_created:
                raise RuntimeError("Creating _SSLProtocolTransport twice")
            self._app_transport = SSLTransport(self._loop, self)
            self._app_transport_created = True
        return self._app_transport

    def _set_state(self, new_state: TLSState) -> None:
        """The transition check: UNWRAPPED from anywhere, else one step on."""
        if new_state is not UNWRAPPED and _NEXT_STATE[self._state] is not new_state:
            raise RuntimeError(f"cannot switch state from {self._state} to {new_state}")
        self._state = new_state

    def _get_extra_info(self, name: str, default: Any = None) -> Any:
        if name in self._extra:
            return self._extra[name]
        if self._transport is not None:
            return self._transport.get_extra_info(name, default)
        return default

    # -- the transport underneath calls these ------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._start_handshake()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._write_backlog.clear()
        self._outgoing.read()
        self._conn_lost += 1
        if self._app_transport is not None:
            # Closed now: no "unclosed transport" warning when it is collected.
            self._app_transport._closed = True
        if self._state is not DO_HANDSHAKE and (
            self._app_state is AppState.CON_MADE or self._app_state is AppState.EOF
        ):
            self._app_state = AppState.CON_LOST
            self._loop.call_soon(self._app_protocol.connection_lost, exc)
        self._set_state(UNWRAPPED)
        # Break the protocol <-> transport cycles (CPython tests check that the
        # SSLContext is freed without the cyclic GC).
        self._transport = None
        self._app_transport = None
        self._app_protocol = None
        self._app_protocol_get_buffer = None
        self._app_protocol_buffer_updated = None
        self._wakeup_waiter(exc)
        if self._shutdown_timeout_handle is not None:
            self._shutdown_timeout_handle.cancel()
            self._shutdown_timeout_handle = None
        if self._handshake_timeout_handle is not None:
            self._handshake_timeout_handle.cancel()
            self._handshake_timeout_handle = None

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer_view

    def buffer_updated(self, nbytes: int) -> None:
        self._incoming.write(self._buffer_view[:nbytes])
        state = self._state
        if state is WRAPPED:
            self._do_read()
        elif state is DO_HANDSHAKE:
            self._do_handshake()
        elif state is FLUSHING:
            self._do_flush()
        elif state is SHUTDOWN:
            self._do_shutdown()

    def eof_received(self) -> bool | None:
        """The peer closed its side of the stream (with or without close_notify)."""
        self._eof_received = True
        try:
            if self._loop.get_debug():
                logger.debug("%r received EOF", self)
            state = self._state
            if state is DO_HANDSHAKE:
                self._on_handshake_complete(ConnectionResetError)
            elif state is WRAPPED:
                self._set_state(FLUSHING)
                if self._app_reading_paused:
                    return True
                self._do_flush()
            elif state is FLUSHING:
                self._do_write()
                self._set_state(SHUTDOWN)
                self._do_shutdown()
            elif state is SHUTDOWN:
                self._do_shutdown()
        except Exception:
            self._transport.close()
            raise
        return None

    def pause_writing(self) -> None:
        """The transport underneath is over its high-water mark."""
        assert not self._ssl_writing_paused
        self._ssl_writing_paused = True

    def resume_writing(self) -> None:
        assert self._ssl_writing_paused
        self._ssl_writing_paused = False
        self._process_outgoing()

    # -- handshake ---------------------------------------------------------------------

    def _start_handshake(self) -> None:
        if self._loop.get_debug():
            logger.debug("%r starts SSL handshake", self)
            self._handshake_start_time = self._loop.time()
        else:
            self._handshake_start_time = None
        self._set_state(DO_HANDSHAKE)
        self._handshake_timeout_handle = self._loop.call_later(
            self._ssl_handshake_timeout, self._check_handshake_timeout
        )
        self._do_handshake()

    def _check_handshake_timeout(self) -> None:
        if self._state is DO_HANDSHAKE:
            msg = (
                f"SSL handshake is taking longer than "
                f"{self._ssl_handshake_timeout} seconds: aborting the connection"
            )
            self._fatal_error(ConnectionAbortedError(msg))

    def _do_handshake(self) -> None:
        try:
            self._sslobj.do_handshake()
        except _AGAIN:
            self._process_outgoing()
        except ssl.SSLError as exc:
            self._on_handshake_complete(exc)
        else:
            self._on_handshake_complete(None)

    def _on_handshake_complete(self, handshake_exc: Any) -> None:
        if self._handshake_timeout_handle is not None:
            self._handshake_timeout_handle.cancel()
            self._handshake_timeout_handle = None
        sslobj = self._sslobj
        try:
            if handshake_exc is not None:
                raise handshake_exc
            self._set_state(WRAPPED)
            peercert = sslobj.getpeercert()
        except Exception as exc:
            self._set_state(UNWRAPPED)
            if isinstance(exc, ssl.CertificateError):
                msg = "SSL handshake failed on verifying the certificate"
            else:
                msg = "SSL handshake failed"
            self._fatal_error(exc, msg)
            self._wakeup_waiter(exc)
            return
        if self._loop.get_debug() and self._handshake_start_time is not None:
            dt = self._loop.time() - self._handshake_start_time
            logger.debug("%r: SSL handshake took %.1f ms", self, dt * 1e3)
        self._extra.update(
            peercert=peercert,
            cipher=sslobj.cipher(),
            compression=sslobj.compression(),
            ssl_object=sslobj,
        )
        if self._app_state is AppState.INIT:
            self._app_state = AppState.CON_MADE
            self._app_protocol.connection_made(self._get_app_transport())
        self._wakeup_waiter()
        self._do_read()

    # -- shutdown --------------------------------------------------------------------------

    def _start_shutdown(self) -> None:
        state = self._state
        if state is FLUSHING or state is SHUTDOWN or state is UNWRAPPED:
            return
        if self._app_transport is not None:
            self._app_transport._closed = True
        if state is DO_HANDSHAKE:
            self._abort(None)  # as asyncio: closing during the handshake aborts
            return
        self._set_state(FLUSHING)
        self._shutdown_timeout_handle = self._loop.call_later(
            self._ssl_shutdown_timeout, self._check_shutdown_timeout
        )
        self._do_flush()

    def _check_shutdown_timeout(self) -> None:
        if self._state is FLUSHING or self._state is SHUTDOWN:
            _force_close(self._transport, TimeoutError("SSL shutdown timed out"))

    def _do_flush(self) -> None:
        self._do_read()
        self._set_state(SHUTDOWN)
        self._do_shutdown()

    def _do_shutdown(self) -> None:
        try:
            if not self._eof_received:
                self._sslobj.unwrap()
        except _AGAIN:
            self._process_outgoing()
        except ssl.SSLError as exc:
            self._on_shutdown_complete(exc)
        else:
            self._process_outgoing()
            self._call_eof_received()
            self._on_shutdown_complete(None)

    def _on_shutdown_complete(self, shutdown_exc: BaseException | None) -> None:
        if self._shutdown_timeout_handle is not None:
            self._shutdown_timeout_handle.cancel()
            self._shutdown_timeout_handle = None
        if shutdown_exc:
            self._fatal_error(shutdown_exc)
            return
        if self._outgoing.pending:
            # Held back by the transport's pause_writing (close_notify among
            # it). asyncio writes it from resume_writing() while the closing
            # transport drains; hand it over now, so that it goes out first
            # whatever the transport underneath does with writes after close().
            self._transport.write(self._outgoing.read())
        self._loop.call_soon(self._transport.close)

    def _abort(self, exc: BaseException | None) -> None:
        self._set_state(UNWRAPPED)
        if self._transport is not None:
            _force_close(self._transport, exc)

    # -- outgoing: user data -> records -> transport underneath ------------------------

    def _write_appdata(self, list_of_data: Iterable[Any]) -> None:
        state = self._state
        if state is not WRAPPED and state is not DO_HANDSHAKE:
            if self._conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("SSL connection is closed")
            self._conn_lost += 1
            return
        backlog = self._write_backlog
        for data in list_of_data:
            if state is DO_HANDSHAKE and isinstance(data, (bytearray, memoryview)):
                data = bytes(data)  # kept until the handshake is done: copy
            backlog.append(data)
            self._write_buffer_size += len(data)
        try:
            if state is WRAPPED:
                self._do_write()
        except Exception as ex:
            self._fatal_error(ex, "Fatal error on SSL protocol")

    def _write_one(self, data: bytes | bytearray | memoryview) -> None:
        """write(): ``_write_appdata((data,))`` without the backlog when it is empty."""
        if self._state is not WRAPPED or self._write_backlog:
            self._write_appdata((data,))
            return
        try:
            try:
                count = self._sslobj.write(data)
            except _AGAIN:
                count = 0
            if count < len(data):
                # Renegotiation in progress: keep the rest, as _do_write would.
                rest = data[count:]
                if not isinstance(rest, bytes):
                    rest = bytes(rest)
                self._write_backlog.append(rest)
                self._write_buffer_size += len(rest)
            self._process_outgoing()
        except Exception as ex:
            self._fatal_error(ex, "Fatal error on SSL protocol")

    def _do_write(self) -> None:
        backlog = self._write_backlog
        try:
            while backlog:
                data = backlog[0]
                count = self._sslobj.write(data)
                data_len = len(data)
                if count < data_len:
                    backlog[0] = data[count:]
                    self._write_buffer_size -= count
                else:
                    backlog.popleft()
                    self._write_buffer_size -= data_len
        except _AGAIN:
            # Renegotiation in progress: what stays may be the caller's buffer.
            for i, data in enumerate(backlog):
                if isinstance(data, (bytearray, memoryview)):
                    backlog[i] = bytes(data)
        self._process_outgoing()

    def _process_outgoing(self) -> None:
        if not self._ssl_writing_paused:
            data = self._outgoing.read()
            if data:
                self._transport.write(data)
        self._control_app_writing()

    # -- incoming: transport underneath -> records -> user data ------------------------

    def _do_read(self) -> None:
        state = self._state
        if state is not WRAPPED and state is not FLUSHING:
            return
        try:
            if not self._app_reading_paused:
                if self._app_protocol_is_buffer:
                    self._read_buffered()
                else:
                    self._read_copied()
                if self._write_backlog:
                    self._do_write()
                else:
                    self._process_outgoing()
            self._control_ssl_reading()
        except Exception as ex:
            self._fatal_error(ex, "Fatal error on SSL protocol")

    def _read_buffered(self) -> None:
        offset = 0
        count = 1
        sslobj = self._sslobj
        read: Any = sslobj.read
        incoming = self._incoming
        buf: Any = self._app_protocol_get_buffer(incoming.pending)
        wants = len(buf)
        try:
            count = read(wants, buf)
            if count > 0:
                offset = count
                view = memoryview(buf)
                while offset < wants:
                    if not incoming.pending and not sslobj.pending():
                        break  # the next read could only raise SSLWantReadError
                    count = read(wants - offset, view[offset:])
                    if count > 0:
                        offset += count
                    else:
                        break
                else:
                    # The buffer is full: let the protocol consume, read on later.
                    self._loop.call_soon(self._do_read)
        except _AGAIN:
            pass
        if offset > 0:
            self._app_protocol_buffer_updated(offset)
        if not count:  # close_notify
            self._call_eof_received()
            self._start_shutdown()

    def _read_copied(self) -> None:
        # Everything decryptable now goes to one data_received() call, as in
        # asyncio. SSL_read returns at most one record (16 KiB of plaintext)
        # per call, so reading TLS_RECORD_BYTES at a time loses nothing and
        # each bytes object stays under glibc's mmap threshold (asyncio asks
        # for 256 KiB per read: an mmap/munmap pair each time).
        sslobj = self._sslobj
        read: Any = sslobj.read
        incoming = self._incoming
        first: bytes | None = None
        rest: list[bytes] | None = None
        eof = False
        try:
            while True:
                chunk = read(TLS_RECORD_BYTES)
                if not chunk:
                    eof = True
                    break
                if first is None:
                    first = chunk
                elif rest is None:
                    rest = [first, chunk]
                else:
                    rest.append(chunk)
                if not incoming.pending and not sslobj.pending():
                    # Nothing left to decrypt: skip the read that could only
                    # raise SSLWantReadError (an exception per message).
                    break
        except _AGAIN:
            pass
        if rest is not None:
            self._app_protocol.data_received(b"".join(rest))
        elif first is not None:
            self._app_protocol.data_received(first)
        if eof:  # close_notify
            self._call_eof_received()
            self._start_shutdown()

    def _call_eof_received(self) -> None:
        try:
            if self._app_state is AppState.CON_MADE:
                self._app_state = AppState.EOF
                keep_open = self._app_protocol.eof_received()
                if keep_open:
                    logger.warning(
                        "returning true from eof_received() has no effect when using ssl"
                    )
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as ex:
            self._fatal_error(ex, "Error calling eof_received()")

    # -- flow control ----------------------------------------------------------------------

    def _control_app_writing(self) -> None:
        size = self._outgoing.pending + self._write_buffer_size
        if size >= self._outgoing_high_water and not self._app_writing_paused:
            self._app_writing_paused = True
            self._call_app_flow_control("pause_writing")
        elif size <= self._outgoing_low_water and self._app_writing_paused:
            self._app_writing_paused = False
            self._call_app_flow_control("resume_writing")

    def _call_app_flow_control(self, method: str) -> None:
        try:
            getattr(self._app_protocol, method)()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler(
                {
                    "message": f"protocol.{method}() failed",
                    "exception": exc,
                    "transport": self._app_transport,
                    "protocol": self,
                }
            )

    def _get_write_buffer_size(self) -> int:
        return self._outgoing.pending + self._write_buffer_size  # type: ignore[no-any-return]

    def _set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._outgoing_high_water, self._outgoing_low_water = _flow_limits(
            high, low, TLS_WRITE_HIGH_WATER_BYTES // 1024
        )

    def _pause_reading(self) -> None:
        self._app_reading_paused = True

    def _resume_reading(self) -> None:
        if self._app_reading_paused:
            self._app_reading_paused = False
            self._loop.call_soon(self._on_reading_resumed)

    def _on_reading_resumed(self) -> None:
        state = self._state
        if state is WRAPPED:
            self._do_read()
        elif state is FLUSHING:
            self._do_flush()
        elif state is SHUTDOWN:
            self._do_shutdown()

    def _control_ssl_reading(self) -> None:
        size = self._incoming.pending
        if size >= self._incoming_high_water and not self._ssl_reading_paused:
            self._ssl_reading_paused = True
            self._transport.pause_reading()
        elif size <= self._incoming_low_water and self._ssl_reading_paused:
            self._ssl_reading_paused = False
            self._transport.resume_reading()

    def _set_read_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._incoming_high_water, self._incoming_low_water = _flow_limits(
            high, low, TLS_READ_HIGH_WATER_BYTES // 1024
        )

    def _get_read_buffer_size(self) -> int:
        return self._incoming.pending  # type: ignore[no-any-return]

    # -- errors ------------------------------------------------------------------------------

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on transport") -> None:
        if self._transport:
            _force_close(self._transport, exc)
        if isinstance(exc, OSError):
            if self._loop.get_debug():
                logger.debug("%r: %s", self, message, exc_info=True)
        elif not isinstance(exc, asyncio.CancelledError):
            self._loop.call_exception_handler(
                {
                    "message": message,
                    "exception": exc,
                    "transport": self._transport,
                    "protocol": self,
                }
            )
