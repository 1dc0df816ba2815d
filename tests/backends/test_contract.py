"""The backend contract: every available backend through the same cases.

Each test builds a backend directly and drives it through the seam the loop
uses (``tideloop._backends._base``): ``watch_read``/``watch_write``,
``unwatch_read``/``unwatch_write``, ``reader``/``writer``, ``poll``,
``collect``, ``wakeup``, ``close`` and ``stats``. Events are ``(fd, mask)``
in poll(2) bits on every backend, so the masks below are ``select.POLL*``.

No test sleeps to synchronise: a poll that could block forever gets a
timeout and the test checks that it returned early; a thread that must be
blocked in the poll before it is woken is observed through
``/proc/PID/task/TID/wchan`` (tests/support/blocking.py).
"""

from __future__ import annotations

import asyncio
import errno
import os
import select
import signal
import socket
import threading
import time
from collections.abc import Iterator
from types import FrameType

import pytest

import tideloop
from tideloop._backends import available_backends, backend_class
from tideloop._backends._base import Backend
from tideloop._handles import Handle

from ..support.blocking import wait_until_blocked_in_poll

IN = select.POLLIN
OUT = select.POLLOUT

# A poll that must find something ready returns at once; one that must wait
# for a wake-up is given this long and has to return well before it.
POLL_TIMEOUT_S = 5.0
EARLY_S = 4.0


def _open_fds() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/fd")}


def _noop() -> None:
    pass


@pytest.fixture(params=available_backends())
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def hloop() -> Iterator[asyncio.AbstractEventLoop]:
    """The loop the handles belong to (they only need one for cancel/repr)."""
    lp = tideloop.new_event_loop()
    try:
        yield lp
    finally:
        lp.close()


class Fds:
    """Sockets and pipes made by a test, all closed at teardown."""

    def __init__(self) -> None:
        self.socks: list[socket.socket] = []
        self.raw: list[int] = []

    def socketpair(self) -> tuple[socket.socket, socket.socket]:
        a, b = socket.socketpair()
        self.socks += [a, b]
        return a, b

    def pipe(self) -> tuple[int, int]:
        r, w = os.pipe()
        self.raw += [r, w]
        return r, w

    def close_raw(self, fd: int) -> None:
        self.raw.remove(fd)
        os.close(fd)

    def close(self) -> None:
        for s in self.socks:
            s.close()
        for fd in self.raw:
            os.close(fd)


@pytest.fixture
def fds() -> Iterator[Fds]:
    made = Fds()
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def backend(name: str, hloop: asyncio.AbstractEventLoop) -> Iterator[Backend]:
    before = _open_fds()
    b = backend_class(name)()
    try:
        yield b
    finally:
        b.close()
    assert _open_fds() - before == set(), "the backend leaked file descriptors"


def handle(loop: asyncio.AbstractEventLoop) -> Handle:
    return Handle(_noop, (), loop, None)


def collected(backend: Backend, events: list[tuple[int, int]]) -> list[Handle]:
    out: list[Handle] = []
    backend.collect(events, out.append)
    return out


def poll_ready(backend: Backend) -> list[tuple[int, int]]:
    """Poll when something is expected to be ready: returns at once."""
    start = time.monotonic()
    events = backend.poll(POLL_TIMEOUT_S)
    assert time.monotonic() - start < EARLY_S, "poll waited although an fd was ready"
    return events


def masks_for(events: list[tuple[int, int]], fd: int) -> int:
    mask = 0
    for got_fd, got_mask in events:
        if got_fd == fd:
            mask |= got_mask
    return mask


# -- readiness --------------------------------------------------------------------


def test_readable(backend: Backend, hloop: asyncio.AbstractEventLoop, fds: Fds) -> None:
    a, b = fds.socketpair()
    h = handle(hloop)
    assert backend.watch_read(a.fileno(), h) is None
    assert backend.reader(a.fileno()) is h
    assert backend.writer(a.fileno()) is None
    assert backend.poll(0) == []  # nothing to read yet
    b.send(b"x")
    events = poll_ready(backend)
    assert masks_for(events, a.fileno()) & IN
    assert collected(backend, events) == [h]
    # Level-triggered and persistent: still readable, reported again.
    assert collected(backend, poll_ready(backend)) == [h]


