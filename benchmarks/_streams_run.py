"""One run of the stream benchmark: a server process, a load generator, two CPU samples.

1. the server under test starts in a process of its own (``_echo_server``,
   started by ``server_command()``) and reports its port;
2. the load generator starts (the C epoll client of ``_loadgen_c``, else the
   Python one of ``_loadgen``), opens the connections and does ping-pong on
   each, verifying every byte; it announces its measurement window
   ``[t0, t1]`` (``time.monotonic()``, shared by all processes) after a warm-up;
3. at ``t0`` and ``t1`` the parent asks the server for ``getrusage`` samples
   over its control pipe; the client reports its message count and its own
   ``getrusage`` over the window at ``t1`` and keeps the load on until the
   parent has the server's second sample (the server is busy at both samples);
4. client and server are stopped: the server must exit with status 0, having
   seen every connection and no call of its loop's exception handler.

Any deviation raises :class:`RunError`, with both processes' stderr attached.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final, TypeVar

from ._build import build_label
from ._core import LoopSpec
from ._echo_server import SERVER_BOOTSTRAP
from ._loadgen import ClientInfo, client_command
from ._wire import HTTP_RESPONSE

__all__ = [
    "Case",
    "Plan",
    "RunError",
    "RunSample",
    "Window",
    "machine_cpu",
    "run_once",
    "run_window",
    "server_command",
]

HOST: Final = "127.0.0.1"


@dataclass(frozen=True)
class Case:
    """One cell of the matrix: a handler kind, a message size, a connection count."""

    handler: str
    size: int
    conns: int

    @property
    def mode(self) -> str:
        return "http" if self.handler == "http" else "echo"

    @property
    def name(self) -> str:
        if self.handler == "http":
            return f"http-{self.conns}c"
        return f"{self.handler}-{_size_label(self.size)}-{self.conns}c"

    @property
    def description(self) -> str:
        what = {
            "protocol": "Protocol echo (data_received -> write)",
            "buffered": "BufferedProtocol echo (get_buffer/buffer_updated -> write)",
            "buffered-zero-copy": "BufferedProtocol zero-copy echo (writes a view of its buffer;"
            " a fresh buffer when get_write_buffer_size() > 0 after the write)",
            "streams": "streams echo (read(65536) -> write -> drain)",
            "split": "Protocol echo written as two writes (8-byte head, rest)",
            "http": "HTTP/1.1 keep-alive GET, fixed response, on Protocol",
        }[self.handler]
        size = "" if self.handler == "http" else f", {_size_text(self.size)} messages"
        return f"{what}{size}, {self.conns} connections"


def _size_label(size: int) -> str:
    """Short form for case names: 64b, 1k, 100k."""
    if size % 1024 == 0:
        return f"{size // 1024}k"
    return f"{size}b"


def _size_text(size: int) -> str:
    if size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} B"


@dataclass(frozen=True)
class Plan:
    """How long and how often: the sampling plan of one invocation."""

    rounds: int
    warmup_s: float
    duration_s: float
    timeout_s: float

    @classmethod
    def make(
        cls,
        *,
        quick: bool,
        rounds: int | None = None,
        warmup_s: float | None = None,
        duration_s: float | None = None,
        timeout_s: float | None = None,
    ) -> Plan:
        return cls(
            rounds=rounds if rounds is not None else (1 if quick else 3),
            warmup_s=warmup_s if warmup_s is not None else (0.1 if quick else 0.5),
            duration_s=duration_s if duration_s is not None else (0.3 if quick else 1.5),
            timeout_s=timeout_s if timeout_s is not None else 60.0,
        )


@dataclass(frozen=True)
class RunSample:
    """What one (case, loop, round) run measured."""

    msgs: int
    wall_s: float  # the client's window
    bytes: int
    reads: int  # the client's recv() calls that returned data
    verified_bytes: int
    server_user_s: float
    server_sys_s: float
    server_wall_s: float  # between the server's two samples
    client_user_s: float
    client_sys_s: float
    #: CPU used by everything else on the machine during the server's window
    #: (cores; None off Linux): noise from other processes, and the
    #: hypervisor's steal time, which is also counted in it.
    background_cores: float | None = None
    steal_cores: float | None = None
    #: tideloop rows: the build the server ran (``_build.build_label``).
    build: str | None = None

    @property
    def msgs_per_sec(self) -> float:
        return self.msgs / self.wall_s

    @property
    def server_msgs(self) -> float:
        """Messages handled during the server's sample window."""
        return self.msgs_per_sec * self.server_wall_s

    @property
    def server_us(self) -> float:
        """Server CPU time (user + system) per message, µs."""
        return (self.server_user_s + self.server_sys_s) / self.server_msgs * 1e6

    @property
    def server_user_us(self) -> float:
        return self.server_user_s / self.server_msgs * 1e6

    @property
    def client_us(self) -> float:
        return (self.client_user_s + self.client_sys_s) / self.msgs * 1e6

    @property
    def client_user_us(self) -> float:
        return self.client_user_s / self.msgs * 1e6

    def to_json(self) -> dict[str, Any]:
        return {
            "msgs": self.msgs,
            "wall_s": self.wall_s,
            "bytes": self.bytes,
            "reads": self.reads,
            "verified_bytes": self.verified_bytes,
            "server_user_s": self.server_user_s,
            "server_sys_s": self.server_sys_s,
            "server_wall_s": self.server_wall_s,
            "client_user_s": self.client_user_s,
            "client_sys_s": self.client_sys_s,
            "msgs_per_sec": self.msgs_per_sec,
            "background_cores": self.background_cores,
            "steal_cores": self.steal_cores,
            "build": self.build,
        }


