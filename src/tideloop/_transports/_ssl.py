"""TLS over any stream transport: the transports, states and limits.

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


Modules: this one (constants, states, ``SSLTransport``), ``_sslproto``
(``SSLProtocol``, the state machine), and ``tideloop._tls`` (the loop's
``start_tls``, ``_make_ssl_transport`` and sendfile over TLS).

Must not import the loop module.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import warnings
from asyncio.constants import _SendfileMode
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

from ._stream import StreamTransport

try:
    import ssl
except ImportError:  # pragma: no cover - Python built without OpenSSL
    ssl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from ._sslproto import SSLProtocol

logger = logging.getLogger("asyncio")

SSL_HANDSHAKE_TIMEOUT_S: Final = 60.0
SSL_SHUTDOWN_TIMEOUT_S: Final = 30.0
# Incoming: pause the transport underneath once this much ciphertext waits.
TLS_READ_HIGH_WATER_BYTES: Final = 256 * 1024
# Outgoing: pause the user's protocol once this much waits to be encrypted/sent.
TLS_WRITE_HIGH_WATER_BYTES: Final = 512 * 1024
# The most plaintext one TLS record carries (RFC 8446 section 5.1).
TLS_RECORD_BYTES: Final = 16 * 1024

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
    # loop.start_tls() and loop.sendfile() check these, as asyncio's do
    # (sendfile: only the read-and-write fallback).
    _start_tls_compatible = True
    _sendfile_compatible = _SendfileMode.FALLBACK

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
