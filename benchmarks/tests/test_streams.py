"""The stream echo benchmark (``python -m benchmarks``, group ``streams``).

What is checked is that the benchmark measures what it says and fails loudly
when a server misbehaves: the report's structure, the echo server's handlers
and control protocol, and the load generators' byte-by-byte verification
(against deliberately broken servers).  Not the speed of any loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import select
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest

import tideloop
from benchmarks import DEFAULT_GROUP, get_group
from benchmarks._cli import main
from benchmarks._echo_server import ZERO_COPY_BUFFER_BYTES, ZeroCopyEchoProtocol
from benchmarks._loadgen import ClientInfo, client_command, resolve_client
from benchmarks._streams_run import server_command
from benchmarks._wire import HANDLERS, HTTP_REQUEST, HTTP_RESPONSE, SPLIT_HEAD_BYTES
from benchmarks.streams import (
    DEFAULT_CASES,
    FULL_CASES,
    QUICK_CASES,
)

from .support import (
    ControlledServer,
    available_clients,
    check_one_loop,
    check_server_report,
    check_tideloop_vs_asyncio,
    env,
    run_bench_json,
    run_table,
    server_pool,
)


def _tideloop_create_server_missing() -> bool:
    """True only while tideloop's create_server raises NotImplementedError."""
    loop = tideloop.new_event_loop()
    try:
        server = loop.run_until_complete(loop.create_server(asyncio.Protocol, "127.0.0.1", 0))
        server.close()
        loop.run_until_complete(server.wait_closed())
        return False
    except NotImplementedError:
        return True
    finally:
        loop.close()


def _skip_unless_served(loop: str) -> None:
    if loop.startswith("tideloop") and _tideloop_create_server_missing():
        pytest.skip("tideloop's loop.create_server raises NotImplementedError (not written yet)")


def _check_report(report: dict[str, Any], loops: list[str], names: list[str]) -> None:
    check_server_report(report, "streams", loops, names)
    cases = {c.name: c for c in FULL_CASES}
    for bench in report["benchmarks"]:
        case = cases[bench["name"]]
        assert (bench["handler"], bench["size"], bench["conns"]) == (
            case.handler,
            case.size,
            case.conns,
        )
        for res in bench["results"].values():
            assert isinstance(res["client_bound"], bool)
            # Every echoed byte was compared with what was sent.
            reply = case.size if case.mode == "echo" else len(HTTP_RESPONSE)
            assert res["messages"] > case.conns
            assert res["verified_bytes"] >= (res["messages"] - case.conns) * reply > 0
            (rnd,) = res["rounds"]
            assert rnd["msgs_per_sec"] == pytest.approx(res["msgs_per_sec"])
            assert set(res["pooled"]) == {
                "server_cpu_us_per_msg",
                "server_user_us_per_msg",
                "client_cpu_us_per_msg",
            }
            if sys.platform.startswith("linux"):
                assert rnd["background_cores"] >= 0


# -- the whole benchmark, quick --------------------------------------------------------


@pytest.mark.timeout(30)
def test_streams_is_the_default_group() -> None:
    assert DEFAULT_GROUP == "streams"
    names = [b.name for b in get_group("streams").benchmarks]
    assert names == [c.name for c in FULL_CASES]
    assert len(set(names)) == len(names)
    assert set(QUICK_CASES) <= set(DEFAULT_CASES) <= set(FULL_CASES)
    handlers = {c.handler for c in QUICK_CASES}
    assert handlers == set(HANDLERS)
    assert HANDLERS == ("protocol", "buffered", "buffered-zero-copy", "streams", "split", "http")
    assert {c.size for c in DEFAULT_CASES if c.handler != "http"} == {64, 1024, 100 * 1024}


@pytest.mark.timeout(120)
def test_quick_asyncio_json() -> None:
    report, progress = run_bench_json(loops="asyncio", timeout=110)
    # Progress lines on stderr (not a tty here), one per run at least.
    for case in QUICK_CASES:
        assert f"streams/{case.name}" in progress
    _check_report(report, ["asyncio"], [c.name for c in QUICK_CASES])
    check_one_loop(report, "asyncio")


@pytest.mark.timeout(150)
def test_quick_tideloop_json() -> None:
    _skip_unless_served("tideloop")
    report, _ = run_bench_json(loops="tideloop,asyncio", timeout=140)
    _check_report(report, ["tideloop", "asyncio"], [c.name for c in QUICK_CASES])
    check_tideloop_vs_asyncio(report)


@pytest.mark.timeout(120)
@pytest.mark.skipif(not hasattr(select, "epoll"), reason="pyfloor is an epoll loop (Linux)")
def test_quick_pyfloor_reference_json() -> None:
    # The bare-Python reference server runs every quick case next to a loop,
    # and the report compares tideloop with it as with any other loop.
    _skip_unless_served("tideloop")
    report, _ = run_bench_json(loops="tideloop,pyfloor", timeout=110)
    _check_report(report, ["tideloop", "pyfloor"], [c.name for c in QUICK_CASES])
    assert report["versions"]["pyfloor"] == platform.python_version()
    for bench in report["benchmarks"]:
        assert bench["results"]["pyfloor"]["loop_type"].startswith("pyfloor")
        assert set(bench["cpu_ratios"]) == {"tideloop/pyfloor"}