SampleT = TypeVar("SampleT", bound=RunSample)


class RunError(Exception):
    """A run failed: the server or client broke, or an echo was wrong."""

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail


class _Lines:
    """JSON lines from a child's stdout, with a deadline on each read."""

    def __init__(self, proc: subprocess.Popen[bytes], name: str) -> None:
        assert proc.stdout is not None
        self.proc = proc
        self.fd = proc.stdout.fileno()
        self.name = name
        self.buf = b""

    def next(self, deadline: float) -> dict[str, Any]:
        while True:
            while b"\n" not in self.buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RunError(f"{self.name}: no answer in time")
                ready, _, _ = select.select([self.fd], [], [], left)
                if not ready:
                    continue
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    status = self.proc.wait()
                    raise RunError(f"{self.name} exited with status {status}")
                self.buf += chunk
            line, _, self.buf = self.buf.partition(b"\n")
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue  # a stray print: not ours
            if not isinstance(obj, dict):
                continue
            if obj.get("event") == "error":
                raise RunError(f"{self.name}: {obj.get('message')}")
            return obj

    def expect(self, event: str, deadline: float) -> dict[str, Any]:
        obj = self.next(deadline)
        if obj.get("event") != event:
            raise RunError(f"{self.name}: expected {event!r}, got {obj!r}")
        return obj


def _tail(f: IO[bytes], limit: int = 3000) -> str:
    f.flush()
    f.seek(0)
    return f.read().decode(errors="replace")[-limit:]


def _stop(proc: subprocess.Popen[bytes], timeout: float) -> int:
    """Close stdin (the polite stop), wait, then kill."""
    if proc.stdin is not None and not proc.stdin.closed:
        try:
            proc.stdin.close()
        except OSError:
            pass
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return -9


def _send(proc: subprocess.Popen[bytes], line: bytes) -> None:
    assert proc.stdin is not None
    try:
        proc.stdin.write(line)
        proc.stdin.flush()
    except BrokenPipeError:
        pass  # it died; the next read says how


def _sleep_until(t: float) -> None:
    # The measurement schedule, not synchronisation: the window is fixed time.
    left = t - time.monotonic()
    if left > 0:
        time.sleep(left)


_CLK_TCK: Final = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def machine_cpu() -> tuple[float, float] | None:
    """``(busy, steal)``: CPU seconds the whole machine has spent so far, from
    the first line of ``/proc/stat`` (proc(5)); None where there is none.

    busy = user + nice + system + irq + softirq + steal (guest time is already
    inside user).  Like a process's user/system split, these are tick samples.
    """
    try:
        with open("/proc/stat", "rb") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if len(fields) < 8 or fields[0] != b"cpu":
        return None
    v = [int(x) for x in fields[1:]]
    steal = v[7] if len(v) > 7 else 0
    busy = v[0] + v[1] + v[2] + v[5] + v[6] + steal
    return busy / _CLK_TCK, steal / _CLK_TCK


def server_command() -> list[str]:
    """The server's command line, minus its options (see ``SERVER_BOOTSTRAP``)."""
    return [sys.executable, "-c", SERVER_BOOTSTRAP, str(Path(__file__).resolve().parent)]


@dataclass(frozen=True)
class Window:
    """What the processes of one run reported about its measurement window.

    The server's ``listening`` line and its CPU samples at both ends of the
    window, the client's ``result`` and the machine's CPU (``machine_cpu()``)
    at both ends.
    """

    hello: dict[str, Any]
    s0: dict[str, Any]
    s1: dict[str, Any]
    result: dict[str, Any]
    m0: tuple[float, float] | None
    m1: tuple[float, float] | None

    @property
    def loop_type(self) -> str:
        return str(self.hello.get("loop_type"))

    def sample(self, cls: type[SampleT], **extra: Any) -> SampleT:
        """The run's :class:`RunSample` (``cls``, with ``extra`` fields)."""
        result, s0, s1, m0, m1 = self.result, self.s0, self.s1, self.m0, self.m1
        server_user_s = float(s1["utime"]) - float(s0["utime"])
        server_sys_s = float(s1["stime"]) - float(s0["stime"])
        server_wall_s = float(s1["t"]) - float(s0["t"])
        client_user_s = float(result["utime"])
        client_sys_s = float(result["stime"])
        background = steal = None
        if m0 is not None and m1 is not None and server_wall_s > 0:
            ours = server_user_s + server_sys_s
            ours += (client_user_s + client_sys_s) * server_wall_s / float(result["wall"])
            background = max(0.0, (m1[0] - m0[0] - ours) / server_wall_s)
            steal = (m1[1] - m0[1]) / server_wall_s
        return cls(
            msgs=int(result["msgs"]),
            wall_s=float(result["wall"]),
            bytes=int(result["bytes"]),
            reads=int(result["reads"]),
            verified_bytes=int(result["verified_bytes"]),
            server_user_s=server_user_s,
            server_sys_s=server_sys_s,
            server_wall_s=server_wall_s,
            client_user_s=client_user_s,
            client_sys_s=client_sys_s,
            background_cores=background,
            steal_cores=steal,
            build=build_label(self.hello["build"]) if self.hello.get("build") else None,
            **extra,
        )


