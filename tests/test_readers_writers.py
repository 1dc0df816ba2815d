"""Oracle tests of add_reader / remove_reader / add_writer / remove_writer:
registration by fd and by file object, replacement, return values, invalid
and closed file objects, level-triggered readiness, EOF, callback ordering and
fd reuse.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def _run_once(loop: asyncio.AbstractEventLoop) -> None:
    loop.call_soon(loop.stop)
    loop.run_forever()


async def _wait(fut: asyncio.Future[Any], timeout: float = 10) -> Any:
    return await asyncio.wait_for(fut, timeout)


class _NoFileno:
    def __repr__(self) -> str:
        return "<NoFileno>"


class _FilenoReturns:
    def __init__(self, value: Any) -> None:
        self.value = value

    def fileno(self) -> Any:
        return self.value

    def __repr__(self) -> str:
        return f"<FilenoReturns {self.value!r}>"


# --------------------------------------------------------------------------
# basic registration
# --------------------------------------------------------------------------


def test_reader_on_fd(loop: asyncio.AbstractEventLoop, pair: tuple[socket.socket, ...]) -> None:
    a, b = pair
    fut = loop.create_future()

    def on_readable(sock: socket.socket, tag: str) -> None:
        if not fut.done():
            fut.set_result((tag, sock.recv(100)))

    assert loop.add_reader(a.fileno(), on_readable, a, "tag") is None
    b.send(b"hello")
    assert loop.run_until_complete(_wait(fut)) == ("tag", b"hello")
    assert loop.remove_reader(a.fileno()) is True
    assert loop.remove_reader(a.fileno()) is False


def test_reader_on_socket_object(
    loop: asyncio.AbstractEventLoop, pair: tuple[socket.socket, ...]
) -> None:
    a, b = pair
    fut = loop.create_future()
    loop.add_reader(a, lambda: fut.done() or fut.set_result(a.recv(100)))
    b.send(b"obj")
    assert loop.run_until_complete(_wait(fut)) == b"obj"
    # Registered by object, removed by number (and the other way round).
    assert loop.remove_reader(a.fileno()) is True
    loop.add_reader(a.fileno(), lambda: None)
    assert loop.remove_reader(a) is True
    assert loop.remove_reader(a) is False


def test_writer_on_fd(loop: asyncio.AbstractEventLoop, pair: tuple[socket.socket, ...]) -> None:
    a, _ = pair
    fut = loop.create_future()
    assert loop.add_writer(a.fileno(), lambda x: fut.done() or fut.set_result(x), 7) is None
    assert loop.run_until_complete(_wait(fut)) == 7
    assert loop.remove_writer(a.fileno()) is True
    assert loop.remove_writer(a.fileno()) is False


def test_writer_on_socket_object(
    loop: asyncio.AbstractEventLoop, pair: tuple[socket.socket, ...]
) -> None:
    a, _ = pair
    fut = loop.create_future()
    loop.add_writer(a, lambda: fut.done() or fut.set_result("writable"))
    assert loop.run_until_complete(_wait(fut)) == "writable"
    assert loop.remove_writer(a) is True


def test_remove_never_registered(
    loop: asyncio.AbstractEventLoop, pair: tuple[socket.socket, ...]
) -> None:
    a, _ = pair
    assert loop.remove_reader(a) is False
    assert loop.remove_writer(a) is False
    assert loop.remove_reader(a.fileno()) is False
    # A number that is not an open file descriptor at all.
    assert loop.remove_reader(9999) is False
    assert loop.remove_writer(9999) is False


def test_remove_reader_keeps_writer(
    loop: asyncio.AbstractEventLoop, pair: tuple[socket.socket, ...]
) -> None:
    a, _ = pair
    loop.add_writer(a, lambda: None)
    assert loop.remove_reader(a) is False
    assert loop.remove_writer(a) is True


def test_replace_reader(loop: asyncio.AbstractEventLoop, pair: tuple[socket.socket, ...]) -> None:
    a, b = pair
    calls: list[str] = []
    fut = loop.create_future()

    def second() -> None:
        calls.append("second")
        a.recv(100)
        if not fut.done():
            fut.set_result(None)

    loop.add_reader(a, calls.append, "first")
    loop.add_reader(a, second)
    b.send(b"x")
    loop.run_until_complete(_wait(fut))
    assert calls == ["second"]
    assert loop.remove_reader(a) is True
    assert loop.remove_reader(a) is False


def test_replace_writer(loop: asyncio.AbstractEventLoop, pair: tuple[socket.socket, ...]) -> None:
    a, _ = pair
    calls: list[str] = []
    loop.add_writer(a, calls.append, "first")
    loop.add_writer(a, calls.append, "second")
    _run_once(loop)
    assert calls == ["second"]
    assert loop.remove_writer(a) is True


def test_reader_is_level_triggered(
    loop: asyncio.AbstractEventLoop, pair: tuple[socket.socket, ...]
) -> None:
    a, b = pair
    calls: list[int] = []
    done = loop.create_future()

    def on_readable() -> None:
        # Never reads: the fd stays readable and the reader keeps firing.
        calls.append(1)
        if len(calls) == 3:
            loop.remove_reader(a)
            done.set_result(None)

    loop.add_reader(a, on_readable)
    b.send(b"x")
    loop.run_until_complete(_wait(done))
    assert len(calls) == 3
    assert a.recv(10) == b"x"


def test_reader_on_pipe(loop: asyncio.AbstractEventLoop) -> None:
    r, w = os.pipe()
    try:
        os.set_blocking(r, False)
        fut = loop.create_future()

        def on_readable() -> None:
            if not fut.done():
                fut.set_result(os.read(r, 100))

        loop.add_reader(r, on_readable)
        os.write(w, b"through a pipe")
        assert loop.run_until_complete(_wait(fut)) == b"through a pipe"
        assert loop.remove_reader(r) is True
    finally:
        os.close(r)
        os.close(w)


def test_writer_on_pipe(loop: asyncio.AbstractEventLoop) -> None:
    r, w = os.pipe()
    try:
        fut = loop.create_future()
        loop.add_writer(w, lambda: fut.done() or fut.set_result(os.write(w, b"abc")))
        assert loop.run_until_complete(_wait(fut)) == 3
        assert loop.remove_writer(w) is True
        assert os.read(r, 10) == b"abc"
    finally:
        os.close(r)
        os.close(w)


def test_pipe_eof_readiness(loop: asyncio.AbstractEventLoop) -> None:
    r, w = os.pipe()
    try:
        fut = loop.create_future()

        def on_readable() -> None:
            if not fut.done():
                fut.set_result(os.read(r, 100))

        loop.add_reader(r, on_readable)
        os.close(w)
        w = -1
        assert loop.run_until_complete(_wait(fut)) == b""
        assert loop.remove_reader(r) is True
    finally:
        os.close(r)
        if w != -1:
            os.close(w)


def test_reader_and_writer_same_fd(
    loop: asyncio.AbstractEventLoop, pair: tuple[socket.socket, ...]
) -> None:
    a, b = pair
    order: list[str] = []
    b.send(b"data")
    loop.add_reader(a, order.append, "reader")
    loop.add_writer(a, order.append, "writer")
    _run_once(loop)
    # asyncio dispatches the read event of an fd before its write event.
    assert order == ["reader", "writer"]
    assert loop.remove_writer(a) is True
    order.clear()
    _run_once(loop)
    assert order == ["reader"]  # the reader survived the writer's removal
    assert loop.remove_reader(a) is True
    order.clear()
    _run_once(loop)
    assert order == []


def test_remove_reader_inside_callback(
    loop: asyncio.AbstractEventLoop, pair: tuple[socket.socket, ...]
) -> None:
    a, b = pair
    calls: list[int] = []
    removed: list[bool] = []

    def on_readable() -> None:
        calls.append(1)
        removed.append(loop.remove_reader(a))  # data left unread on purpose

    loop.add_reader(a, on_readable)
    b.send(b"x")
    for _ in range(5):
        _run_once(loop)
    assert calls == [1]
    assert removed == [True]
    assert loop.remove_reader(a) is False


def test_replace_reader_inside_callback(
    loop: asyncio.AbstractEventLoop, pair: tuple[socket.socket, ...]
) -> None:
    a, b = pair
    calls: list[str] = []
    done = loop.create_future()

    def second() -> None:
        calls.append("second")
        a.recv(10)
        loop.remove_reader(a)
        done.set_result(None)

    def first() -> None:
        calls.append("first")
        loop.add_reader(a, second)

    loop.add_reader(a, first)
    b.send(b"x")
    loop.run_until_complete(_wait(done))
    assert calls == ["first", "second"]


def test_reader_removed_by_earlier_callback_same_iteration(
    loop: asyncio.AbstractEventLoop,
) -> None:
    # Two fds become readable in the same poll; whichever callback runs first
    # removes the other reader, whose already-queued callback must not run.
    a1, b1 = socket.socketpair()
    a2, b2 = socket.socketpair()
    try:
        calls: list[str] = []

        def cb(name: str, other: socket.socket) -> None:
            calls.append(name)
            loop.remove_reader(other)

        loop.add_reader(a1, cb, "one", a2)
        loop.add_reader(a2, cb, "two", a1)
        b1.send(b"x")
        b2.send(b"x")
        _run_once(loop)
        assert len(calls) == 1, calls
        first = a1 if calls == ["one"] else a2
        assert loop.remove_reader(first) is True
    finally:
        for s in (a1, b1, a2, b2):
            s.close()


def test_eof_readiness(loop: asyncio.AbstractEventLoop, pair: tuple[socket.socket, ...]) -> None:
    a, b = pair
    fut = loop.create_future()

    def on_readable() -> None:
        if not fut.done():
            fut.set_result(a.recv(100))

    loop.add_reader(a, on_readable)
    b.close()
    assert loop.run_until_complete(_wait(fut)) == b""
    assert loop.remove_reader(a) is True


def test_data_then_eof(loop: asyncio.AbstractEventLoop, pair: tuple[socket.socket, ...]) -> None:
    a, b = pair
    chunks: list[bytes] = []
    done = loop.create_future()

    def on_readable() -> None:
        data = a.recv(3)
        chunks.append(data)
        if not data:
            loop.remove_reader(a)
            done.set_result(None)

    loop.add_reader(a, on_readable)
    b.send(b"abcdefgh")
    b.close()
    loop.run_until_complete(_wait(done))
    assert chunks == [b"abc", b"def", b"gh", b""]


def test_io_callbacks_ordered_between_ready_and_timers(
    loop: asyncio.AbstractEventLoop, pair: tuple[socket.socket, ...]
) -> None:
    # asyncio's iteration: callbacks already ready, then I/O callbacks from the
    # poll, then timers that came due.
    a, b = pair
    order: list[str] = []
    b.send(b"x")
    loop.add_reader(a, order.append, "reader")
    loop.call_at(loop.time() - 1, order.append, "timer")
    loop.call_soon(order.append, "ready")
    _run_once(loop)
    assert order == ["ready", "reader", "timer"]
    assert loop.remove_reader(a) is True


def test_reader_callback_exception(
    loop: asyncio.AbstractEventLoop, pair: tuple[socket.socket, ...], errors: Any
) -> None:
    a, b = pair

    def on_readable() -> None:
        loop.remove_reader(a)
        raise ValueError("in reader")

    loop.add_reader(a, on_readable)
    b.send(b"x")
    _run_once(loop)
    [ctx] = errors.take()
    assert ctx["message"].startswith("Exception in callback ")
    assert isinstance(ctx["exception"], ValueError)
    assert isinstance(ctx["handle"], asyncio.Handle)


# --------------------------------------------------------------------------
# invalid file objects and closed loops
# --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["add_reader", "add_writer"])
@pytest.mark.parametrize(
    ("fileobj", "message"),
    [
        (_NoFileno(), "Invalid file object: <NoFileno>"),
        ("3", "Invalid file object: '3'"),
        (3.0, "Invalid file object: 3.0"),
        (_FilenoReturns("x"), "Invalid file object: <FilenoReturns 'x'>"),
        (-1, "Invalid file descriptor: -1"),
        (-5, "Invalid file descriptor: -5"),
        (_FilenoReturns(-1), "Invalid file descriptor: -1"),
    ],
)
def test_add_invalid_file_object(
    loop: asyncio.AbstractEventLoop, method: str, fileobj: Any, message: str
) -> None:
    with pytest.raises(ValueError) as info:
        getattr(loop, method)(fileobj, lambda: None)
    assert str(info.value) == message


@pytest.mark.parametrize("method", ["remove_reader", "remove_writer"])
@pytest.mark.parametrize(
    ("fileobj", "message"),
    [
        (_NoFileno(), "Invalid file object: <NoFileno>"),
        ("3", "Invalid file object: '3'"),
        (-1, "Invalid file descriptor: -1"),
    ],
)
def test_remove_invalid_file_object(
    loop: asyncio.AbstractEventLoop, method: str, fileobj: Any, message: str
) -> None:
    with pytest.raises(ValueError) as info:
        getattr(loop, method)(fileobj)
    assert str(info.value) == message


@pytest.mark.parametrize("method", ["add_reader", "add_writer"])
def test_add_fd_not_open(loop: asyncio.AbstractEventLoop, method: str) -> None:
    # The epoll-based stock loop rejects a number that is not an open fd at
    # registration time, and leaves nothing registered behind.
    fd = 9999
    with pytest.raises(OSError) as info:
        getattr(loop, method)(fd, lambda: None)
    assert type(info.value) is OSError
    assert info.value.errno == errno.EBADF
    assert loop.remove_reader(fd) is False
    assert loop.remove_writer(fd) is False


def test_closed_socket_object(loop: asyncio.AbstractEventLoop) -> None:
    a, b = socket.socketpair()
    a.close()
    b.close()
    with pytest.raises(ValueError) as info:
        loop.add_reader(a, lambda: None)
    assert str(info.value) == "Invalid file descriptor: -1"
    with pytest.raises(ValueError) as info:
        loop.remove_reader(a)
    assert str(info.value) == "Invalid file descriptor: -1"


def test_remove_reader_of_socket_closed_after_registration(
    loop: asyncio.AbstractEventLoop,
) -> None:
    # Libraries close a socket and then remove its reader by the socket
    # object: asyncio finds the registration by object identity.
    # (Only one direction is registered: with both, stock asyncio's
    # remove_reader() tries epoll_ctl(MOD) on the closed fd and raises EBADF.)
    a, b = socket.socketpair()
    c, d = socket.socketpair()
    try:
        loop.add_reader(a, lambda: None)
        loop.add_writer(c, lambda: None)
        a.close()
        c.close()
        assert loop.remove_reader(a) is True
        assert loop.remove_writer(c) is True
        # Now unknown: the objects' fileno() is -1.
        with pytest.raises(ValueError) as info:
            loop.remove_reader(a)
        assert str(info.value) == "Invalid file descriptor: -1"
        with pytest.raises(ValueError) as info:
            loop.remove_writer(c)
        assert str(info.value) == "Invalid file descriptor: -1"
    finally:
        for s in (a, b, c, d):
            s.close()


@pytest.mark.parametrize("method", ["add_reader", "add_writer"])
def test_add_on_closed_loop(
    loop: asyncio.AbstractEventLoop, pair: tuple[socket.socket, ...], method: str
) -> None:
    a, _ = pair
    loop.close()
    for fileobj in (a, a.fileno(), -1):
        with pytest.raises(RuntimeError) as info:
            getattr(loop, method)(fileobj, lambda: None)
        assert str(info.value) == "Event loop is closed"
    # The file object is validated before the loop state.
    with pytest.raises(ValueError) as vinfo:
        getattr(loop, method)(_NoFileno(), lambda: None)
    assert str(vinfo.value) == "Invalid file object: <NoFileno>"


@pytest.mark.parametrize("method", ["remove_reader", "remove_writer"])
def test_remove_on_closed_loop(
    loop: asyncio.AbstractEventLoop, pair: tuple[socket.socket, ...], method: str
) -> None:
    a, _ = pair
    loop.add_reader(a, lambda: None)
    loop.add_writer(a, lambda: None)
    loop.close()
    assert getattr(loop, method)(a) is False
    assert getattr(loop, method)(a.fileno()) is False
    assert getattr(loop, method)(-1) is False
    with pytest.raises(ValueError) as info:
        getattr(loop, method)(_NoFileno())
    assert str(info.value) == "Invalid file object: <NoFileno>"


def test_reader_not_called_after_fd_closed(loop: asyncio.AbstractEventLoop) -> None:
    # Closing an fd without removing its reader: the kernel forgets the
    # registration, the callback is never called again and the loop keeps
    # running; removing it afterwards by number reports True.
    a, b = socket.socketpair()
    fd = a.fileno()
    calls: list[int] = []
    try:
        loop.add_reader(fd, calls.append, 1)
        a.close()
        b.close()

        async def spin() -> None:
            for _ in range(5):
                await asyncio.sleep(0)
            await asyncio.sleep(0.01)

        loop.run_until_complete(spin())
        assert calls == []
        assert loop.remove_reader(fd) is True
    finally:
        a.close()
        b.close()


# --------------------------------------------------------------------------
# fd reuse
# --------------------------------------------------------------------------


def _socket_on_fd(fd: int) -> tuple[socket.socket, socket.socket]:
    """A connected pair whose first socket has file descriptor number fd
    (which the caller has just closed)."""
    c, d = socket.socketpair()
    if c.fileno() != fd:
        # Someone else took the number: move c onto it.
        os.dup2(c.fileno(), fd)
        c.close()
        c = socket.socket(fileno=fd)
    c.setblocking(False)
    return c, d


def test_fd_reused_after_remove(loop: asyncio.AbstractEventLoop) -> None:
    a, b = socket.socketpair()
    fd = a.fileno()
    loop.add_reader(fd, lambda: None)
    loop.add_writer(fd, lambda: None)
    assert loop.remove_reader(fd) is True
    assert loop.remove_writer(fd) is True
    a.close()
    b.close()
    c, d = _socket_on_fd(fd)
    try:
        assert c.fileno() == fd
        fut = loop.create_future()
        loop.add_reader(fd, lambda: fut.done() or fut.set_result(c.recv(10)))
        d.send(b"reused")
        assert loop.run_until_complete(_wait(fut)) == b"reused"
        assert loop.remove_reader(fd) is True
    finally:
        c.close()
        d.close()


def test_fd_closed_without_remove_then_reused(
    loop: asyncio.AbstractEventLoop, loop_kind: str, request: pytest.FixtureRequest
) -> None:
    # The socket is closed while its reader is still registered; a new socket
    # gets the same number and is registered again. tideloop's backends have a
    # written policy for stale fds and must deliver readiness for the new file.
    if loop_kind == "asyncio":
        request.applymarker(
            pytest.mark.xfail(
                strict=True,
                reason=(
                    "stock asyncio keeps the stale selector key; re-registering with the "
                    "same event mask skips epoll_ctl, so the new socket is never polled"
                ),
            )
        )
    a, b = socket.socketpair()
    fd = a.fileno()
    loop.add_reader(fd, lambda: None)
    a.close()
    b.close()
    c, d = _socket_on_fd(fd)
    try:
        fut = loop.create_future()
        loop.add_reader(fd, lambda: fut.done() or fut.set_result(c.recv(10)))
        d.send(b"reused")

        async def wait_briefly() -> Any:
            try:
                return await asyncio.wait_for(fut, 0.5 if loop_kind == "asyncio" else 10)
            except TimeoutError:
                return "reader never fired"

        assert loop.run_until_complete(wait_briefly()) == b"reused"
    finally:
        loop.remove_reader(fd)
        c.close()
        d.close()
