"""The backend contract and the parts every readiness backend shares.

A backend keeps, per file descriptor, at most one reader and one writer
handle. Registrations are persistent and level-triggered: a handle is appended
to the loop's ready queue on every poll that finds its fd ready, until it is
unwatched. The backend never runs a callback and holds no loop state: the
loop calls ``poll(timeout)`` (blocks; returns ``(fd, mask)`` events), then
``collect(events, append)`` on its own thread, which passes the handles to
run to ``append`` in event order. The loop queues them after the callbacks
already queued and before the timers that expire in the same iteration,
which is the order asyncio runs them in.

Readiness mapping (as ``selectors`` does it): an error or hang-up wakes both
the reader and the writer, so each sees the failure from its own syscall.

Stale and reused descriptors:
- watching an fd that is not open raises ``OSError(EBADF)`` from the OS call,
  as asyncio's selector does;
- the kernel drops a registration when the fd is closed; if the number is
  reused and watched again we may believe it is still registered. A modify
  that fails with ENOENT is retried as an add, and an add that fails with
  EEXIST as a modify;
- unwatching an fd that was already closed (EBADF, ENOENT) is not an error.

The waker: ``wakeup()`` is safe from any thread and from signal handlers. It
writes to an eventfd (or a pipe) only when no wake-up is already pending. The
loop clears the pending flag *after* draining the fd. A wake-up that finds the
flag still set was preceded by its caller's append to the ready queue, which
the loop, having not yet cleared the flag, has not yet snapshotted: so the
callback runs in this iteration and nothing is lost. (Clearing before the
read loses wake-ups: a write landing between the clear and the read is
consumed while the flag stays set, and every later wake-up is skipped.) Must not import the loop.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, ClassVar, Final

from .._handles import Handle
from .._native import mypyc_attr

EventList = list[tuple[int, int]]

# poll(2)/epoll(7) share these bit values; the other backends translate to them.
IN_BIT: Final = 0x001
OUT_BIT: Final = 0x004
NOT_OUT: Final = ~OUT_BIT
NOT_IN: Final = ~IN_BIT


class Waker:
    """A self-wakeup fd pair: eventfd where the OS has it, else a pipe."""

    __slots__ = ("pending", "read_fd", "write_fd")

    def __init__(self) -> None:
        self.pending = False
        if hasattr(os, "eventfd"):
            fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self.read_fd = self.write_fd = fd
        else:  # pragma: no cover - BSD/macOS
            r, w = os.pipe()
            os.set_blocking(r, False)
            os.set_blocking(w, False)
            self.read_fd, self.write_fd = r, w

    def wakeup(self) -> None:
        if self.pending:
            return
        self.pending = True
        fd = self.write_fd
        if fd < 0:
            return  # closed: a thread raced the loop's close()
        try:
            if self.read_fd == fd:
                os.eventfd_write(fd, 1)
            else:  # pragma: no cover - BSD/macOS
                os.write(fd, b"\0")
        except OSError:
            # Full pipe (a wake-up is pending anyway) or closed meanwhile.
            pass

    def drain(self) -> None:
        try:
            if self.read_fd == self.write_fd:
                os.eventfd_read(self.read_fd)
            else:  # pragma: no cover - BSD/macOS
                while os.read(self.read_fd, 4096):
                    pass
        except OSError:
            pass
        # Only now: clearing before the read could swallow a write made in
        # between and leave ``pending`` set with nothing left to wake us.
        self.pending = False

    def close(self) -> None:
        fds = {self.read_fd, self.write_fd}
        self.read_fd = self.write_fd = -1
        for fd in fds:
            if fd >= 0:
                os.close(fd)


# The poll, select and kqueue backends subclass it uncompiled.
@mypyc_attr(allow_interpreted_subclasses=True)
class Backend:
    """Base class of the readiness backends.

    Subclasses implement ``_register(fd, read, write, old_read, old_write)``
    (make the OS watch exactly the given directions), ``poll`` and
    ``_close_poller``.
    """

    name: ClassVar[str] = "base"

    def __init__(self) -> None:
        self._readers: dict[int, Handle] = {}
        self._writers: dict[int, Handle] = {}
        self._waker = Waker()
        self._closed = False
        self._events = 0

    # -- registrations ------------------------------------------------------

    def reader(self, fd: int) -> Handle | None:
        return self._readers.get(fd)

    def writer(self, fd: int) -> Handle | None:
        return self._writers.get(fd)

    def watch_read(self, fd: int, handle: Handle) -> Handle | None:
        """Watch fd for reading; returns the handle it replaces, if any.

        Replacing a handle re-issues the registration: the fd may have been
        closed and its number reused since, and the kernel forgot it.
        """
        old = self._readers.get(fd)
        writing = fd in self._writers
        self._register(fd, True, writing, old is not None, writing)
        self._readers[fd] = handle
        return old

    def watch_write(self, fd: int, handle: Handle) -> Handle | None:
        old = self._writers.get(fd)
        reading = fd in self._readers
        self._register(fd, reading, True, reading, old is not None)
        self._writers[fd] = handle
        return old

    def unwatch_read(self, fd: int) -> Handle | None:
        old = self._readers.pop(fd, None)
        if old is not None:
            self._register(fd, False, fd in self._writers, True, fd in self._writers)
        return old

    def unwatch_write(self, fd: int) -> Handle | None:
        old = self._writers.pop(fd, None)
        if old is not None:
            self._register(fd, fd in self._readers, False, fd in self._readers, True)
        return old

    def watched_fds(self) -> set[int]:
        return set(self._readers) | set(self._writers)

    # -- the seam -------------------------------------------------------------

    def wakeup(self) -> None:
        """Make a blocked (or the next) ``poll`` return. Thread- and signal-safe."""
        self._waker.wakeup()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._readers.clear()
        self._writers.clear()
        self._close_poller()
        self._waker.close()

    def stats(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "events": self._events,
            "readers": len(self._readers),
            "writers": len(self._writers),
        }

    # -- to implement ---------------------------------------------------------

    def _register(self, fd: int, read: bool, write: bool, old_read: bool, old_write: bool) -> None:
        raise NotImplementedError

    def poll(self, timeout: float | None) -> EventList:
        raise NotImplementedError

    def poll_function(self) -> Callable[[float | None], EventList]:
        """What the loop calls each iteration instead of ``poll`` (a
        backend may hand out its poller's own C method: no Python frame)."""
        return self.poll

    def collect(self, events: EventList, append: Callable[[Handle], None]) -> None:
        """Pass the handles to run for ``events`` to ``append``, in order
        (loop thread only).

        ``events`` holds ``(fd, mask)`` in poll(2) bits: IN_BIT for readable,
        OUT_BIT for writable, anything else (error, hang-up, invalid) wakes both
        directions. A cancelled handle is not passed on; its registration is
        dropped. The waker's own event drains it and yields nothing.
        """
        self._events += len(events)
        get_reader = self._readers.get
        for fd, mask in events:
            # The usual event first, in few bytecodes: readable, with a live
            # reader. Everything else (the waker, writers, errors, cancelled
            # handles) takes _collect_other.
            if mask == IN_BIT:
                handle = get_reader(fd)
                if handle is not None and not handle._cancelled:
                    append(handle)
                    continue
            self._collect_other(fd, mask, append)

    def _collect_other(self, fd: int, mask: int, append: Callable[[Handle], None]) -> None:
        if fd == self._waker.read_fd:
            self._waker.drain()
            return
        if mask & NOT_OUT:
            handle = self._readers.get(fd)
            if handle is not None:
                if handle._cancelled:
                    self.unwatch_read(fd)
                else:
                    append(handle)
        if mask & NOT_IN:
            handle = self._writers.get(fd)
            if handle is not None:
                if handle._cancelled:
                    self.unwatch_write(fd)
                else:
                    append(handle)

    def _close_poller(self) -> None:
        raise NotImplementedError


def check_fd_open(fd: int) -> None:
    """Raise OSError(EBADF) for an fd that is not open, as epoll_ctl would.

    poll(2) and select(2) accept any number at registration time; this keeps
    add_reader's error the same on every backend.
    """
    os.fstat(fd)


def ceil_ms(timeout: float) -> int:
    """Seconds to whole milliseconds, rounded up (a 0.4 ms timer must not spin)."""
    ms = int(timeout * 1000.0)
    if ms < timeout * 1000.0:
        ms += 1
    return ms
