"""TLS over any stream transport, and ``loop.start_tls``.

Layering (after Twisted's TLS-as-a-protocol; asyncio 3.11+ does the same):

    user protocol  <->  SSLTransport  --  SSLProtocol  <->  stream transport
    (Protocol or        (the asyncio      (the stream        (TCP, Unix, or
    BufferedProtocol)   Transport the     transport's        another TLS
                        user sees)        protocol)          transport)

``SSLProtocol`` pushes the ciphertext it receives into an incoming
``ssl.MemoryBIO``, runs an ``ssl.SSLObject`` over it, hands plaintext to the
user's protocol, and writes what the ``SSLObject`` leaves in the outgoing BIO
to the transport underneath. It never touches a socket, so it works above any
transport with asyncio's stream API (``start_tls`` over TLS included).

Behaviour is asyncio's ``sslproto`` (3.11+, the uvloop design): the same
state machine, callbacks in the same order, the same errors, messages,
exception-handler contexts, defaults (60 s handshake, 30 s shutdown, 256 KiB
incoming and 512 KiB outgoing watermarks) and private names that libraries
read (``transport._ssl_protocol``, ``_ssl_protocol._sslcontext``,
``_ssl_protocol._app_transport``). asyncio's own decisions that look odd are
kept on purpose, each marked "as asyncio": a peer that closes without
close_notify is a clean EOF; ``close()`` during the handshake aborts; a failed
handshake closes without sending OpenSSL's alert. Renegotiation is left to
OpenSSL inside ``SSLObject.read``, as in asyncio: with OpenSSL 3 a server
refuses client-initiated renegotiation (the peer then fails the connection),
and a client follows a server's HelloRequest.

The TLS state machine (``TLSState``), with its transition check::

    UNWRAPPED -> DO_HANDSHAKE -> WRAPPED -> FLUSHING -> SHUTDOWN
        ^______________ any state (connection lost, abort) ___|

The user protocol's own states (``AppState``): INIT -> CON_MADE [-> EOF] ->
CON_LOST; connection_made only after a successful handshake, connection_lost
only if connection_made ran.

Differences from asyncio, all invisible to protocols (DESIGN.md §4 for the
first two):
- the buffer the transport underneath reads ciphertext into is one per loop
  (``TLSMixin._tls_read_view``), not 256 KiB per connection: ``buffer_updated``
  copies it into the incoming BIO at once, so this needs transports to call
  ``get_buffer`` and ``buffer_updated`` back to back, as readiness-based
  transports do;
- plaintext for a ``Protocol`` is read 16 KiB (one record) at a time, so each
  ``bytes`` stays under glibc's mmap threshold (asyncio's ``read(256 KiB)``
  maps and unmaps memory per read), and the read that could only raise
  ``SSLWantReadError`` is skipped when both BIO and record are drained;
- ``write()`` encrypts directly when nothing is queued (asyncio goes through
  its backlog deque every time);
- data written before the handshake completes is copied if it is mutable
  (asyncio keeps a reference, so a reused ``bytearray`` changes what is sent);
- a ``BufferedProtocol`` whose ``get_buffer`` returns a ``bytearray`` gets its
  data (asyncio slices the bytearray, i.e. copies it, and loses the bytes
  read into the copy);
- forced closes send the underlying transport's gathered writes first, since
  asyncio would have handed them to the kernel already; and what the
  transport's ``pause_writing`` held back in the outgoing BIO (close_notify
  among it) is handed over before the transport is closed (asyncio writes it
  from ``resume_writing`` while the closing transport drains).

Must not import the loop module.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import functools
import logging
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

from ._transports._stream import StreamTransport

try:
    import ssl
except ImportError:  # pragma: no cover - Python built without OpenSSL
    ssl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from ._net import NetMixin

    _Base = NetMixin
else:
    _Base = object

logger = logging.getLogger("asyncio")

SSL_HANDSHAKE_TIMEOUT_S: Final = 60.0
SSL_SHUTDOWN_TIMEOUT_S: Final = 30.0
# Incoming: pause the transport underneath once this much ciphertext waits.
TLS_READ_HIGH_WATER_BYTES: Final = 256 * 1024
# Outgoing: pause the user's protocol once this much waits to be encrypted/sent.
TLS_WRITE_HIGH_WATER_BYTES: Final = 512 * 1024
# Size of the buffer given to the transport underneath (asyncio's max_size).
TLS_READ_CHUNK_BYTES: Final = 256 * 1024
# The most plaintext one TLS record carries (RFC 8446 section 5.1).
TLS_RECORD_BYTES: Final = 16 * 1024
LOG_THRESHOLD_FOR_CONNLOST_WRITES: Final = 5

if ssl is not None:
    _AGAIN: Final = (ssl.SSLWantReadError, ssl.SSLSyscallError)


class TLSState(enum.Enum):
    UNWRAPPED = "UNWRAPPED"
    DO_HANDSHAKE = "DO_HANDSHAKE"
    WRAPPED = "WRAPPED"
    FLUSHING = "FLUSHING"
    SHUTDOWN = "SHUTDOWN"


UNWRAPPED: Final = TLSState.UNWRAPPED
DO_HANDSHAKE: Final = TLSState.DO_HANDSHAKE
WRAPPED: Final = TLSState.WRAPPED
FLUSHING: Final = TLSState.FLUSHING
SHUTDOWN: Final = TLSState.SHUTDOWN

# The one legal forward move from each state; UNWRAPPED is reachable from any.
_NEXT_STATE: Final[dict[TLSState, TLSState | None]] = {
    UNWRAPPED: DO_HANDSHAKE,
    DO_HANDSHAKE: WRAPPED,
    WRAPPED: FLUSHING,
    FLUSHING: SHUTDOWN,
    SHUTDOWN: None,
}


class AppState(enum.Enum):
    INIT = "INIT"
    CON_MADE = "CON_MADE"
    EOF = "EOF"
    CON_LOST = "CON_LOST"


def _check_timeout(name: str, value: float | None, default: float) -> float:
    if value is None:
        return default
    if value <= 0:
        raise ValueError(f"{name} should be a positive number, got {value}")
    return value


def _default_client_context(server_side: bool, server_hostname: str | None) -> ssl.SSLContext:
    """``ssl=True`` on a client: the default, verifying context."""
    if server_side:
        raise ValueError("Server side SSL needs a valid SSLContext")
    sslcontext = ssl.create_default_context()
    if not server_hostname:
        sslcontext.check_hostname = False
    return sslcontext


def _flow_limits(high: int | None, low: int | None, kib: int) -> tuple[int, int]:
    if high is None:
        high = kib * 1024 if low is None else 4 * low
    if low is None:
        low = high // 4
    if not high >= low >= 0:
        raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
    return high, low


def _force_close(transport: Any, exc: BaseException | None) -> None:
    """Close the transport underneath at once, with ``exc`` for its protocol."""
    if isinstance(transport, StreamTransport):
        # Sends what was gathered first, as asyncio's write() already had.
        transport._force_close(exc)
        return
    force_close = getattr(transport, "_force_close", None)
    if force_close is not None:
        force_close(exc)
    else:
        transport.abort()


class SSLTransport(asyncio.Transport):
    """What the user's protocol sees: asyncio's ``_SSLProtocolTransport``."""

    # No __slots__ (DESIGN.md 5a): tests patch transport instances.
    _start_tls_compatible = True

    def __init__(self, loop: Any, ssl_protocol: SSLProtocol) -> None:
        self._loop = loop
        self._ssl_protocol: Any = ssl_protocol
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<{self.__class__.__name__} {state}>"

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if not self._closed:
            self._closed = True
            _warn(f"unclosed transport <{self.__class__.__name__} object>", ResourceWarning)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._ssl_protocol._get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._ssl_protocol._set_app_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._ssl_protocol._app_protocol  # type: ignore[no-any-return]

    def is_closing(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Flush, send close_notify, then close; connection_lost(None) follows."""
        if not self._closed:
            self._closed = True
            self._ssl_protocol._start_shutdown()
        else:
            self._ssl_protocol = None  # as asyncio: a second close() lets go

    def abort(self) -> None:
        self._force_close(None)

    def _force_close(self, exc: BaseException | None) -> None:
        self._closed = True
        if self._ssl_protocol is not None:
            self._ssl_protocol._abort(exc)

    # -- reading ------------------------------------------------------------------

    def is_reading(self) -> bool:
        return not self._ssl_protocol._app_reading_paused

    def pause_reading(self) -> None:
        self._ssl_protocol._pause_reading()

    def resume_reading(self) -> None:
        self._ssl_protocol._resume_reading()

    def set_read_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._ssl_protocol._set_read_buffer_limits(high, low)
        self._ssl_protocol._control_ssl_reading()

    def get_read_buffer_limits(self) -> tuple[int, int]:
        proto = self._ssl_protocol
        return (proto._incoming_low_water, proto._incoming_high_water)

    def get_read_buffer_size(self) -> int:
        return self._ssl_protocol._get_read_buffer_size()  # type: ignore[no-any-return]

    # -- writing ----------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:  # type: ignore[override]
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data: expecting a bytes-like instance, got {type(data).__name__}")
        if not data:
            return
        self._ssl_protocol._write_one(data)

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:  # type: ignore[override]
        self._ssl_protocol._write_appdata(list_of_data)

    def write_eof(self) -> None:
        raise NotImplementedError

    def can_write_eof(self) -> bool:
        return False

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._ssl_protocol._set_write_buffer_limits(high, low)
        self._ssl_protocol._control_app_writing()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        proto = self._ssl_protocol
        return (proto._outgoing_low_water, proto._outgoing_high_water)

    def get_write_buffer_size(self) -> int:
        return self._ssl_protocol._get_write_buffer_size()  # type: ignore[no-any-return]

    @property
    def _protocol_paused(self) -> bool:
        # loop.sendfile()'s fallback reads this, as on plain transports.
        return self._ssl_protocol._app_writing_paused  # type: ignore[no-any-return]

    def _test__append_write_backlog(self, data: bytes) -> None:
        # CPython's test_asyncio.test_ssl fills the backlog through this.
        self._ssl_protocol._write_backlog.append(data)
        self._ssl_protocol._write_buffer_size += len(data)


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

        # One buffer per loop (see the module docstring).
        get_view = getattr(loop, "_tls_read_view", None)
        self._buffer_view: memoryview = (
            get_view() if get_view is not None else memoryview(bytearray(TLS_READ_CHUNK_BYTES))
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


class TLSMixin(_Base):
    """``_make_ssl_transport``, ``start_tls`` and sendfile over TLS for ``EventLoop``."""

    if TYPE_CHECKING:
        _debug: bool

        def call_exception_handler(self, context: dict[str, Any]) -> None: ...
        def call_soon(self, callback: Any, *args: Any, context: Any = None) -> Any: ...

    _tls_view: memoryview | None = None

    def _tls_read_view(self) -> memoryview:
        """The loop's TLS read buffer (created with the first TLS connection)."""
        view = self._tls_view
        if view is None:
            view = self._tls_view = memoryview(bytearray(TLS_READ_CHUNK_BYTES))
        return view

    def _make_ssl_transport(  # type: ignore[override]
        self,
        rawsock: Any,
        protocol: asyncio.BaseProtocol,
        sslcontext: ssl.SSLContext | None,
        waiter: asyncio.Future[Any] | None = None,
        *,
        server_side: bool = False,
        server_hostname: str | None = None,
        extra: dict[str, Any] | None = None,
        server: Any = None,
        ssl_handshake_timeout: float | None = SSL_HANDSHAKE_TIMEOUT_S,
        ssl_shutdown_timeout: float | None = SSL_SHUTDOWN_TIMEOUT_S,
    ) -> SSLTransport:
        watch = waiter is None and server is not None and self._debug
        if watch:
            # asyncio's accept path awaits the handshake and, in debug mode,
            # reports a failed one; Server hands us no waiter, so watch here.
            waiter = self.create_future()
        ssl_protocol = SSLProtocol(
            self,
            protocol,
            sslcontext,
            waiter,
            server_side,
            server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )
        transport = ssl_protocol._get_app_transport()
        if watch:
            assert waiter is not None
            waiter.add_done_callback(
                functools.partial(self._on_server_handshake_done, protocol, transport)
            )
        StreamTransport(self, rawsock, ssl_protocol, None, extra, server)  # type: ignore[arg-type]
        return transport

    def _on_server_handshake_done(
        self, protocol: asyncio.BaseProtocol, transport: SSLTransport, waiter: asyncio.Future[Any]
    ) -> None:
        if waiter.cancelled() or waiter.exception() is None:
            return
        transport.close()
        self.call_exception_handler(
            {
                "message": "Error on transport creation for incoming connection",
                "exception": waiter.exception(),
                "protocol": protocol,
                "transport": transport,
            }
        )

    async def start_tls(  # type: ignore[override]
        self,
        transport: asyncio.BaseTransport,
        protocol: asyncio.BaseProtocol,
        sslcontext: ssl.SSLContext,
        *,
        server_side: bool = False,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> asyncio.Transport | None:
        """Upgrade ``transport`` to TLS; return the transport ``protocol`` uses now.

        As asyncio: None if the transport closed before the handshake began.
        """
        if ssl is None:  # pragma: no cover
            raise RuntimeError("Python ssl module is not available")
        if not isinstance(sslcontext, ssl.SSLContext):
            raise TypeError(
                f"sslcontext is expected to be an instance of ssl.SSLContext, got {sslcontext!r}"
            )
        if not getattr(transport, "_start_tls_compatible", False):
            raise TypeError(f"transport {transport!r} is not supported by start_tls()")
        waiter = self.create_future()
        ssl_protocol = SSLProtocol(
            self,
            protocol,
            sslcontext,
            waiter,
            server_side,
            server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
            call_connection_made=False,
        )
        # Pause first, so that no data reaches the TLS protocol before its
        # connection_made().
        transport.pause_reading()  # type: ignore[attr-defined]
        transport.set_protocol(ssl_protocol)
        conmade_cb = self.call_soon(ssl_protocol.connection_made, transport)
        resume_cb = self.call_soon(transport.resume_reading)  # type: ignore[attr-defined]
        try:
            await waiter
        except BaseException:
            transport.close()
            conmade_cb.cancel()
            resume_cb.cancel()
            raise
        return ssl_protocol._app_transport

    async def sendfile(  # type: ignore[override]
        self,
        transport: Any,
        file: Any,
        offset: int = 0,
        count: int | None = None,
        *,
        fallback: bool = True,
    ) -> int:
        if not isinstance(transport, SSLTransport):
            return await super().sendfile(transport, file, offset, count, fallback=fallback)
        # As asyncio: TLS transports only take the read-and-write fallback.
        if transport.is_closing():
            raise RuntimeError("Transport is closing")
        if not fallback:
            raise RuntimeError(
                f"fallback is disabled and native sendfile is not "
                f"supported for transport {transport!r}"
            )
        return await self._sendfile_fallback(transport, file, offset, count)  # type: ignore[arg-type]
