"""The stream benchmark's load generators: which one to run, and the Python one.

The preferred client is the C epoll client of ``_loadgen_c`` (built at bench
time, cached).  Without a C compiler (or off Linux) this module's Python
client stands in: ``--procs`` processes (one per core by default), each
driving its share of the connections with ``selectors`` and non-blocking
sockets.  It costs more per message than a fast server, so the report flags
the runs it saturates; it exists so that the benchmark still runs and still
verifies the servers.

Both clients behave the same (the C source documents it): ping-pong on every
connection, every received byte compared with what was expected, JSON lines
on stdout (``ready`` with the window ``[t0, t1]`` in ``time.monotonic()``
seconds, then ``result`` at ``t1`` with counts and ``getrusage`` deltas, or
``error``), and the load kept on after the result until stdin has data or
reaches EOF.

    python -m benchmarks._loadgen HOST PORT CONNS SIZE echo|http WARMUP_S DURATION_S
        [--procs N]

Imports: standard library only (no asyncio: the client is not under test).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ._env import child_env
from ._loadgen_c import build_c_client
from ._wire import HTTP_REQUEST, HTTP_RESPONSE

__all__ = [
    "STDIN_TAG",
    "ClientError",
    "ClientInfo",
    "client_command",
    "dispatch",
    "emit",
    "main",
    "resolve_client",
    "run_client",
    "watch_stdin",
]

PATTERN_SLACK: Final = 4096
RECV_BUF_BYTES: Final = 256 * 1024
READ: Final = selectors.EVENT_READ
WRITE: Final = selectors.EVENT_WRITE


@dataclass(frozen=True)
class ClientInfo:
    """The load generator of a run: ``kind`` is ``"c"`` or ``"python"``."""

    kind: str
    path: str | None  # the C binary
    procs: int  # processes of the Python client (1 for C)
    note: str | None  # why the C client is not used, or where it came from

    def describe(self) -> str:
        if self.kind == "c":
            return "C epoll client (1 process)"
        return f"Python selectors client ({self.procs} processes)"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": self.path, "procs": self.procs, "note": self.note}


def resolve_client(choice: str = "auto", procs: int | None = None) -> ClientInfo:
    """Pick the load generator: ``auto`` (C when it builds), ``c`` or ``python``.

    Raises RuntimeError for ``c`` when the C client cannot be built.
    """
    if choice not in ("auto", "c", "python"):
        raise ValueError(f"unknown client {choice!r}: expected auto, c or python")
    note = None
    if choice in ("auto", "c"):
        built = build_c_client()
        if built.path is not None:
            how = "cached" if built.cached else "built"
            return ClientInfo("c", str(built.path), 1, f"{how} with {built.compiler}")
        if choice == "c":
            raise RuntimeError(built.reason or "the C client is not available")
        note = built.reason
    nprocs = procs if procs is not None else max(1, min(4, os.cpu_count() or 1))
    return ClientInfo("python", None, nprocs, note)


def client_command(
    client: ClientInfo,
    *,
    host: str,
    port: int,
    conns: int,
    size: int,
    mode: str,
    warmup_s: float,
    duration_s: float,
) -> list[str]:
    args = [host, str(port), str(conns), str(size), mode, f"{warmup_s:g}", f"{duration_s:g}"]
    if client.kind == "c":
        assert client.path is not None
        return [client.path, *args]
    return [sys.executable, "-m", "benchmarks._loadgen", *args, "--procs", str(client.procs)]


# -- the Python client ----------------------------------------------------------


class ClientError(Exception):
    """What ends a client's run: an ``error`` line on stdout, exit status 3."""


#: The selector key of stdin (data or EOF there: stop) in the Python clients.
STDIN_TAG: Final = -1


def watch_stdin(sel: selectors.BaseSelector) -> bool:
    """Watch stdin in ``sel``; False when it cannot be polled (a file,
    /dev/null): the client then stops after its result."""
    try:
        sel.register(0, selectors.EVENT_READ, STDIN_TAG)
        return True
    except (OSError, ValueError):
        return False


def dispatch(
    ready: list[tuple[selectors.SelectorKey, int]],
    state: int,
    on_read: Callable[[Any], None],
    on_write: Callable[[Any], None],
) -> bool:
    """Hand one ``select()``'s events to ``on_read``/``on_write`` (with the
    key's data); True when stdin says stop, which is an error before the
    result is out (``state`` 2)."""
    for key, events in ready:
        obj = key.data
        if obj is STDIN_TAG:
            if state == 2:
                return True
            raise ClientError("stopped before the end of the measurement")
        if events & READ:
            on_read(obj)
        if events & WRITE:
            on_write(obj)
    return False