@pytest.mark.timeout(120)
def test_quick_table_with_python_client() -> None:
    run_table(
        "streams",
        "--quick",
        "--loops",
        "asyncio",
        "--client",
        "python",
        "--client-procs",
        "2",
        "--bench",
        "protocol-1k-10c,http-10c",
        words=(
            "Python selectors client (2 processes)",
            "Throughput",
            "Server CPU per message",
            "Load generator",
            "protocol-1k-10c",
            "http-10c",
        ),
        timeout=110,
    )


@pytest.mark.timeout(30)
def test_cli_errors_and_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    for case in FULL_CASES:
        assert case.name in out
    assert main(["--bench", "nosuchcase"]) == 2
    assert "nosuchcase" in capsys.readouterr().err
    assert main(["--repeats", "2"]) == 2
    assert "--repeats" in capsys.readouterr().err
    assert main(["--group", "micro", "--full"]) == 2
    assert "--full applies to the streams group" in capsys.readouterr().err
    assert main(["--duration", "0"]) == 2
    assert "--duration" in capsys.readouterr().err
    assert main(["--client-procs", "0"]) == 2
    assert "--client-procs" in capsys.readouterr().err


@pytest.mark.timeout(30)
def test_pyfloor_needs_epoll(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(select, "epoll", raising=False)
    assert main(["--loops", "tideloop,pyfloor"]) == 2
    assert "pyfloor of the streams group is a bare Python epoll loop" in capsys.readouterr().err


# -- the zero-copy handler -------------------------------------------------------------


class _FakeTransport:
    """What the zero-copy handler uses of a transport.  ``keeps``: the
    transport holds what it is given (as a loop does with bytes the kernel
    did not take yet, or that it gathers to send later) and reports them in
    ``get_write_buffer_size()``; else it sends them at once (a copy here)."""

    def __init__(self, *, keeps: bool) -> None:
        self.keeps = keeps
        self.held: list[memoryview] = []
        self.sent: list[bytes] = []

    def write(self, data: memoryview) -> None:
        assert isinstance(data, memoryview)  # a view of the buffer: no copy made
        if self.keeps:
            self.held.append(data)
        else:
            self.sent.append(bytes(data))

    def get_write_buffer_size(self) -> int:
        return sum(len(view) for view in self.held)


def _zero_copy_echo(transport: _FakeTransport) -> ZeroCopyEchoProtocol:
    protocol = ZeroCopyEchoProtocol()
    protocol.transport = cast(asyncio.Transport, transport)
    return protocol


def test_zero_copy_reuses_its_buffer_when_nothing_is_buffered() -> None:
    transport = _FakeTransport(keeps=False)
    protocol = _zero_copy_echo(transport)
    first = protocol.get_buffer(-1)
    assert len(first) == ZERO_COPY_BUFFER_BYTES
    for message in (b"hello", b"world!"):
        buf = protocol.get_buffer(-1)
        assert buf is first
        buf[: len(message)] = message
        protocol.buffer_updated(len(message))
    assert transport.sent == [b"hello", b"world!"]


def test_zero_copy_takes_a_fresh_buffer_when_the_transport_keeps_bytes() -> None:
    # Reading into the buffer the transport still holds a view of would
    # change bytes not sent yet: the next read goes elsewhere.
    transport = _FakeTransport(keeps=True)
    protocol = _zero_copy_echo(transport)
    buffers = []
    for message in (b"hello", b"world!"):
        buf = protocol.get_buffer(-1)
        assert all(buf is not old for old in buffers)
        buffers.append(buf)
        buf[: len(message)] = message
        protocol.buffer_updated(len(message))
    assert [bytes(view) for view in transport.held] == [b"hello", b"world!"]


# -- the server under test -------------------------------------------------------------


def _server_command(loop: str, handler: str, *, module: bool) -> list[str]:
    head = [sys.executable, "-m", "benchmarks._echo_server"]
    cmd = head if module else server_command()
    return [*cmd, "--loop", loop, "--handler", handler, "--port", "0"]


@pytest.fixture
def server_factory() -> Iterator[Callable[..., ControlledServer]]:
    """``make(loop, handler, *, module=True)``: an echo server under test
    (``python -m benchmarks._echo_server``)."""
    with server_pool() as start:

        def make(loop: str, handler: str, *, module: bool = True) -> ControlledServer:
            return start(_server_command(loop, handler, module=module))

        yield make


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    chunks = []
    while n:
        chunk = sock.recv(n)
        assert chunk, "server closed the connection"
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


_SERVER_LOOPS = ["asyncio", "tideloop"] + (["pyfloor"] if hasattr(select, "epoll") else [])


@pytest.mark.timeout(60)
@pytest.mark.parametrize("loop", _SERVER_LOOPS)
@pytest.mark.parametrize(
    "handler", ["protocol", "buffered", "buffered-zero-copy", "streams", "split"]
)
def test_echo_server_handlers(
    server_factory: Callable[..., ControlledServer], loop: str, handler: str
) -> None:
    _skip_unless_served(loop)
    server = server_factory(loop, handler)
    assert server.hello["loop_type"].startswith(loop)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        for size in (1, SPLIT_HEAD_BYTES, SPLIT_HEAD_BYTES + 1, 1024, 100 * 1024):
            payload = os.urandom(size)
            sock.sendall(payload)
            assert _recv_exactly(sock, size) == payload
    closed = server.sample_and_quit()
    assert closed == {"event": "closed", "connections": 1, "errors": []}
    server.check_exit()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("loop", _SERVER_LOOPS)
def test_http_server(server_factory: Callable[..., ControlledServer], loop: str) -> None:
    _skip_unless_served(loop)
    server = server_factory(loop, "http", module=False)  # the way the benchmark starts it
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(HTTP_REQUEST)
        assert _recv_exactly(sock, len(HTTP_RESPONSE)) == HTTP_RESPONSE
        # Pipelined, and split across writes: one response per request.
        sock.sendall(HTTP_REQUEST * 2 + HTTP_REQUEST[:10])
        sock.sendall(HTTP_REQUEST[10:])
        assert _recv_exactly(sock, 3 * len(HTTP_RESPONSE)) == 3 * HTTP_RESPONSE
        sock.sendall(b"NONSENSE\r\n\r\n")
        reply = sock.recv(4096)
        assert reply.startswith(b"HTTP/1.1 400 ")
        assert _recv_until_eof(sock, reply).endswith(b"\r\n\r\n")
    # EOF on the control pipe stops the server as "q" does, with open connections too.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(HTTP_REQUEST)  # accepted and served: counted
        assert _recv_exactly(sock, len(HTTP_RESPONSE)) == HTTP_RESPONSE
        assert server.proc.stdin is not None
        server.proc.stdin.close()
        closed = server.event()
    assert closed["event"] == "closed"
    assert closed["connections"] == 2
    assert closed["errors"] == []
    server.check_exit()


def _recv_until_eof(sock: socket.socket, first: bytes) -> bytes:
    data = first
    while chunk := sock.recv(4096):
        data += chunk
    return data


# -- the load generators verify what they get ------------------------------------------


class _BrokenServer:
    """A blocking echo server on a thread that misbehaves on its 3rd message.

    ``fault``: ``corrupt`` flips a byte, ``extra`` appends one, ``close``
    closes the connection instead of answering.
    """

    def __init__(self, fault: str, size: int) -> None:
        self.fault = fault
        self.size = size
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with conn:
            for count in range(1, 1_000_000):
                try:
                    data = _recv_exactly(conn, self.size)
                except (AssertionError, OSError):
                    return
                if count == 3:
                    if self.fault == "close":
                        return
                    if self.fault == "corrupt":
                        data = data[:-1] + bytes([data[-1] ^ 0xFF])
                    else:
                        data += b"!"
                try:
                    conn.sendall(data)
                except OSError:
                    return

    def close(self) -> None:
        self.listener.close()
        self.thread.join(timeout=20)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", available_clients(resolve_client))
@pytest.mark.parametrize(
    ("fault", "messages"),
    [
        ("corrupt", ("differ from the expected",)),
        # The extra byte comes with the reply, or first in the next one.
        ("extra", ("were expected", "differ from the expected")),
        ("close", ("closed by the server",)),
    ],
)
def test_load_generator_catches_broken_server(
    kind: str, fault: str, messages: tuple[str, ...]
) -> None:
    client: ClientInfo = resolve_client(kind, procs=1)
    size = 100 if fault != "corrupt" else 70_000  # a large one arrives in pieces
    server = _BrokenServer(fault, size)
    try:
        cmd = client_command(
            client,
            host="127.0.0.1",
            port=server.port,
            conns=1,
            size=size,
            mode="echo",
            warmup_s=30,
            duration_s=30,
        )
        # stdin stays open (a pipe): the client would run for a minute if the
        # fault went unnoticed; the test's timeout would then fail it.
        with subprocess.Popen(
            cmd, env=env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        ) as proc:
            assert proc.stdout is not None
            events = [json.loads(line) for line in proc.stdout if line.strip()]
            status = proc.wait()
            assert proc.stdin is not None
            proc.stdin.close()
    finally:
        server.close()
    assert status == 3, events
    assert events[0]["event"] == "ready"
    assert events[-1]["event"] == "error"
    assert any(m in events[-1]["message"] for m in messages), events[-1]
