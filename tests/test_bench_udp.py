"""The UDP echo benchmark (``tideloop bench --group udp``).

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
from pathlib import Path
from typing import Any

import pytest

from tideloop.__main__ import main
from tideloop._bench import GROUPS, get_group
from tideloop._bench._udp_loadgen import MAX_SIZE, resolve_udp_client, udp_client_command
from tideloop._bench.udp import (
    DEFAULT_CASES,
    FULL_CASES,
    QUICK_CASES,
    UdpCase,
    udp_server_command,
)

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(SRC) if not old else f"{SRC}{os.pathsep}{old}"
    return env


def _run(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        env=_env(),
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _check_report(report: dict[str, Any], loops: list[str], names: list[str]) -> None:
    assert report["group"] == "udp"
    assert report["quick"] is True
    assert report["loops"] == loops
    assert report["rounds"] == 1
    assert report["resend_timeout_ms"] > 0
    assert report["client"]["kind"] in ("c", "python")
    assert [b["name"] for b in report["benchmarks"]] == names
    if sys.platform.startswith("linux"):
        noise = report["noise"]
        assert noise["runs"] == len(names) * len(loops)
        assert 0 <= noise["median"] <= noise["max"]
    cases = {c.name: c for c in FULL_CASES}
    for bench in report["benchmarks"]:
        case = cases[bench["name"]]
        assert (bench["size"], bench["sockets"], bench["inflight"]) == (
            case.size,
            case.sockets,
            case.inflight,
        )
        assert bench["unit"] == "datagram"
        assert set(bench["results"]) == set(loops)
        for name, res in bench["results"].items():
            assert res["ok"], (bench["name"], name, res["error"], res.get("detail"))
            assert res["msgs_per_sec"] > 0
            assert res["server_cpu_us_per_msg"] > 0
            assert 0 <= res["server_user_us_per_msg"] <= res["server_cpu_us_per_msg"]
            assert res["client_cpu_us_per_msg"] > 0
            assert res["client_bound"] is (res["client_share"] >= 1.0)
            # Every echo counted was compared whole with what was sent, and
            # so was every late one.
            assert res["messages"] > case.sockets * case.inflight
            assert res["verified_bytes"] == (res["messages"] + res["late"]) * case.size
            assert res["sent"] >= res["messages"]
            assert 0 <= res["late"] <= res["lost"] <= res["sent"]
            assert res["loss_rate"] == pytest.approx(res["lost"] / res["sent"])
            (rnd,) = res["rounds"]
            assert rnd["msgs"] == res["messages"]
            assert {"sent", "lost", "late", "eagain"} <= set(rnd)
            assert rnd["wall_s"] > 0 and rnd["server_wall_s"] > 0
            assert rnd["server_user_s"] >= 0 and rnd["server_sys_s"] >= 0
            assert res["server_cpu_us_per_msg"] == pytest.approx(
                (rnd["server_user_s"] + rnd["server_sys_s"])
                / (rnd["msgs_per_sec"] * rnd["server_wall_s"])
                * 1e6
            )
        for key in ("ratios", "ratios_median", "cpu_ratios", "user_cpu_ratios"):
            assert isinstance(bench[key], dict)


# -- the whole benchmark, quick --------------------------------------------------------


@pytest.mark.timeout(30)
def test_udp_group_registered() -> None:
    assert GROUPS["udp"] == "tideloop._bench.udp"
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
    proc = _run(
        "-m",
        "tideloop",
        "bench",
        "--group",
        "udp",
        "--quick",
        "--json",
        "--loops",
        "asyncio",
        timeout=110,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for case in QUICK_CASES:
        assert f"udp/{case.name}" in proc.stderr  # progress lines (not a tty)
    report = json.loads(proc.stdout)
    _check_report(report, ["asyncio"], [c.name for c in QUICK_CASES])
    for bench in report["benchmarks"]:
        assert bench["results"]["asyncio"]["loop_type"].startswith("asyncio")
        assert bench["ratios"] == {}  # one loop: nothing to compare with


@pytest.mark.timeout(150)
def test_quick_tideloop_json() -> None:
    proc = _run(
        "-m",
        "tideloop",
        "bench",
        "--group",
        "udp",
        "--quick",
        "--json",
        "--loops",
        "tideloop,asyncio",
        timeout=140,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    _check_report(report, ["tideloop", "asyncio"], [c.name for c in QUICK_CASES])
    for bench in report["benchmarks"]:
        res = bench["results"]
        assert res["tideloop"]["loop_type"].startswith("tideloop")
        assert res["asyncio"]["loop_type"].startswith("asyncio")
        assert bench["ratios"]["tideloop/asyncio"] == pytest.approx(
            res["tideloop"]["msgs_per_sec"] / res["asyncio"]["msgs_per_sec"]
        )
        assert bench["cpu_ratios"]["tideloop/asyncio"] == pytest.approx(
            res["asyncio"]["server_cpu_us_per_msg"] / res["tideloop"]["server_cpu_us_per_msg"]
        )


@pytest.mark.timeout(120)
def test_quick_table_with_python_client() -> None:
    proc = _run(
        str(ROOT / "benchmarks" / "udp.py"),
        "--quick",
        "--loops",
        "tideloop",
        "--client",
        "python",
        "--bench",
        "echo-64b-10x4",
        timeout=110,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "tideloop bench --group udp" in out
    assert "Python selectors client (1 process)" in out
    for word in ("Throughput", "Server CPU per datagram", "Load generator", "Loss: "):
        assert word in out
    assert "echo-64b-10x4" in out
    assert "FAILED" not in out


@pytest.mark.timeout(30)
def test_cli_errors_and_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--group", "udp", "--list"]) == 0
    out = capsys.readouterr().out
    for case in FULL_CASES:
        assert case.name in out
    assert main(["bench", "--group", "udp", "--bench", "nosuchcase"]) == 2
    assert "nosuchcase" in capsys.readouterr().err
    assert main(["bench", "--group", "udp", "--repeats", "2"]) == 2
    assert "--repeats" in capsys.readouterr().err
    assert main(["bench", "--group", "udp", "--client-procs", "2"]) == 2
    assert "--client-procs" in capsys.readouterr().err
    assert main(["bench", "--group", "udp", "--warmup", "0"]) == 2
    assert "--warmup" in capsys.readouterr().err


# -- the server under test -------------------------------------------------------------


class _Server:
    """The UDP echo server driven over its control pipe."""

    def __init__(self, loop: str, *, module: bool) -> None:
        head = [sys.executable, "-m", "tideloop._bench._udp_server"]
        cmd = head if module else udp_server_command()
        self.proc = subprocess.Popen(
            [*cmd, "--loop", loop, "--port", "0"],
            env=_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        hello = self.event()
        assert hello["event"] == "listening", hello
        self.hello = hello
        self.port = int(hello["port"])

    def event(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, self.proc.stderr.read().decode() if self.proc.stderr else "no output"
        obj: dict[str, Any] = json.loads(line)
        return obj

    def command(self, text: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def close(self) -> tuple[int, str]:
        assert self.proc.stdin and self.proc.stdout and self.proc.stderr
        if not self.proc.stdin.closed:
            self.proc.stdin.close()
        self.proc.stdout.read()
        err = self.proc.stderr.read().decode()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.proc.wait(timeout=20), err


@pytest.fixture
def server_factory() -> Iterator[Callable[..., _Server]]:
    servers: list[_Server] = []

    def make(loop: str, *, module: bool = True) -> _Server:
        server = _Server(loop, module=module)
        servers.append(server)
        return server

    yield make
    for server in servers:
        if server.proc.poll() is None:
            server.proc.kill()
        if server.proc.stdout is not None and not server.proc.stdout.closed:
            server.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("module", [True, False], ids=["module", "bootstrap"])
@pytest.mark.parametrize("loop", ["asyncio", "tideloop"])
def test_udp_echo_server(server_factory: Callable[..., _Server], loop: str, module: bool) -> None:
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
    server.command(b"r\n")
    sample = server.event()
    assert sample["event"] == "sample"
    assert sample["utime"] >= 0 and sample["stime"] >= 0 and sample["t"] > 0
    server.command(b"q\n")
    closed = server.event()
    assert closed == {
        "event": "closed",
        "errors": [],
        "error_received": [],
        "pause_writing": 0,
        "queued_bytes": 0,
        "connection_lost": True,
    }
    status, err = server.close()
    assert status == 0, err


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


def _clients() -> list[str]:
    kinds = ["python"]
    try:
        resolve_udp_client("c")
    except RuntimeError:
        pass
    else:
        kinds.insert(0, "c")
    return kinds


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
            cmd, env=_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
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
@pytest.mark.parametrize("kind", _clients())
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
@pytest.mark.parametrize("kind", _clients())
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