def run_window(
    server_cmd: list[str],
    client_cmd: Callable[[int], list[str]],
    plan: Plan,
    env: dict[str, str],
    check_closed: Callable[[dict[str, Any]], None],
) -> Window:
    """Steps 1 to 4 of the module docstring, for any server and client.

    ``client_cmd(port)`` is the load generator's command line; the server must
    exit 0 with no call of its loop's exception handler, and pass
    ``check_closed`` (which raises :class:`RunError`) with its ``closed`` line.
    """
    deadline = time.monotonic() + plan.timeout_s + plan.warmup_s + plan.duration_s
    with tempfile.TemporaryFile() as server_err, tempfile.TemporaryFile() as client_err:
        server = subprocess.Popen(
            server_cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=server_err,
            env=env,
            bufsize=0,
        )
        client_proc: subprocess.Popen[bytes] | None = None
        try:
            srv = _Lines(server, "server")
            hello = srv.expect("listening", deadline)
            client_proc = subprocess.Popen(
                client_cmd(int(hello["port"])),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=client_err,
                env=env,
                bufsize=0,
            )
            cli = _Lines(client_proc, "client")
            ready = cli.expect("ready", deadline)
            _sleep_until(float(ready["t0"]))
            _send(server, b"r\n")
            s0 = srv.expect("sample", deadline)
            m0 = machine_cpu()
            _sleep_until(float(ready["t1"]))
            _send(server, b"r\n")
            s1 = srv.expect("sample", deadline)
            m1 = machine_cpu()
            result = cli.expect("result", deadline)
            status = _stop(client_proc, 10.0)
            if status != 0:
                raise RunError(f"client exited with status {status}")
            _send(server, b"q\n")
            closed = srv.expect("closed", deadline)
            status = _stop(server, 10.0)
            if status != 0:
                raise RunError(f"server exited with status {status}")
            if closed.get("errors"):
                errors = "; ".join(str(e) for e in closed["errors"][:3])
                raise RunError(f"server's exception handler was called: {errors}")
            check_closed(closed)
        except RunError as exc:
            if client_proc is not None:
                _stop(client_proc, 5.0)
            _stop(server, 5.0)
            detail = ""
            for name, f in (("server", server_err), ("client", client_err)):
                text = _tail(f)
                if text.strip():
                    detail += f"--- {name} stderr ---\n{text}\n"
            exc.detail = detail or None
            raise
        finally:
            if client_proc is not None and client_proc.poll() is None:
                client_proc.kill()
                client_proc.wait()
            if server.poll() is None:
                server.kill()
                server.wait()
            for proc in (server, client_proc):
                if proc is not None and proc.stdout is not None:
                    proc.stdout.close()
    return Window(hello, s0, s1, result, m0, m1)


def run_once(
    case: Case,
    loop: LoopSpec,
    client: ClientInfo,
    plan: Plan,
    env: dict[str, str],
) -> tuple[RunSample, str]:
    """Measure ``case`` on ``loop`` once; returns the sample and the loop type."""

    def command(port: int) -> list[str]:
        return client_command(
            client,
            host=HOST,
            port=port,
            conns=case.conns,
            size=case.size,
            mode=case.mode,
            warmup_s=plan.warmup_s,
            duration_s=plan.duration_s,
        )

    def check_closed(closed: dict[str, Any]) -> None:
        if int(closed.get("connections", -1)) < case.conns:
            raise RunError(f"server saw {closed.get('connections')} connections, not {case.conns}")

    server_cmd = [
        *server_command(),
        "--loop",
        loop.label,
        "--handler",
        case.handler,
        "--host",
        HOST,
        "--port",
        "0",
    ]
    window = run_window(server_cmd, command, plan, env, check_closed)
    result = window.result
    msgs = int(result["msgs"])
    if msgs <= 0:
        raise RunError("no message completed in the measurement window")
    # The client compares every byte it receives and stops at the first wrong
    # one; this checks that it did.  A message straddling the window's edges
    # is only partly verified inside it: one per connection at most.
    reply_bytes = case.size if case.mode == "echo" else len(HTTP_RESPONSE)
    if int(result["verified_bytes"]) < (msgs - case.conns) * reply_bytes:
        raise RunError(f"client verified {result['verified_bytes']} bytes of {msgs} messages")
    return window.sample(RunSample), window.loop_type