def test_writable(backend: Backend, hloop: asyncio.AbstractEventLoop, fds: Fds) -> None:
    a, _b = fds.socketpair()
    h = handle(hloop)
    assert backend.watch_write(a.fileno(), h) is None
    assert backend.writer(a.fileno()) is h
    assert backend.reader(a.fileno()) is None
    events = poll_ready(backend)
    assert masks_for(events, a.fileno()) == OUT
    assert collected(backend, events) == [h]


def test_both_directions_on_one_fd(
    backend: Backend, hloop: asyncio.AbstractEventLoop, fds: Fds
) -> None:
    a, b = fds.socketpair()
    hr, hw = handle(hloop), handle(hloop)
    assert backend.watch_read(a.fileno(), hr) is None
    assert backend.watch_write(a.fileno(), hw) is None
    assert collected(backend, poll_ready(backend)) == [hw]
    b.send(b"x")
    events = poll_ready(backend)
    assert masks_for(events, a.fileno()) == IN | OUT
    # asyncio's order for one ready fd: the reader, then the writer.
    assert collected(backend, events) == [hr, hw]


@pytest.mark.parametrize("dropped", ["read", "write"])
def test_unwatch_one_direction_keeps_the_other(
    backend: Backend, hloop: asyncio.AbstractEventLoop, fds: Fds, dropped: str
) -> None:
    a, b = fds.socketpair()
    fd = a.fileno()
    hr, hw = handle(hloop), handle(hloop)
    backend.watch_read(fd, hr)
    backend.watch_write(fd, hw)
    b.send(b"x")  # readable and writable
    if dropped == "read":
        assert backend.unwatch_read(fd) is hr
        assert backend.unwatch_read(fd) is None  # already unwatched
        assert (backend.reader(fd), backend.writer(fd)) == (None, hw)
        kept = hw
    else:
        assert backend.unwatch_write(fd) is hw
        assert backend.unwatch_write(fd) is None
        assert (backend.reader(fd), backend.writer(fd)) == (hr, None)
        kept = hr
    events = poll_ready(backend)
    assert masks_for(events, fd) == (OUT if dropped == "read" else IN)
    assert collected(backend, events) == [kept]


def test_unwatch_both_directions_stops_events(
    backend: Backend, hloop: asyncio.AbstractEventLoop, fds: Fds
) -> None:
    a, b = fds.socketpair()
    backend.watch_read(a.fileno(), handle(hloop))
    backend.watch_write(a.fileno(), handle(hloop))
    b.send(b"x")
    backend.unwatch_read(a.fileno())
    backend.unwatch_write(a.fileno())
    assert backend.poll(0) == []


@pytest.mark.parametrize("direction", ["read", "write"])
def test_replacing_a_handle_returns_the_old_one(
    backend: Backend, hloop: asyncio.AbstractEventLoop, fds: Fds, direction: str
) -> None:
    a, b = fds.socketpair()
    fd = a.fileno()
    watch = backend.watch_read if direction == "read" else backend.watch_write
    get = backend.reader if direction == "read" else backend.writer
    first, second = handle(hloop), handle(hloop)
    assert watch(fd, first) is None
    assert watch(fd, second) is first
    assert get(fd) is second
    b.send(b"x")
    assert collected(backend, poll_ready(backend)) == [second]


@pytest.mark.parametrize("direction", ["read", "write"])
def test_cancelled_handle_is_not_collected_and_dropped(
    backend: Backend, hloop: asyncio.AbstractEventLoop, fds: Fds, direction: str
) -> None:
    a, b = fds.socketpair()
    fd = a.fileno()
    hr, hw = handle(hloop), handle(hloop)
    backend.watch_read(fd, hr)
    backend.watch_write(fd, hw)
    b.send(b"x")  # both directions ready
    cancelled, kept = (hr, hw) if direction == "read" else (hw, hr)
    cancelled.cancel()
    assert collected(backend, poll_ready(backend)) == [kept]
    if direction == "read":
        assert (backend.reader(fd), backend.writer(fd)) == (None, hw)
    else:
        assert (backend.reader(fd), backend.writer(fd)) == (hr, None)
    # The OS registration went too: the fd is still ready in that direction
    # but no longer reported in it.
    events = poll_ready(backend)
    assert masks_for(events, fd) == (OUT if direction == "read" else IN)
    assert collected(backend, events) == [kept]


