"""Virtual time: ``tideloop.new_event_loop(clock=tideloop.VirtualClock())``.

Stock asyncio has no virtual clock, so these tests run on tideloop only, on
every backend. Each test bounds the *real* time its virtual hours take.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

import tideloop

BACKENDS = tideloop.available_backends()
SRC = str(Path(tideloop.__file__).resolve().parent.parent)

MakeLoop = Callable[..., tideloop.EventLoop]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_loop(backend: str) -> Iterator[MakeLoop]:
    """Loops on a virtual clock; each is closed (and its executor shut down)."""
    loops: list[tideloop.EventLoop] = []

    def make(clock: tideloop.VirtualClock | None = None) -> tideloop.EventLoop:
        loop = tideloop.new_event_loop(backend=backend, clock=clock or tideloop.VirtualClock())
        loops.append(loop)
        return loop

    yield make
    for loop in loops:
        if not loop.is_closed():
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()


class Wall:
    """Real time elapsed in a block."""

    def __enter__(self) -> Wall:
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.t0


# -- the clock itself ----------------------------------------------------------------


def test_an_hour_of_sleeps_in_under_a_second(backend: str) -> None:
    seen: list[float] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for _ in range(60):
            await asyncio.sleep(60)
        seen.append(loop.time() - t0)

    clock = tideloop.VirtualClock()
    with (
        Wall() as wall,
        asyncio.Runner(
            loop_factory=lambda: tideloop.new_event_loop(backend=backend, clock=clock)
        ) as runner,
    ):
        runner.run(main())
    assert seen == [3600.0]
    assert clock.time() >= 3600.0
    assert wall.seconds < 1.0


@pytest.mark.skipif(sys.version_info < (3, 12), reason="asyncio.run's loop_factory is 3.12+")
def test_asyncio_run_with_a_virtual_clock() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.sleep(3600)
        return loop.time() - t0

    with Wall() as wall:
        advanced = asyncio.run(  # type: ignore[call-arg,unused-ignore]
            main(), loop_factory=lambda: tideloop.new_event_loop(clock=tideloop.VirtualClock())
        )
    assert advanced == 3600.0
    assert wall.seconds < 1.0


def test_start_and_repr() -> None:
    clock = tideloop.VirtualClock(autojump_threshold=2.5, start=100.0)
    assert clock.time() == 100.0
    assert clock.autojump_threshold == 2.5
    assert repr(clock) == "<VirtualClock time=100.0 autojump_threshold=2.5>"
    loop = tideloop.new_event_loop(clock=clock)
    try:
        assert loop.time() == 100.0
    finally:
        loop.close()


@pytest.mark.parametrize("bad", [-1.0, math.nan])
def test_bad_values_are_refused(bad: float) -> None:
    clock = tideloop.VirtualClock()
    with pytest.raises(ValueError, match="time can only move forward"):
        clock.advance(bad)
    with pytest.raises(ValueError, match="autojump_threshold must be >= 0"):
        tideloop.VirtualClock(autojump_threshold=bad)


def test_timeout_and_wait_for(make_loop: MakeLoop) -> None:
    loop = make_loop()

    async def main() -> list[Any]:
        out: list[Any] = []
        t0 = loop.time()
        try:
            async with asyncio.timeout(30):
                await asyncio.sleep(3600)
        except TimeoutError:
            out.append(("timeout", loop.time() - t0))
        t0 = loop.time()
        try:
            await asyncio.wait_for(loop.create_future(), 10)
        except TimeoutError:
            out.append(("wait_for", loop.time() - t0))
        out.append(("result", await asyncio.wait_for(asyncio.sleep(5, "done"), 6)))
        return out

    with Wall() as wall:
        out = loop.run_until_complete(main())
    assert out == [("timeout", 30.0), ("wait_for", 10.0), ("result", "done")]
    assert wall.seconds < 1.0


def test_call_later_and_call_at_fire_at_their_virtual_times(make_loop: MakeLoop) -> None:
    loop = make_loop(tideloop.VirtualClock(start=1000.0))
    fired: list[tuple[str, float]] = []
    done = loop.create_future()

    def note(name: str) -> None:
        fired.append((name, loop.time()))
        if len(fired) == 4:
            done.set_result(None)

    loop.call_later(500, note, "later-500")
    loop.call_at(1002, note, "at-1002")
    loop.call_later(1, note, "later-1")
    cancelled = loop.call_later(3, note, "cancelled")
    loop.call_at(1002, note, "at-1002-second")
    cancelled.cancel()
    loop.run_until_complete(done)
    assert fired == [
        ("later-1", 1001.0),
        ("at-1002", 1002.0),
        ("at-1002-second", 1002.0),
        ("later-500", 1500.0),
    ]


def test_patched_loop_time_still_moves_the_timers(make_loop: MakeLoop) -> None:
    # As on asyncio: a test that patches loop.time decides when timers are due.
    loop = make_loop()
    fired = loop.create_future()
    loop.call_at(50.0, fired.set_result, "due")
    with mock.patch.object(loop, "time", return_value=100.0):
        assert loop.time() == 100.0
        assert loop.run_until_complete(fired) == "due"
    assert loop.time() == 0.0  # the virtual clock again, which never moved


# -- autojump -----------------------------------------------------------------------


def test_autojump_threshold_waits_that_long_in_real_time(make_loop: MakeLoop) -> None:
    clock = tideloop.VirtualClock(autojump_threshold=0.2)
    loop = make_loop(clock)
    with Wall() as wall:
        loop.run_until_complete(asyncio.sleep(1000))
    assert loop.time() == 1000.0
    assert clock.jumps == 1
    assert 0.2 <= wall.seconds < 10


def test_autojump_does_not_jump_while_io_arrives(make_loop: MakeLoop) -> None:
    # With a threshold, I/O that arrives before the threshold runs at the
    # same virtual time: the pending timer does not fire early.
    clock = tideloop.VirtualClock(autojump_threshold=30.0)
    loop = make_loop(clock)
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)

    async def main() -> tuple[list[bytes], float, bool]:
        timer = loop.create_future()
        loop.call_later(1, timer.set_result, None)
        got: list[bytes] = []
        t0 = loop.time()
        for i in range(20):
            await loop.sock_sendall(b, b"%02d" % i)
            got.append(await loop.sock_recv(a, 2))
        fired_early = timer.done()
        clock.advance(1)  # from the loop thread: the timer is due now
        await timer
        return got, loop.time() - t0, fired_early

    with a, b:
        got, elapsed, fired_early = loop.run_until_complete(main())
    assert got == [b"%02d" % i for i in range(20)]
    assert not fired_early
    assert elapsed == 1.0
    assert clock.jumps == 0


def test_infinite_threshold_only_advance_moves_time(make_loop: MakeLoop) -> None:
    clock = tideloop.VirtualClock(autojump_threshold=math.inf)
    loop = make_loop(clock)
    a, b = socket.socketpair()
    a.setblocking(False)

    async def main() -> tuple[bool, float]:
        timer = loop.create_future()
        loop.call_later(5, timer.set_result, None)
        # Real idleness (the peer's byte comes 0.2 s later, from a thread)
        # does not move a clock that never autojumps.
        sender = threading.Timer(0.2, b.send, (b"x",))
        sender.start()
        assert await loop.sock_recv(a, 1) == b"x"
        sender.join()
        fired_early = timer.done()
        # advance() from another thread wakes the loop sleeping in its poll.
        threading.Thread(target=clock.advance, args=(5,)).start()
        await timer
        return fired_early, loop.time()

    with a, b:
        fired_early, now = loop.run_until_complete(main())
    assert not fired_early
    assert now == 5.0
    assert clock.jumps == 0


def test_one_clock_drives_two_loops(backend: str) -> None:
    clock = tideloop.VirtualClock()
    loops = [tideloop.new_event_loop(backend=backend, clock=clock) for _ in range(2)]
    try:
        loops[0].run_until_complete(asyncio.sleep(10))
        assert loops[1].time() == 10.0
        loops[1].run_until_complete(asyncio.sleep(5))
        assert loops[0].time() == 15.0
    finally:
        for loop in loops:
            loop.close()


# -- real I/O on a virtual-clock loop ------------------------------------------------


@pytest.mark.parametrize("threshold", [0.0, 5.0])
def test_real_sockets_carry_data(make_loop: MakeLoop, threshold: float) -> None:
    loop = make_loop(tideloop.VirtualClock(autojump_threshold=threshold))
    payload = os.urandom(512 * 1024)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main() -> bytes:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)

        async def send() -> None:
            writer.write(payload)
            await writer.drain()
            writer.write_eof()

        sending = asyncio.create_task(send())
        echoed = await reader.read(-1)
        await sending
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return echoed

    assert loop.run_until_complete(main()) == payload


@pytest.fixture(scope="module")
def tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    return server_ctx, client_ctx


def test_tls_handshake_timeout(
    make_loop: MakeLoop, tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    loop = make_loop()
    silent = socket.create_server(("127.0.0.1", 0))  # accepts (backlog), never answers

    async def main() -> tuple[str, float]:
        t0 = loop.time()
        with pytest.raises(ConnectionAbortedError) as info:
            await loop.create_connection(
                asyncio.Protocol,
                *silent.getsockname(),
                ssl=tls[1],
                server_hostname="localhost",
                ssl_handshake_timeout=45.0,
            )
        return str(info.value), loop.time() - t0

    with silent, Wall() as wall:
        message, elapsed = loop.run_until_complete(main())
    assert message == "SSL handshake is taking longer than 45.0 seconds: aborting the connection"
    assert elapsed == 45.0
    assert wall.seconds < 5


def test_tls_shutdown_timeout(
    make_loop: MakeLoop, tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    # The peer completes the handshake and then never reads, so our
    # close_notify is never answered. A threshold lets the real handshake
    # finish before the clock may jump (see the autojump trade-off).
    loop = make_loop(tideloop.VirtualClock(autojump_threshold=1.0))
    listener = socket.create_server(("127.0.0.1", 0))
    release = threading.Event()

    def peer() -> None:
        conn, _ = listener.accept()
        with tls[0].wrap_socket(conn, server_side=True) as tconn:
            tconn.sendall(b"hello")
            release.wait(30)

    thread = threading.Thread(target=peer)
    thread.start()

    class Client(asyncio.Protocol):
        def __init__(self) -> None:
            self.greeting = loop.create_future()
            self.lost = loop.create_future()

        def data_received(self, data: bytes) -> None:
            if not self.greeting.done():
                self.greeting.set_result(data)

        def connection_lost(self, exc: Exception | None) -> None:
            self.lost.set_result(exc)

    async def main() -> tuple[bytes, Any, float]:
        transport, proto = await loop.create_connection(
            Client,
            *listener.getsockname(),
            ssl=tls[1],
            server_hostname="localhost",
            ssl_shutdown_timeout=90.0,
        )
        greeting = await proto.greeting
        t0 = loop.time()
        transport.close()
        exc = await proto.lost
        return greeting, exc, loop.time() - t0

    try:
        with listener, Wall() as wall:
            greeting, exc, elapsed = loop.run_until_complete(main())
    finally:
        release.set()
        thread.join()
    assert greeting == b"hello"
    assert isinstance(exc, TimeoutError)
    assert str(exc) == "SSL shutdown timed out"
    assert elapsed == 90.0
    assert wall.seconds < 10


def test_happy_eyeballs_delay(make_loop: MakeLoop) -> None:
    # The first address never answers: a listener whose backlog is full
    # drops SYNs (Linux, tcp_abort_on_overflow=0; the connect stays pending
    # while SYNs are retried). The second is a real server. The second
    # attempt starts after happy_eyeballs_delay of virtual time.
    loop = make_loop()
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    filler = socket.create_connection(full.getsockname())  # takes the only slot
    probe = socket.socket()
    probe.setblocking(False)
    probe.connect_ex(full.getsockname())
    stuck = not select_writable(probe, 0.2)
    probe.close()
    if not stuck:
        filler.close()
        full.close()
        pytest.skip("this kernel answers connects to a listener with a full backlog")

    async def fake_getaddrinfo(*args: Any, **kwargs: Any) -> list[Any]:
        stream = (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "")
        return [(*stream, full.getsockname()), (*stream, server_addr)]

    async def main() -> tuple[Any, float]:
        nonlocal server_addr
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        server_addr = server.sockets[0].getsockname()
        t0 = loop.time()
        with mock.patch.object(loop, "getaddrinfo", fake_getaddrinfo):
            transport, _ = await loop.create_connection(
                asyncio.Protocol, "example.invalid", 80, happy_eyeballs_delay=250.0
            )
        elapsed = loop.time() - t0
        peer = transport.get_extra_info("peername")
        transport.close()
        server.close()
        await server.wait_closed()
        return peer, elapsed

    server_addr: Any = None
    with full, filler, Wall() as wall:
        peer, elapsed = loop.run_until_complete(main())
    assert peer == server_addr
    assert elapsed == 250.0
    assert wall.seconds < 5


def select_writable(sock: socket.socket, timeout: float) -> bool:
    import select

    poller = select.poll()
    poller.register(sock, select.POLLOUT)
    return bool(poller.poll(int(timeout * 1000)))


EMFILE_VIRTUAL_SCRIPT = textwrap.dedent(
    """
    import asyncio, errno, json, os, resource, socket, sys, time
    import tideloop
    from tideloop import _server

    _server.ACCEPT_RETRY_DELAY_S = 3600.0  # an hour of back-off, in virtual time
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 256), hard))

    async def main():
        loop = asyncio.get_running_loop()
        reported = loop.create_future()
        made = loop.create_future()

        class Proto(asyncio.Protocol):
            def connection_made(self, transport):
                self.transport = transport
                made.set_result(loop.time())

        def handler(_loop, ctx):
            if not reported.done():
                reported.set_result(ctx["message"])

        loop.set_exception_handler(handler)
        server = await loop.create_server(Proto, "127.0.0.1", 0)
        client = socket.socket()
        client.setblocking(False)
        held = []
        while True:
            try:
                held.append(os.open(os.devnull, os.O_RDONLY))
            except OSError as exc:
                assert exc.errno == errno.EMFILE
                break
        await loop.sock_connect(client, server.sockets[0].getsockname())
        message = await reported
        t0 = loop.time()
        for fd in held:
            os.close(fd)
        made_at = await made
        client.close()
        server.close()
        await server.wait_closed()
        return {"message": message, "resumed_after": made_at - t0}

    loop = tideloop.new_event_loop(backend=sys.argv[1], clock=tideloop.VirtualClock())
    t0 = time.perf_counter()
    try:
        result = loop.run_until_complete(main())
    finally:
        loop.close()
    result["wall"] = time.perf_counter() - t0
    print(json.dumps(result))
    """
)


def test_server_emfile_backoff_follows_the_clock(backend: str) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [SRC, env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-c", EMFILE_VIRTUAL_SCRIPT, backend],
        capture_output=True,
        text=True,
        timeout=40,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["message"] == "socket.accept() out of system resource"
    # Accepting resumed when the virtual hour of back-off had passed.
    assert result["resumed_after"] == 3600.0
    assert result["wall"] < 10


@pytest.mark.skipif(
    (3, 12) <= sys.version_info < (3, 12, 3),
    reason="Python 3.12.0-3.12.2 bound only the thread join, not the wait for the jobs",
)
def test_shutdown_default_executor_timeout(make_loop: MakeLoop) -> None:
    loop = make_loop()
    release = threading.Event()
    started = threading.Event()

    def job() -> None:
        started.set()
        release.wait(30)

    async def main() -> float:
        loop.run_in_executor(None, job)
        await loop.run_in_executor(None, started.wait)
        t0 = loop.time()
        with pytest.warns(RuntimeWarning, match="within 600 seconds"):
            await loop.shutdown_default_executor(timeout=600)
        return loop.time() - t0

    try:
        with Wall() as wall:
            elapsed = loop.run_until_complete(main())
    finally:
        release.set()
    assert elapsed == 600.0
    assert wall.seconds < 5
