"""``pyfloor`` in every group: the bare-Python references.

The UDP and TLS floor servers must echo every byte (and say when a peer
sends garbage); the floors of the micro and spawn benchmarks must do the
work they stand for (they check it themselves, as the benchmarks do); the
command line takes ``pyfloor`` in every group, and says why when the
platform lacks what a floor needs.
"""

from __future__ import annotations

import os
import select
import socket
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from benchmarks import GROUPS, micro, spawn, tls
from benchmarks._cli import floor_unavailable, main
from benchmarks._core import LoopSpec, Timer
from benchmarks._udp_loadgen import MAX_SIZE
from benchmarks.udp import udp_server_command

from .support import ControlledServer, run_bench_json, server_pool

pytestmark = pytest.mark.skipif(
    not hasattr(select, "epoll"), reason="the floors poll with epoll (Linux)"
)

# -- micro and spawn: the floors do the benchmarks' work ----------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", [b.name for b in micro.GROUP.benchmarks])
def test_micro_floor(name: str) -> None:
    floor = micro.GROUP.get(name).floor
    assert floor is not None, f"{name} has no floor"
    timer = Timer()
    floor(1000 if name != "getaddrinfo" else 50, timer)  # checks its own work
    assert timer.uses == 1 and timer.wall > 0


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", [b.name for b in spawn.GROUP.benchmarks])
def test_spawn_floor(name: str) -> None:
    floor = spawn.GROUP.get(name).floor
    assert floor is not None
    timer = Timer()
    floor(5, timer)
    assert timer.uses == 1 and timer.wall > 0


# -- the UDP floor server ------------------------------------------------------------------------


@pytest.fixture
def udp_floor() -> Iterator[Callable[[bool], ControlledServer]]:
    with server_pool() as start:

        def make(module: bool) -> ControlledServer:
            head = [sys.executable, "-m", "benchmarks._udp_server"]
            cmd = head if module else udp_server_command()
            return start([*cmd, "--loop", "pyfloor", "--port", "0"])

        yield make


@pytest.mark.timeout(60)
@pytest.mark.parametrize("module", [True, False], ids=["module", "bootstrap"])
def test_udp_floor_echoes(udp_floor: Callable[[bool], ControlledServer], module: bool) -> None:
    server = udp_floor(module)
    assert server.hello["loop_type"].startswith("pyfloor")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(10)
        sock.connect(("127.0.0.1", server.port))
        for size in (1, 16, 64, 1024, 8192, MAX_SIZE):
            payload = os.urandom(size)
            sock.send(payload)
            assert sock.recv(MAX_SIZE + 1) == payload
    closed = server.sample_and_quit()
    # What the asyncio and tideloop servers report (see test_udp).
    assert closed == {
        "event": "closed",
        "errors": [],
        "error_received": [],
        "pause_writing": 0,
        "queued_bytes": 0,
        "connection_lost": True,
    }
    server.check_exit()


# -- the TLS floor server ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    return tls.make_certificates(str(tmp_path_factory.mktemp("certs")))


def _tls_floor(certs: tuple[str, str, str]) -> tuple[subprocess.Popen[str], int]:
    cert, key, _ca = certs
    proc = tls._spawn(
        ["serve", "--loop", "pyfloor", "--cert", cert, "--key", key], LoopSpec("pyfloor")
    )
    return proc, int(tls._read_event(proc, "listening")["port"])


def _quit(proc: subprocess.Popen[str]) -> dict[str, object]:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("r\nq\n")
    proc.stdin.flush()
    assert tls._read_event(proc, "sample")["cpu"] > 0
    closed = tls._read_event(proc, "closed")
    proc.stdin.close()
    assert proc.wait(timeout=20) == 0
    proc.stdout.close()
    return closed


def _recv_exactly(sock: ssl.SSLSocket, n: int) -> bytes:
    chunks = []
    while n:
        chunk = sock.recv(n)
        assert chunk, "server closed the connection"
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


@pytest.mark.timeout(60)
def test_tls_floor_echoes(certs: tuple[str, str, str]) -> None:
    proc, port = _tls_floor(certs)
    try:
        ctx = ssl.create_default_context(cafile=certs[2])
        for _ in range(2):  # a second connection: a fresh handshake
            raw = socket.create_connection(("127.0.0.1", port), timeout=10)
            with ctx.wrap_socket(raw, server_hostname=tls.HOSTNAME) as sock:
                for size in (1, 1024, 16384, 16385, 100 * 1024):
                    payload = os.urandom(size)
                    sock.sendall(payload)
                    assert _recv_exactly(sock, size) == payload
                # close_notify is answered with close_notify
                plain = sock.unwrap()
                assert plain.recv(1) == b""  # then the server closes
                plain.close()
        closed = _quit(proc)
        assert closed == {"event": "closed", "errors": [], "error_count": 0}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.timeout(60)
def test_tls_floor_reports_garbage(certs: tuple[str, str, str]) -> None:
    proc, port = _tls_floor(certs)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\n\r\n")  # not TLS
            try:
                while sock.recv(4096):  # maybe an alert, then the close
                    pass
            except ConnectionResetError:
                pass
        closed = _quit(proc)
        assert closed["error_count"] == 1
        assert "SSLError" in str(closed["errors"])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- the command line ----------------------------------------------------------------------------


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_every_group_has_a_floor(group: str) -> None:
    assert floor_unavailable(group) is None  # Linux with epoll and pidfd_open


@pytest.mark.timeout(30)
def test_floor_unavailable_says_why(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(os, "pidfd_open", raising=False)
    assert main(["--group", "spawn", "--loops", "tideloop,pyfloor"]) == 2
    err = capsys.readouterr().err
    assert "pyfloor of the spawn group waits for its children with os.pidfd_open" in err
    assert main(["--group", "micro", "--loops", "pyfloor", "--list"]) == 0  # others still do
    capsys.readouterr()
    monkeypatch.delattr(select, "epoll", raising=False)
    for group in sorted(GROUPS):
        assert main(["--group", group, "--loops", "pyfloor"]) == 2
        err = capsys.readouterr().err
        assert f"pyfloor of the {group} group is a bare Python epoll loop" in err


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("group", "bench"),
    [
        ("micro", "call_soon_threadsafe,sock_echo"),
        ("spawn", "spawn_communicate"),
        ("udp", "echo-1k-10x1"),
    ],
)
def test_quick_run_with_pyfloor(group: str, bench: str) -> None:
    report, _ = run_bench_json(
        "--group", group, "--bench", bench, loops="tideloop,pyfloor", timeout=110
    )
    for result in report["benchmarks"]:
        res = result["results"]["pyfloor"]
        assert res["ok"], res
        assert res["loop_type"].startswith("pyfloor")
        assert res["build"] is None
        assert set(result["ratios"]) == {"tideloop/pyfloor"}


@pytest.mark.timeout(120)
def test_quick_tls_run_with_pyfloor() -> None:
    report, _ = run_bench_json(
        "--group", "tls", "--bench", "echo-1k,handshake", loops="tideloop,pyfloor", timeout=110
    )
    assert report["loops"] == ["tideloop", "pyfloor"]
    assert report["builds"] == {"tideloop": "pure Python"}
    rows = {(r["scenario"], r["loop"]): r for r in report["median"]}
    for scenario in ("echo-1k", "handshake"):
        row = rows[(scenario, "pyfloor")]
        assert row["count"] > 0 and row["server_us_per_op"] > 0, row
        assert row["build"] is None
        assert rows[(scenario, "tideloop")]["build"] == "pure Python"