def test_cancelled_only_handle_leaves_nothing_registered(
    backend: Backend, hloop: asyncio.AbstractEventLoop, fds: Fds
) -> None:
    a, b = fds.socketpair()
    h = handle(hloop)
    backend.watch_read(a.fileno(), h)
    b.send(b"x")
    h.cancel()
    assert collected(backend, poll_ready(backend)) == []
    assert backend.reader(a.fileno()) is None
    assert backend.poll(0) == []  # still readable, no longer watched
    assert backend.stats()["readers"] == 0


# -- stale and reused descriptors --------------------------------------------------


@pytest.mark.parametrize("direction", ["read", "write"])
def test_watching_a_closed_fd_raises_ebadf(
    backend: Backend, hloop: asyncio.AbstractEventLoop, direction: str
) -> None:
    s = socket.socket()
    fd = s.fileno()
    s.close()
    watch = backend.watch_read if direction == "read" else backend.watch_write
    with pytest.raises(OSError) as info:
        watch(fd, handle(hloop))
    assert info.value.errno == errno.EBADF
    # Nothing was registered.
    assert (backend.reader(fd), backend.writer(fd)) == (None, None)
    assert backend.stats()["readers"] == backend.stats()["writers"] == 0


@pytest.mark.parametrize("polled", [False, True], ids=["unpolled", "polled"])
@pytest.mark.parametrize("direction", ["read", "write"])
def test_unwatching_a_closed_fd_is_not_an_error(
    backend: Backend, hloop: asyncio.AbstractEventLoop, fds: Fds, direction: str, polled: bool
) -> None:
    a, _b = fds.socketpair()
    fd = a.fileno()
    h = handle(hloop)
    if direction == "read":
        backend.watch_read(fd, h)
    else:
        backend.watch_write(fd, h)
    a.close()
    if polled:
        # The backend may notice the closed fd (POLLNVAL, select's EBADF):
        # it reports nothing for it.
        assert collected(backend, backend.poll(0)) == []
    unwatch = backend.unwatch_read if direction == "read" else backend.unwatch_write
    assert unwatch(fd) is h
    assert (backend.reader(fd), backend.writer(fd)) == (None, None)
    assert backend.poll(0) == []


@pytest.mark.parametrize("polled", [False, True], ids=["unpolled", "polled"])
@pytest.mark.parametrize("direction", ["read", "write"])
def test_unwatching_one_direction_of_a_closed_fd_is_not_an_error(
    backend: Backend,
    hloop: asyncio.AbstractEventLoop,
    fds: Fds,
    direction: str,
    polled: bool,
    request: pytest.FixtureRequest,
) -> None:
    a, _b = fds.socketpair()
    fd = a.fileno()
    hr, hw = handle(hloop), handle(hloop)
    backend.watch_read(fd, hr)
    backend.watch_write(fd, hw)
    a.close()
    if polled:
        assert collected(backend, backend.poll(0)) == []
    if direction == "read":
        assert backend.unwatch_read(fd) is hr
        assert backend.unwatch_write(fd) is hw
    else:
        assert backend.unwatch_write(fd) is hw
        assert backend.unwatch_read(fd) is hr
    assert (backend.reader(fd), backend.writer(fd)) == (None, None)
    assert backend.poll(0) == []