def emit(obj: dict[str, Any]) -> None:
    """One JSON line on stdout."""
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def run_client(body: Callable[[], int]) -> int:
    """A client's ``main`` after its arguments: SIGINT ignored (the parent
    stops it by closing stdin); a :class:`ClientError` or OSError becomes an
    ``error`` line and exit status 3."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return body()
    except (ClientError, OSError) as exc:
        emit({"event": "error", "message": str(exc)})
        return 3


class _Conn:
    __slots__ = ("exp", "fd", "idx", "out", "out_armed", "recvd", "sent", "seq", "sock")

    def __init__(self, sock: socket.socket, idx: int) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.idx = idx
        self.seq = 0
        self.out: memoryview = memoryview(b"")
        self.exp: bytes = b""
        self.sent = 0
        self.recvd = 0
        self.out_armed = False


class _Client:
    """One process's share of the connections."""

    def __init__(self, host: str, port: int, conns: int, size: int, mode: str, first: int) -> None:
        self.http = mode == "http"
        self.size = size
        self.pattern = b"" if self.http else random.Random(first).randbytes(size + PATTERN_SLACK)
        self.sel = selectors.DefaultSelector()
        self.conns: list[_Conn] = []
        self.buf = bytearray(RECV_BUF_BYTES)
        self.view = memoryview(self.buf)
        self.msgs = self.bytes_in = self.reads = self.verified = self.iterations = 0
        for i in range(conns):
            sock = socket.create_connection((host, port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            conn = _Conn(sock, first + i)
            self.conns.append(conn)
            self.sel.register(conn.fd, selectors.EVENT_READ, conn)
        self.stdin_polled = watch_stdin(self.sel)

    def _next(self, c: _Conn) -> None:
        if self.http:
            c.out = memoryview(HTTP_REQUEST)
            c.exp = HTTP_RESPONSE
        else:
            off = (c.seq * 2654435761 + c.idx * 40503) % PATTERN_SLACK
            c.exp = self.pattern[off : off + self.size]
            c.out = memoryview(c.exp)
        c.sent = c.recvd = 0

    def _send(self, c: _Conn) -> None:
        while c.sent < len(c.out):
            try:
                c.sent += c.sock.send(c.out[c.sent :])
            except BlockingIOError:
                if not c.out_armed:
                    self.sel.modify(c.fd, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
                    c.out_armed = True
                return
            except OSError as exc:
                raise ClientError(f"send on connection {c.idx}: {exc}")
        if c.out_armed:
            self.sel.modify(c.fd, selectors.EVENT_READ, c)
            c.out_armed = False

    def _recv(self, c: _Conn) -> None:
        try:
            n = c.sock.recv_into(self.buf)
        except BlockingIOError:
            return
        except OSError as exc:
            raise ClientError(f"recv on connection {c.idx}: {exc}")
        if n == 0:
            raise ClientError(
                f"connection {c.idx} closed by the server after {c.recvd} of "
                f"{len(c.exp)} reply bytes (message {c.seq})"
            )
        self.reads += 1
        if c.recvd + n > len(c.exp):
            raise ClientError(
                f"connection {c.idx}: {c.recvd + n} reply bytes where {len(c.exp)} "
                f"were expected (message {c.seq})"
            )
        if not c.exp.startswith(self.view[:n], c.recvd):
            raise ClientError(
                f"connection {c.idx}: reply bytes {c.recvd}..{c.recvd + n} differ from "
                f"the expected ones (message {c.seq})"
            )
        self.verified += n
        self.bytes_in += n
        c.recvd += n
        if c.recvd == len(c.exp):
            if c.sent != len(c.out):
                raise ClientError(f"connection {c.idx}: whole reply before the request was sent")
            self.msgs += 1
            c.seq += 1
            self._next(c)
            self._send(c)

    def run(self, t0: float, t1: float) -> None:
        """Load until ``t0``, measure until ``t1`` (print the result), then
        keep the load on until stdin says stop."""
        for c in self.conns:
            self._next(c)
            self._send(c)
        state = 0
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        m0 = b0 = r0 = v0 = i0 = 0
        w0 = 0.0
        select = self.sel.select
        on_read, on_write = self._recv, self._send
        while True:
            timeout = (
                None if state == 2 else max(0.0, (t0 if state == 0 else t1) - time.monotonic())
            )
            if dispatch(select(timeout), state, on_read, on_write):
                return
            self.iterations += 1
            if state < 2:
                t = time.monotonic()
                if state == 0 and t >= t0:
                    ru0 = resource.getrusage(resource.RUSAGE_SELF)
                    m0, b0, r0, v0, i0 = (
                        self.msgs,
                        self.bytes_in,
                        self.reads,
                        self.verified,
                        self.iterations,
                    )
                    w0 = t
                    state = 1
                elif state == 1 and t >= t1:
                    ru1 = resource.getrusage(resource.RUSAGE_SELF)
                    emit(
                        {
                            "event": "result",
                            "msgs": self.msgs - m0,
                            "bytes": self.bytes_in - b0,
                            "reads": self.reads - r0,
                            "verified_bytes": self.verified - v0,
                            "iterations": self.iterations - i0,
                            "wall": t - w0,
                            "utime": ru1.ru_utime - ru0.ru_utime,
                            "stime": ru1.ru_stime - ru0.ru_stime,
                            "t_start": w0,
                            "t_end": t,
                        }
                    )
                    state = 2
                    if not self.stdin_polled:
                        return


def _worker(args: argparse.Namespace) -> int:
    """``--worker FIRST``: connect, say so, wait for ``T0 T1`` on stdin, run."""
    client = _Client(args.host, args.port, args.conns, args.size, args.mode, args.worker)
    emit({"event": "connected"})
    # The go line arrives before any stop request, so a blocking read is fine.
    line = sys.stdin.buffer.readline().split()
    if len(line) != 2:
        return 0  # the coordinator gave up
    client.run(float(line[0]), float(line[1]))
    return 0


def _read_event(proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    assert proc.stdout is not None
    while True:
        line = proc.stdout.readline()
        if not line:
            raise ClientError(f"client worker {proc.pid} exited with status {proc.wait()}")
        if line.strip():
            event: dict[str, Any] = json.loads(line)
            if event.get("event") == "error":
                raise ClientError(str(event.get("message")))
            return event


def _coordinate(args: argparse.Namespace) -> int:
    """Split the connections over ``--procs`` workers and merge their results."""
    nprocs = max(1, min(args.procs, args.conns))
    shares = [args.conns // nprocs + (1 if i < args.conns % nprocs else 0) for i in range(nprocs)]
    procs: list[subprocess.Popen[bytes]] = []
    first = 0
    try:
        for share in shares:
            cmd = [
                sys.executable,
                "-m",
                "benchmarks._loadgen",
                args.host,
                str(args.port),
                str(share),
                str(args.size),
                args.mode,
                str(args.warmup),
                str(args.duration),
                "--worker",
                str(first),
            ]
            procs.append(
                subprocess.Popen(
                    cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=child_env()
                )
            )
            first += share
        for proc in procs:
            _read_event(proc)  # connected
        t0 = time.monotonic() + args.warmup
        t1 = t0 + args.duration
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(f"{t0!r} {t1!r}\n".encode())
            proc.stdin.flush()
        emit(
            {
                "event": "ready",
                "t0": t0,
                "t1": t1,
                "conns": args.conns,
                "pid": os.getpid(),
                "client": "python",
                "procs": nprocs,
            }
        )
        results = [_read_event(proc) for proc in procs]
        total: dict[str, Any] = {"event": "result"}
        for key in ("msgs", "bytes", "reads", "verified_bytes", "iterations", "utime", "stime"):
            total[key] = sum(r[key] for r in results)
        total["t_start"] = min(r["t_start"] for r in results)
        total["t_end"] = max(r["t_end"] for r in results)
        total["wall"] = sum(r["wall"] for r in results) / len(results)
        emit(total)
        sys.stdin.buffer.read()  # until the parent closes our stdin (or writes)
        return 0
    finally:
        for proc in procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks._loadgen",
        description="Python load generator of the stream benchmark (see the module docstring).",
    )
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("conns", type=int)
    parser.add_argument("size", type=int)
    parser.add_argument("mode", choices=("echo", "http"))
    parser.add_argument("warmup", type=float)
    parser.add_argument("duration", type=float)
    parser.add_argument("--procs", type=int, default=1)
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        return run_client(lambda: _worker(args))
    return run_client(lambda: _coordinate(args))


if __name__ == "__main__":
    sys.exit(main())
