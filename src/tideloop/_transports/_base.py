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
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from .._io import LoopIO

logger = logging.getLogger("asyncio")

WRITE_HIGH_WATER_BYTES: Final = 64 * 1024
# Writes to a lost connection are dropped; from this many on, each is logged
# ("socket.send() raised exception."), as asyncio does.
LOG_THRESHOLD_FOR_CONNLOST_WRITES: Final = 5


class SocketTransportBase:
    """``__repr__`` and the unclosed-transport warning of the transports over
    one socket (stream and datagram), in asyncio's format. Whether the
    socket is watched is asked of the loop's ``LoopIO`` (a lookup: nothing
    is kept that could make a reference cycle)."""

    _sock: Any
    _sock_fd: int
    _closing: bool
    _loop: Any
    _io: LoopIO
    _buffer_size: int

    def __repr__(self) -> str:
        info = [self.__class__.__name__]
        if self._sock is None:
            info.append("closed")
        elif self._closing:
            info.append("closing")
        info.append(f"fd={self._sock_fd}")
        if self._loop is not None and not self._loop.is_closed():
            reading = self._io.is_reading(self._sock_fd)
            info.append("read=polling" if reading else "read=idle")
            writing = self._io.is_writing(self._sock_fd)
            state = "polling" if writing else "idle"
            info.append(f"write=<{state}, bufsize={self._buffer_size}>")
        return "<{}>".format(" ".join(info))

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if self._sock is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._sock.close()


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
        if self._closing or self._paused:
            return
        self._paused = True
        self._stop_reading()
        if self._loop.get_debug():
            logger.debug("%r pauses reading", self)

    def resume_reading(self) -> None:
        if self._closing or not self._paused:
            return
        self._paused = False
        self._start_reading()
        if self._loop.get_debug():
            logger.debug("%r resumes reading", self)

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
        if high is None:
            high = WRITE_HIGH_WATER_BYTES if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high_water = high
        self._low_water = low
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
        try:
            getattr(self._protocol, method)()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler(
                {
                    "message": f"protocol.{method}() failed",
                    "exception": exc,
                    "transport": self,
                    "protocol": self._protocol,
                }
            )


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