@pytest.mark.parametrize("polled", [False, True], ids=["unpolled", "polled"])
@pytest.mark.parametrize("direction", ["read", "write"])
def test_reused_fd_number_gets_events_for_the_new_socket(
    backend: Backend,
    hloop: asyncio.AbstractEventLoop,
    fds: Fds,
    direction: str,
    polled: bool,
) -> None:
    # An fd closed without unwatching; the kernel forgot the registration but
    # the backend still holds the handle. A new socket takes the same number
    # and is watched again: the replacement re-registers it (epoll's modify
    # fails with ENOENT and is retried as an add).
    old, _peer = fds.socketpair()
    fd = old.fileno()
    stale = handle(hloop)
    if direction == "read":
        backend.watch_read(fd, stale)
    else:
        backend.watch_write(fd, stale)
    old.close()
    if polled:
        assert collected(backend, backend.poll(0)) == []
    new, new_peer = fds.socketpair()
    assert new.fileno() == fd, "setup: the lowest free number is reused"
    fresh = handle(hloop)
    if direction == "read":
        assert backend.watch_read(fd, fresh) is stale
        assert backend.poll(0) == []  # the new socket has nothing to read yet
        new_peer.send(b"new")
    else:
        assert backend.watch_write(fd, fresh) is stale
    events = poll_ready(backend)
    assert masks_for(events, fd) == (IN if direction == "read" else OUT)
    assert collected(backend, events) == [fresh]


def test_reused_fd_number_watched_in_the_other_direction(
    backend: Backend, hloop: asyncio.AbstractEventLoop, fds: Fds
) -> None:
    # The stale reader is still held; watching the new socket for writing
    # registers it (both directions) and the new socket's readiness is what
    # is reported.
    old, _peer = fds.socketpair()
    fd = old.fileno()
    stale = handle(hloop)
    backend.watch_read(fd, stale)
    old.close()
    new, new_peer = fds.socketpair()
    assert new.fileno() == fd, "setup: the lowest free number is reused"
    hw = handle(hloop)
    assert backend.watch_write(fd, hw) is None
    assert collected(backend, poll_ready(backend)) == [hw]
    fresh = handle(hloop)
    assert backend.watch_read(fd, fresh) is stale
    new_peer.send(b"x")
    assert collected(backend, poll_ready(backend)) == [fresh, hw]


# -- errors and hang-ups -------------------------------------------------------------


@pytest.mark.parametrize("bit", ["POLLERR", "POLLHUP"])
def test_error_or_hangup_event_wakes_reader_and_writer(
    backend: Backend, hloop: asyncio.AbstractEventLoop, fds: Fds, bit: str
) -> None:
    # collect's mapping, fed an event directly (poll(2) bits on every backend).
    a, _b = fds.socketpair()
    hr, hw = handle(hloop), handle(hloop)
    backend.watch_read(a.fileno(), hr)
    backend.watch_write(a.fileno(), hw)
    assert collected(backend, [(a.fileno(), getattr(select, bit))]) == [hr, hw]
    backend.unwatch_write(a.fileno())
    assert collected(backend, [(a.fileno(), getattr(select, bit))]) == [hr]


def test_os_error_condition_wakes_reader_and_writer(
    backend: Backend, hloop: asyncio.AbstractEventLoop, fds: Fds
) -> None:
    # A pipe's write end whose read end is closed: POLLERR (with POLLOUT).
    # Its reader is woken only by the error: a write end is never readable.
    r, w = fds.pipe()
    hr, hw = handle(hloop), handle(hloop)
    backend.watch_read(w, hr)
    backend.watch_write(w, hw)
    assert collected(backend, poll_ready(backend)) == [hw]
    fds.close_raw(r)
    assert collected(backend, poll_ready(backend)) == [hr, hw]


def test_os_hangup_wakes_reader_and_writer(
    backend: Backend, hloop: asyncio.AbstractEventLoop, fds: Fds
) -> None:
    # A pipe's read end whose write end is closed: POLLHUP alone. A read end
    # is never writable, so its writer is woken only by the hang-up.
    if backend.name == "select":
        pytest.skip("select(2) has no hang-up condition: Linux puts POLLHUP in the read set only")
    r, w = fds.pipe()
    hr, hw = handle(hloop), handle(hloop)
    backend.watch_read(r, hr)
    backend.watch_write(r, hw)
    assert backend.poll(0) == []
    fds.close_raw(w)
    assert collected(backend, poll_ready(backend)) == [hr, hw]


