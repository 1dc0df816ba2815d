"""The UDP echo benchmark (``python -m benchmarks --group udp``).

What is checked is that the benchmark measures what it says and fails loudly
when a server misbehaves: the report's structure, the echo server and its
control protocol, and the load generators' verification of every echo
(against deliberately broken servers), loss and late echoes included.  Not
the speed of any loop.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from benchmarks import GROUPS, get_group
from benchmarks._cli import main
from benchmarks._udp_loadgen import MAX_SIZE, resolve_udp_client, udp_client_command
from benchmarks.udp import (
    DEFAULT_CASES,
    FULL_CASES,
    QUICK_CASES,
    UdpCase,
    udp_server_command,
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


def _check_report(report: dict[str, Any], loops: list[str], names: list[str]) -> None:
    check_server_report(report, "udp", loops, names)
    assert report["resend_timeout_ms"] > 0
    cases = {c.name: c for c in FULL_CASES}
    for bench in report["benchmarks"]:
        case = cases[bench["name"]]
        assert (bench["size"], bench["sockets"], bench["inflight"]) == (
            case.size,
            case.sockets,
            case.inflight,
        )
        assert bench["unit"] == "datagram"
        for res in bench["results"].values():
            # Every echo counted was compared whole with what was sent, and
            # so was every late one.
            assert res["messages"] > case.sockets * case.inflight
            assert res["verified_bytes"] == (res["messages"] + res["late"]) * case.size
            assert res["sent"] >= res["messages"]
            assert 0 <= res["late"] <= res["lost"] <= res["sent"]
            assert res["loss_rate"] == pytest.approx(res["lost"] / res["sent"])
            (rnd,) = res["rounds"]
            assert {"sent", "lost", "late", "eagain"} <= set(rnd)


# -- the whole benchmark, quick --------------------------------------------------------


@pytest.mark.timeout(30)
def test_udp_group_registered() -> None:
    assert GROUPS["udp"] == "benchmarks.udp"
    names = [b.name for b in get_group("udp").benchmarks]
    assert names == [c.name for c in FULL_CASES]
    assert len(set(names)) == len(names)
    assert set(QUICK_CASES) <= set(DEFAULT_CASES) <= set(FULL_CASES)
    assert {c.size for c in QUICK_CASES} == {64, 1024}
    assert {(c.sockets, c.inflight) for c in QUICK_CASES} == {(10, 1)}
    with pytest.raises(ValueError, match="header"):
        UdpCase(8, 1, 1)


@pytest.mark.timeout(120)
def test_quick_asyncio_json() -> None:
    report, progress = run_bench_json("--group", "udp", loops="asyncio", timeout=110)
    for case in QUICK_CASES:
        assert f"udp/{case.name}" in progress  # progress lines (not a tty)
    _check_report(report, ["asyncio"], [c.name for c in QUICK_CASES])
    check_one_loop(report, "asyncio")


@pytest.mark.timeout(150)
def test_quick_tideloop_json() -> None:
    report, _ = run_bench_json("--group", "udp", loops="tideloop,asyncio", timeout=140)
    _check_report(report, ["tideloop", "asyncio"], [c.name for c in QUICK_CASES])
    check_tideloop_vs_asyncio(report)


@pytest.mark.timeout(120)
def test_quick_table_with_python_client() -> None:
    run_table(
        "udp",
        "--quick",
        "--loops",
        "tideloop",
        "--client",
        "python",
        "--bench",
        "echo-64b-10x4",
        words=(
            "tideloop bench --group udp",
            "Python selectors client (1 process)",
            "Throughput",
            "Server CPU per datagram",
            "Load generator",
            "Loss: ",
            "echo-64b-10x4",
        ),
        timeout=110,
    )


@pytest.mark.timeout(30)
def test_cli_errors_and_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--group", "udp", "--list"]) == 0
    out = capsys.readouterr().out
    for case in FULL_CASES:
        assert case.name in out
    assert main(["--group", "udp", "--bench", "nosuchcase"]) == 2
    assert "nosuchcase" in capsys.readouterr().err
    assert main(["--group", "udp", "--repeats", "2"]) == 2
    assert "--repeats" in capsys.readouterr().err
    assert main(["--group", "udp", "--client-procs", "2"]) == 2
    assert "--client-procs" in capsys.readouterr().err
    assert main(["--group", "udp", "--warmup", "0"]) == 2
    assert "--warmup" in capsys.readouterr().err


# -- the server under test -------------------------------------------------------------


def _server_command(loop: str, *, module: bool) -> list[str]:
    head = [sys.executable, "-m", "benchmarks._udp_server"]
    cmd = head if module else udp_server_command()
    return [*cmd, "--loop", loop, "--port", "0"]


@pytest.fixture
def server_factory() -> Iterator[Callable[..., ControlledServer]]:
    """``make(loop, *, module=True)``: the UDP echo server under test."""
    with server_pool() as start:

        def make(loop: str, *, module: bool = True) -> ControlledServer:
            return start(_server_command(loop, module=module))

        yield make


@pytest.mark.timeout(60)
@pytest.mark.parametrize("module", [True, False], ids=["module", "bootstrap"])
@pytest.mark.parametrize("loop", ["asyncio", "tideloop"])
def test_udp_echo_server(
    server_factory: Callable[..., ControlledServer], loop: str, module: bool
) -> None:
    server = server_factory(loop, module=module)
    assert server.hello["loop_type"].startswith(loop)
    assert server.hello["transport_type"].startswith(loop)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(10)
        sock.connect(("127.0.0.1", server.port))
        for size in (1, 16, 64, 1024, 8192, MAX_SIZE):
            payload = os.urandom(size)
            sock.send(payload)
            assert sock.recv(MAX_SIZE + 1) == payload
    closed = server.sample_and_quit()
    assert closed == {
        "event": "closed",
        "errors": [],
        "error_received": [],
        "pause_writing": 0,
        "queued_bytes": 0,
        "connection_lost": True,
    }
    server.check_exit()


# -- the load generators verify what they get ------------------------------------------


class _BrokenServer:
    """A UDP echo server on a thread that misbehaves on its 3rd datagram.

    ``fault``: ``corrupt`` flips the last byte, ``extra`` appends one,
    ``twice`` echoes it twice, ``drop`` drops it, ``late`` holds it back and
    echoes it after the 10th (by then the client has given it up and sent
    the next one: a late echo, which is not an error).
    """

    def __init__(self, fault: str) -> None:
        self.fault = fault
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.wake_r, self.wake_w = socket.socketpair()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        held: tuple[bytes, Any] | None = None
        count = 0
        while True:
            ready, _, _ = select.select([self.sock, self.wake_r], [], [])
            if self.wake_r in ready:
                return
            data, addr = self.sock.recvfrom(65536)
            count += 1
            replies = [data]
            if count == 3:
                if self.fault == "corrupt":
                    replies = [data[:-1] + bytes([data[-1] ^ 0xFF])]
                elif self.fault == "extra":
                    replies = [data + b"!"]
                elif self.fault == "twice":
                    replies = [data, data]
                else:  # drop, late
                    held = (data, addr)
                    replies = []
            if count == 10 and self.fault == "late" and held is not None:
                self.sock.sendto(held[0], held[1])
            for reply in replies:
                self.sock.sendto(reply, addr)

    def close(self) -> None:
        self.wake_w.send(b"x")
        self.thread.join(timeout=20)
        for s in (self.sock, self.wake_r, self.wake_w):
            s.close()


def _drive(kind: str, fault: str, *, warmup_s: float, duration_s: float) -> list[dict[str, Any]]:
    """Run a one-socket client against a broken server; its JSON events."""
    client = resolve_udp_client(kind)
    server = _BrokenServer(fault)
    try:
        cmd = udp_client_command(
            client,
            host="127.0.0.1",
            port=server.port,
            sockets=1,
            inflight=1,
            size=100,
            warmup_s=warmup_s,
            duration_s=duration_s,
            timeout_ms=250,
        )
        # stdin stays open (a pipe) until the result is in: a client that
        # missed an error would run until the test's timeout fails it.
        with subprocess.Popen(
            cmd, env=env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        ) as proc:
            assert proc.stdout is not None and proc.stdin is not None
            events = []
            for line in proc.stdout:
                if line.strip():
                    events.append(json.loads(line))
                    if events[-1]["event"] == "result":
                        proc.stdin.close()  # stop
            status = proc.wait()
            if not proc.stdin.closed:
                proc.stdin.close()
    finally:
        server.close()
    events.append({"event": "exit", "status": status})
    return events


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", available_clients(resolve_udp_client))
@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("corrupt", "differs from what was sent"),
        ("extra", "101-byte datagram where 100 bytes were expected"),
        ("twice", "was echoed twice"),
    ],
)
def test_load_generator_catches_broken_server(kind: str, fault: str, message: str) -> None:
    events = _drive(kind, fault, warmup_s=30, duration_s=30)
    assert events[-1] == {"event": "exit", "status": 3}, events
    assert events[0]["event"] == "ready"
    assert events[-2]["event"] == "error"
    assert message in events[-2]["message"], events[-2]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", available_clients(resolve_udp_client))
@pytest.mark.parametrize("fault", ["drop", "late"])
def test_load_generator_counts_lost_and_late(kind: str, fault: str) -> None:
    # The window starts at once, so the 3rd datagram falls inside it.
    events = _drive(kind, fault, warmup_s=0, duration_s=2)
    assert events[-1] == {"event": "exit", "status": 0}, events
    ready, result = events[0], events[1]
    assert ready["event"] == "ready" and result["event"] == "result", events
    assert result["lost"] == 1
    assert result["late"] == (1 if fault == "late" else 0)
    assert result["msgs"] > 10
    assert result["sent"] >= result["msgs"] + result["lost"] - 1
    assert result["verified_bytes"] == (result["msgs"] + result["late"]) * 100
