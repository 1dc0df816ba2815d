"""Unix signal handlers for the loop (add_signal_handler/remove_signal_handler).

Mechanism, as in asyncio: Python's C-level signal handler writes the signal
number into the fd given to ``signal.set_wakeup_fd``; the loop watches the
other end of that socket pair and runs the registered handle on the loop
thread. Each signal gets a no-op Python handler so the C handler fires, and
``siginterrupt(sig, False)`` (SA_RESTART) limits EINTR. Only the main thread
may set the wakeup fd, which is why that call comes first: a loop in another
thread gets asyncio's RuntimeError before any state changes.

The socket pair is created on the first add_signal_handler, not per loop.

Departure from asyncio: while the loop runs in the main thread it also claims
the wakeup fd when no handler is registered, and gives the previous one back
when the run ends (uvloop does the same). Python-level handlers such as
asyncio.Runner's SIGINT handler run only between bytecodes of the main
thread; without a wakeup fd a signal that lands just before the poll, or is
delivered to another thread, waits for the next unrelated event, forever on
an idle loop. With it the poll wakes and the handler runs at once.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
import sys
import threading
import warnings
from collections.abc import Callable
from typing import Any

from ._handles import Handle
from ._shutdown import ShutdownPart

logger = logging.getLogger("asyncio")


def _sighandler_noop(signum: int, frame: Any) -> None:
    """Dummy handler: the wakeup fd does the work."""


class SignalsPart(ShutdownPart):
    """add_signal_handler/remove_signal_handler, and the signal wakeup fd the
    loop holds while it runs in the main thread."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._signal_handlers: dict[int, Handle] = {}
        self._ssock: socket.socket | None = None
        self._csock: socket.socket | None = None
        # The wakeup fd that was in place before run_forever claimed it, or
        # None when this run did not claim it.
        self._saved_wakeup_fd: int | None = None

    def _signal_socket(self) -> socket.socket:
        if self._csock is None:
            self._ssock, self._csock = socket.socketpair()
            self._ssock.setblocking(False)
            self._csock.setblocking(False)
            self._add_reader(self._ssock.fileno(), self._read_signals)
        return self._csock

    def _run_forever_setup(self) -> None:
        super()._run_forever_setup()
        self._claim_signal_wakeup()

    def _run_forever_cleanup(self) -> None:
        self._release_signal_wakeup()
        super()._run_forever_cleanup()

    def close(self) -> None:
        super().close()
        self._close_signals()

    def _claim_signal_wakeup(self) -> None:
        if self._signal_handlers or threading.current_thread() is not threading.main_thread():
            return  # already ours, or not allowed
        try:
            old = signal.set_wakeup_fd(self._signal_socket().fileno())
        except (ValueError, OSError) as exc:  # e.g. a subinterpreter
            logger.debug("cannot claim the signal wakeup fd: %s", exc)
            return
        self._saved_wakeup_fd = old

    def _drop_wakeup_fd_if_unused(self) -> None:
        """After a handler is removed: with none left, unset the wakeup fd as
        asyncio does, unless a run in the main thread holds it; that run then
        unsets it (-1) when it ends."""
        if self._signal_handlers or self._saved_wakeup_fd is not None:
            return
        if self._thread_id is not None and self._thread_id == threading.main_thread().ident:
            self._saved_wakeup_fd = -1
            return
        try:
            signal.set_wakeup_fd(-1)
        except (ValueError, OSError) as exc:
            logger.info("set_wakeup_fd(-1) failed: %s", exc)

    def _release_signal_wakeup(self) -> None:
        old = self._saved_wakeup_fd
        if old is None:
            return
        self._saved_wakeup_fd = None
        if self._signal_handlers:
            return  # registered handlers keep it, as in asyncio
        try:
            signal.set_wakeup_fd(old)
        except (ValueError, OSError) as exc:
            logger.info("set_wakeup_fd(%d) failed: %s", old, exc)

    def _read_signals(self) -> None:
        assert self._ssock is not None
        while True:
            try:
                data = self._ssock.recv(4096)
            except InterruptedError:
                continue
            except BlockingIOError:
                return
            if not data:
                return
            for signum in data:
                if signum:
                    self._handle_signal(signum)

    def _check_signal(self, sig: Any) -> None:
        if not isinstance(sig, int):
            raise TypeError(f"sig must be an int, not {sig!r}")
        if sig not in signal.valid_signals():
            raise ValueError(f"invalid signal number {sig}")

    def add_signal_handler(  # type: ignore[override]
        self, sig: int, callback: Callable[..., object], *args: Any
    ) -> None:
        if asyncio.iscoroutine(callback) or asyncio.iscoroutinefunction(callback):
            raise TypeError("coroutines cannot be used with add_signal_handler()")
        self._check_signal(sig)
        self._check_closed()
        try:
            # Raises ValueError outside the main thread: check that first.
            signal.set_wakeup_fd(self._signal_socket().fileno())
        except (ValueError, OSError) as exc:
            raise RuntimeError(str(exc))
        handle = Handle(callback, args, self, None)  # type: ignore[arg-type]
        self._signal_handlers[sig] = handle
        try:
            signal.signal(sig, _sighandler_noop)
            signal.siginterrupt(sig, False)
        except OSError as exc:
            del self._signal_handlers[sig]
            self._drop_wakeup_fd_if_unused()
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig} cannot be caught")
            raise

    def _handle_signal(self, sig: int) -> None:
        handle = self._signal_handlers.get(sig)
        if handle is None:
            return  # removed meanwhile
        if handle._cancelled:
            self.remove_signal_handler(sig)
        else:
            self._add_callback_signalsafe(handle)

    def remove_signal_handler(self, sig: int) -> bool:
        self._check_signal(sig)
        try:
            del self._signal_handlers[sig]
        except KeyError:
            return False
        handler: Any = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
        try:
            signal.signal(sig, handler)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig} cannot be caught")
            raise
        self._drop_wakeup_fd_if_unused()
        return True

    def _close_signals(self) -> None:
        if not sys.is_finalizing():
            for sig in list(self._signal_handlers):
                self.remove_signal_handler(sig)
        elif self._signal_handlers:
            warnings.warn(
                f"Closing the loop {self!r} on interpreter shutdown "
                f"stage, skipping signal handlers removal",
                ResourceWarning,
                source=self,
            )
            self._signal_handlers.clear()
        if self._csock is not None:
            assert self._ssock is not None
            self._ssock.close()
            self._csock.close()
            self._ssock = self._csock = None