def test_select_reports_hangup_to_the_reader(hloop: asyncio.AbstractEventLoop, fds: Fds) -> None:
    # What select(2) can say about the hang-up above: the fd is readable (a
    # read returns EOF), so the reader sees it.
    backend = backend_class("select")()
    try:
        r, w = fds.pipe()
        hr, hw = handle(hloop), handle(hloop)
        backend.watch_read(r, hr)
        backend.watch_write(r, hw)
        fds.close_raw(w)
        assert collected(backend, poll_ready(backend)) == [hr]
    finally:
        backend.close()


# -- poll and wakeup ------------------------------------------------------------------


def test_poll_zero_returns_at_once(
    backend: Backend, hloop: asyncio.AbstractEventLoop, fds: Fds
) -> None:
    a, _b = fds.socketpair()
    backend.watch_read(a.fileno(), handle(hloop))  # watched, never ready
    start = time.monotonic()
    for _ in range(100):
        assert backend.poll(0) == []
    assert time.monotonic() - start < EARLY_S


@pytest.mark.parametrize("timeout", [0.01, 0.0004], ids=["10ms", "0.4ms"])
def test_poll_timeout_expires(backend: Backend, timeout: float) -> None:
    # A timeout below a millisecond is rounded up, not down to a busy 0.
    start = time.monotonic()
    assert backend.poll(timeout) == []
    assert time.monotonic() - start >= timeout * 0.9  # 10%: clock granularity


def _poll_in_thread(
    backend: Backend, timeout: float | None
) -> tuple[threading.Thread, threading.Event, list[list[tuple[int, int]]], int]:
    started = threading.Event()
    done = threading.Event()
    result: list[list[tuple[int, int]]] = []
    tid: list[int] = []

    def run() -> None:
        tid.append(threading.get_native_id())
        started.set()
        result.append(backend.poll(timeout))
        done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(POLL_TIMEOUT_S)
    wait_until_blocked_in_poll(os.getpid(), tid[0])
    return thread, done, result, tid[0]


def test_poll_none_blocks_until_wakeup(backend: Backend) -> None:
    thread, done, result, _tid = _poll_in_thread(backend, None)
    assert not done.is_set()
    backend.wakeup()
    assert done.wait(POLL_TIMEOUT_S), "wakeup() did not end poll(None)"
    thread.join(POLL_TIMEOUT_S)
    [events] = result
    assert len(events) == 1  # the waker's event
    assert collected(backend, events) == []  # which runs nothing
    assert backend.poll(0) == []  # and was drained


def test_wakeup_from_another_thread_ends_a_blocked_poll(backend: Backend) -> None:
    main_tid = threading.get_native_id()

    def waker() -> None:
        wait_until_blocked_in_poll(os.getpid(), main_tid)
        backend.wakeup()

    thread = threading.Thread(target=waker, daemon=True)
    thread.start()
    start = time.monotonic()
    events = backend.poll(POLL_TIMEOUT_S)
    assert time.monotonic() - start < EARLY_S, "the poll was not woken"
    thread.join(POLL_TIMEOUT_S)
    assert len(events) == 1
    assert collected(backend, events) == []
    assert backend.poll(0) == []


def test_wakeup_from_a_signal_handler_ends_a_blocked_poll(backend: Backend) -> None:
    # The handler runs on the main thread while it is blocked in the poll: the
    # syscall fails with EINTR, Python runs the handler (which wakes the
    # backend) and retries the poll (PEP 475), which returns at once. The
    # signal is sent to the main thread only (pthread_kill), once it sleeps in
    # the poll; SIGALRM is left to pytest-timeout. No signal wakeup fd is
    # involved: it is switched off for the test so that only wakeup() can end
    # the poll.
    assert threading.current_thread() is threading.main_thread()
    handled: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        handled.append(signum)
        backend.wakeup()

    main_tid = threading.get_native_id()
    main_ident = threading.main_thread().ident
    assert main_ident is not None

    def sender() -> None:
        wait_until_blocked_in_poll(os.getpid(), main_tid)
        signal.pthread_kill(main_ident, signal.SIGUSR1)

    previous = signal.signal(signal.SIGUSR1, on_signal)
    previous_fd = signal.set_wakeup_fd(-1)
    try:
        thread = threading.Thread(target=sender, daemon=True)
        thread.start()
        start = time.monotonic()
        events = backend.poll(POLL_TIMEOUT_S)
        elapsed = time.monotonic() - start
        thread.join(POLL_TIMEOUT_S)
    finally:
        signal.set_wakeup_fd(previous_fd)
        signal.signal(signal.SIGUSR1, previous)
    assert handled == [signal.SIGUSR1]
    assert elapsed < EARLY_S, "the poll was not woken"
    assert len(events) == 1
    assert collected(backend, events) == []
    assert backend.poll(0) == []


