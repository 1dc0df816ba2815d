"""What the transports share: write flow control (asyncio's
_FlowControlMixin), pause/resume of reading, the socket transports' repr and
unclosed-transport warning, and the reporting rule for fatal errors.

Write flow control:

A transport that buffers writes calls ``_maybe_pause_protocol()`` after its
buffer grows and ``_maybe_resume_protocol()`` after it shrinks; the protocol's
``pause_writing()`` runs once when the buffer goes above the high watermark,
``resume_writing()`` once when it is back at or below the low one. Errors in
those protocol methods go to the loop's exception handler with asyncio's
messages. Each transport says what its buffer size is
(``get_write_buffer_size``) and sets ``_protocol``, ``_loop`` and
``_protocol_paused``; ``_init_flow_control()`` sets the default limits.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any, Final

logger = logging.getLogger("asyncio")

WRITE_HIGH_WATER_BYTES: Final = 64 * 1024
# Writes to a lost connection are dropped; from this many on, each is logged
# ("socket.send() raised exception."), as asyncio does.
LOG_THRESHOLD_FOR_CONNLOST_WRITES: Final = 5


class InstanceDict:
    """An empty Python base for the native transport classes of the compiled
    build: a native class with a Python base has an instance ``__dict__``
    (tests and libraries patch transport methods on the instance, DESIGN.md
    5a) and supports weak references. In the pure build it is just a base."""


def socket_transport_repr(transport: Any) -> str:
    """The repr of a transport over one socket (stream and datagram), in
    asyncio's format. Whether the socket is watched is asked of the loop's
    ``LoopIO`` (a lookup: nothing is kept that could make a reference cycle)."""
    t = transport
    info = [t.__class__.__name__]
    if t._sock is None:
        info.append("closed")
    elif t._closing:
        info.append("closing")
    info.append(f"fd={t._sock_fd}")
    if t._loop is not None and not t._loop.is_closed():
        reading = t._io.is_reading(t._sock_fd)
        info.append("read=polling" if reading else "read=idle")
        writing = t._io.is_writing(t._sock_fd)
        state = "polling" if writing else "idle"
        info.append(f"write=<{state}, bufsize={t._buffer_size}>")
    return "<{}>".format(" ".join(info))


def warn_unclosed(transport: Any, _warn: Any = warnings.warn) -> None:
    """``__del__`` of a transport over one socket still open."""
    if transport._sock is not None:
        _warn(f"unclosed transport {transport!r}", ResourceWarning, source=transport)
        transport._sock.close()


def pause_reading(transport: Any) -> None:
    t = transport
    if t._closing or t._paused:
        return
    t._paused = True
    t._stop_reading()
    if t._loop.get_debug():
        logger.debug("%r pauses reading", t)


def resume_reading(transport: Any) -> None:
    t = transport
    if t._closing or not t._paused:
        return
    t._paused = False
    t._start_reading()
    if t._loop.get_debug():
        logger.debug("%r resumes reading", t)


def write_buffer_limits(high: int | None, low: int | None) -> tuple[int, int]:
    """asyncio's defaults and check for ``set_write_buffer_limits``."""
    if high is None:
        high = WRITE_HIGH_WATER_BYTES if low is None else 4 * low
    if low is None:
        low = high // 4
    if not high >= low >= 0:
        raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
    return high, low


def call_flow_control(transport: Any, method: str) -> None:
    """The protocol's ``pause_writing``/``resume_writing``; its error goes to
    the exception handler with asyncio's message."""
    try:
        getattr(transport._protocol, method)()
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        transport._loop.call_exception_handler(
            {
                "message": f"protocol.{method}() failed",
                "exception": exc,
                "transport": transport,
                "protocol": transport._protocol,
            }
        )


class ReadingControl:
    """``is_reading``/``pause_reading``/``resume_reading`` as in asyncio 3.11+
    (idempotent, no-ops once closing). The transport implements
    ``_start_reading()`` (watch its fd, unless closing or paused) and
    ``_stop_reading()``. Put it before asyncio's transport class in the bases:
    those methods raise NotImplementedError there."""

    _loop: Any
    _closing: bool
    _paused: bool

    def is_reading(self) -> bool:
        return not self._closing and not self._paused

    def pause_reading(self) -> None:
        pause_reading(self)

    def resume_reading(self) -> None:
        resume_reading(self)

    def _start_reading(self) -> None:
        raise NotImplementedError

    def _stop_reading(self) -> None:
        raise NotImplementedError


class WriteFlowControl:
    _protocol: Any
    _loop: Any
    _protocol_paused: bool
    _high_water: int
    _low_water: int

    def _init_flow_control(self) -> None:
        self._protocol_paused = False
        self._high_water = WRITE_HIGH_WATER_BYTES
        self._low_water = WRITE_HIGH_WATER_BYTES // 4

    def get_write_buffer_size(self) -> int:
        raise NotImplementedError

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self._low_water, self._high_water)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._high_water, self._low_water = write_buffer_limits(high, low)
        self._maybe_pause_protocol()

    def _maybe_pause_protocol(self) -> None:
        if self._protocol_paused or self.get_write_buffer_size() <= self._high_water:
            return
        self._protocol_paused = True
        self._paused_changed()
        self._call_flow_control("pause_writing")

    def _maybe_resume_protocol(self) -> None:
        if self._protocol_paused and self.get_write_buffer_size() <= self._low_water:
            self._protocol_paused = False
            self._paused_changed()
            self._call_flow_control("resume_writing")

    def _paused_changed(self) -> None:
        """``_protocol_paused`` changed; the protocol is told next."""

    def _call_flow_control(self, method: str) -> None:
        call_flow_control(self, method)


def report_fatal_error(transport: Any, exc: BaseException, message: str, *, quiet: bool) -> None:
    """asyncio's rule for a transport's fatal error: the expected ones (OS
    errors such as a reset peer; ``quiet``) are logged in debug mode only,
    anything else goes to the loop's exception handler with the transport
    and protocol. The caller then closes the transport."""
    loop = transport._loop
    if quiet:
        if loop.get_debug():
            logger.debug("%r: %s", transport, message, exc_info=True)
        return
    loop.call_exception_handler(
        {
            "message": message,
            "exception": exc,
            "transport": transport,
            "protocol": transport._protocol,
        }
    )