def test_wakeup_before_poll_is_kept(backend: Backend) -> None:
    backend.wakeup()
    events = poll_ready(backend)
    assert len(events) == 1
    assert collected(backend, events) == []


def test_repeated_wakeups_coalesce(
    backend: Backend, hloop: asyncio.AbstractEventLoop, fds: Fds
) -> None:
    a, b = fds.socketpair()
    h = handle(hloop)
    backend.watch_read(a.fileno(), h)
    for _ in range(5):
        backend.wakeup()
    b.send(b"x")
    events = poll_ready(backend)
    assert len(events) == 2  # one for the waker, one for the socket
    assert collected(backend, events) == [h]
    backend.unwatch_read(a.fileno())
    assert backend.poll(0) == []  # the five wake-ups were one, drained
    # And the waker works again after the drain.
    backend.wakeup()
    backend.wakeup()
    events = poll_ready(backend)
    assert len(events) == 1
    assert collected(backend, events) == []
    assert backend.poll(0) == []


def test_wakeups_from_many_threads_coalesce(backend: Backend) -> None:
    barrier = threading.Barrier(4)

    def wake() -> None:
        barrier.wait(POLL_TIMEOUT_S)
        for _ in range(100):
            backend.wakeup()

    threads = [threading.Thread(target=wake) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(POLL_TIMEOUT_S)
    events = poll_ready(backend)
    assert len(events) == 1
    assert collected(backend, events) == []
    assert backend.poll(0) == []


# -- close and stats ---------------------------------------------------------------------


def test_close_is_idempotent_and_releases_fds(
    name: str, hloop: asyncio.AbstractEventLoop, fds: Fds
) -> None:
    a, _b = fds.socketpair()
    before = _open_fds()
    backend = backend_class(name)()
    owned = _open_fds() - before
    assert owned, "a backend owns at least its waker's fd"
    backend.watch_read(a.fileno(), handle(hloop))
    backend.watch_write(a.fileno(), handle(hloop))
    backend.close()
    assert _open_fds() == before
    assert (backend.reader(a.fileno()), backend.writer(a.fileno())) == (None, None)
    assert backend.stats()["readers"] == backend.stats()["writers"] == 0
    backend.close()
    assert _open_fds() == before
    assert a.fileno() in before  # the watched socket is the caller's, left open


def test_wakeup_after_close_is_a_no_op(name: str) -> None:
    before = _open_fds()
    backend = backend_class(name)()
    backend.close()
    backend.wakeup()
    assert _open_fds() == before


def test_stats(backend: Backend, name: str, hloop: asyncio.AbstractEventLoop, fds: Fds) -> None:
    a, b = fds.socketpair()
    c, _d = fds.socketpair()
    stats = backend.stats()
    assert stats == {"backend": name, "events": 0, "readers": 0, "writers": 0}
    assert backend.name == name
    backend.watch_read(a.fileno(), handle(hloop))
    backend.watch_write(a.fileno(), handle(hloop))
    backend.watch_write(c.fileno(), handle(hloop))
    b.send(b"x")
    events = poll_ready(backend)
    assert len(events) == 2
    collected(backend, events)
    assert backend.stats() == {"backend": name, "events": 2, "readers": 1, "writers": 2}
    backend.unwatch_write(c.fileno())
    assert backend.stats()["writers"] == 1
