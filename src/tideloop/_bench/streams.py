"""The stream echo benchmark: tideloop's main job, measured against asyncio and uvloop.

One *run* measures one case (handler kind, message size, connection count) on
one loop:

1. the server under test starts in a process of its own
   (``python -m tideloop._bench._echo_server --loop L --handler H --port 0``)
   and reports its port;
2. the load generator starts (the C epoll client of ``_loadgen_c``, else the
   Python one of ``_loadgen``), opens the connections and does ping-pong on
   each (request, whole reply, next request), verifying every byte; it
   announces its measurement window ``[t0, t1]`` after a warm-up;
3. at ``t0`` and ``t1`` the parent asks the server for ``getrusage`` samples
   over its control pipe; the client reports its count and its own
   ``getrusage`` over the window at ``t1``, keeping the load on until the
   parent has the server's second sample;
4. client and server are stopped; the server must exit with status 0 and
   report no exception-handler calls.

Figures: messages/s (client count over the client's window); the server's CPU
time per message, total and user-space (server CPU over its sample window
divided by the messages of that window, i.e. rate x window); the client's
CPU per message, flagged when it exceeds the server's (the client, not the
server, then sets the pace).  Rounds alternate: every round runs the whole
matrix, rotating the loop order.  Throughput keeps the best round (noise only
slows a run down) and the median; CPU per message is pooled over the rounds
(sum of CPU / sum of messages), because Linux splits user and system time by
sampling at the tick (250 Hz here), so the user part of one short window is
itself noisy.

Run it with ``python -m tideloop bench`` (the default group) or
``python benchmarks/echo.py``; see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from ._core import BenchGroup, Benchmark, LoopSpec, Timer
from ._echo_server import SERVER_BOOTSTRAP
from ._loadgen import ClientInfo, client_command, resolve_client
from ._runner import _si, _table, _worker_env, loop_versions
from ._wire import HTTP_RESPONSE

__all__ = [
    "DEFAULT_CASES",
    "FULL_CASES",
    "GROUP",
    "QUICK_CASES",
    "Case",
    "Plan",
    "StreamsReport",
    "format_streams_report",
    "main",
    "run_cli",
    "run_streams",
]

ProgressFn = Callable[[str], None]

HOST: Final = "127.0.0.1"
SIZES: Final = (64, 1024, 100 * 1024)
CONNS: Final = (10, 100)


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


def _full_cases() -> tuple[Case, ...]:
    cases = [
        Case(handler, size, conns)
        for handler in ("protocol", "buffered", "streams", "split")
        for size in SIZES
        for conns in CONNS
    ]
    cases.extend(Case("http", 0, conns) for conns in CONNS)
    return tuple(cases)


#: Every case (``--full``); ``--bench`` picks any of them by name.
FULL_CASES: Final = _full_cases()
#: The default run: 1 KiB / 10 connections for every handler kind, plus one
#: 64 B, one 100 KiB and one 100-connection case.
DEFAULT_CASES: Final = (
    Case("protocol", 1024, 10),
    Case("buffered", 1024, 10),
    Case("streams", 1024, 10),
    Case("split", 1024, 10),
    Case("http", 0, 10),
    Case("protocol", 64, 10),
    Case("protocol", 100 * 1024, 10),
    Case("protocol", 1024, 100),
)
#: ``--quick``: every handler kind once, short windows, one round.
QUICK_CASES: Final = DEFAULT_CASES[:5]

_CASES_BY_NAME: Final = {case.name: case for case in FULL_CASES}


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


# -- one run -------------------------------------------------------------------------


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

    @property
    def msgs_per_sec(self) -> float:
        return self.msgs / self.wall_s

    @property
    def server_msgs(self) -> float:
        """Messages handled during the server's sample window."""
        return self.msgs_per_sec * self.server_wall_s

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
        }


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


def server_command() -> list[str]:
    """The server's command line, minus its options (see ``SERVER_BOOTSTRAP``)."""
    return [sys.executable, "-c", SERVER_BOOTSTRAP, str(Path(__file__).resolve().parent)]


def run_once(
    case: Case,
    loop: LoopSpec,
    client: ClientInfo,
    plan: Plan,
    env: dict[str, str],
) -> tuple[RunSample, str]:
    """Measure ``case`` on ``loop`` once; returns the sample and the loop type."""
    deadline = time.monotonic() + plan.timeout_s + plan.warmup_s + plan.duration_s
    with tempfile.TemporaryFile() as server_err, tempfile.TemporaryFile() as client_err:
        server = subprocess.Popen(
            [
                *server_command(),
                "--loop", loop.label, "--handler", case.handler, "--host", HOST, "--port", "0",
            ],
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
            cmd = client_command(
                client,
                host=HOST,
                port=int(hello["port"]),
                conns=case.conns,
                size=case.size,
                mode=case.mode,
                warmup_s=plan.warmup_s,
                duration_s=plan.duration_s,
            )
            client_proc = subprocess.Popen(
                cmd,
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
            _sleep_until(float(ready["t1"]))
            _send(server, b"r\n")
            s1 = srv.expect("sample", deadline)
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
            if int(closed.get("connections", -1)) < case.conns:
                raise RunError(
                    f"server saw {closed.get('connections')} connections, not {case.conns}"
                )
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

    msgs = int(result["msgs"])
    if msgs <= 0:
        raise RunError("no message completed in the measurement window")
    # The client compares every byte it receives and stops at the first wrong
    # one; this checks that it did.  A message straddling the window's edges
    # is only partly verified inside it: one per connection at most.
    reply_bytes = case.size if case.mode == "echo" else len(HTTP_RESPONSE)
    if int(result["verified_bytes"]) < (msgs - case.conns) * reply_bytes:
        raise RunError(f"client verified {result['verified_bytes']} bytes of {msgs} messages")
    sample = RunSample(
        msgs=msgs,
        wall_s=float(result["wall"]),
        bytes=int(result["bytes"]),
        reads=int(result["reads"]),
        verified_bytes=int(result["verified_bytes"]),
        server_user_s=float(s1["utime"]) - float(s0["utime"]),
        server_sys_s=float(s1["stime"]) - float(s0["stime"]),
        server_wall_s=float(s1["t"]) - float(s0["t"]),
        client_user_s=float(result["utime"]),
        client_sys_s=float(result["stime"]),
    )
    return sample, str(hello.get("loop_type"))


# -- results -------------------------------------------------------------------------


@dataclass
class LoopStats:
    """Every round of one loop on one case."""

    loop: str
    samples: list[RunSample] = field(default_factory=list)
    loop_type: str | None = None
    error: str | None = None
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.samples)

    @property
    def best_rate(self) -> float:
        return max(s.msgs_per_sec for s in self.samples)

    @property
    def median_rate(self) -> float:
        return float(statistics.median(s.msgs_per_sec for s in self.samples))

    @property
    def spread(self) -> float:
        rates = [s.msgs_per_sec for s in self.samples]
        return (max(rates) - min(rates)) / statistics.median(rates) if len(rates) > 1 else 0.0

    def _server_msgs(self) -> float:
        return sum(s.server_msgs for s in self.samples)

    @property
    def server_us(self) -> float:
        """Server CPU (user + system) per message, µs, pooled over rounds."""
        cpu = sum(s.server_user_s + s.server_sys_s for s in self.samples)
        return cpu / self._server_msgs() * 1e6

    @property
    def server_user_us(self) -> float:
        return sum(s.server_user_s for s in self.samples) / self._server_msgs() * 1e6

    @property
    def client_us(self) -> float:
        cpu = sum(s.client_user_s + s.client_sys_s for s in self.samples)
        return cpu / sum(s.msgs for s in self.samples) * 1e6

    @property
    def client_user_us(self) -> float:
        return sum(s.client_user_s for s in self.samples) / sum(s.msgs for s in self.samples) * 1e6

    @property
    def client_share(self) -> float:
        """Client CPU per message over the server's: >= 1 means client-bound."""
        return self.client_us / self.server_us if self.server_us > 0 else float("inf")

    @property
    def client_bound(self) -> bool:
        return self.client_share >= 1.0

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "loop": self.loop,
            "loop_type": self.loop_type,
            "ok": self.ok,
            "error": self.error,
        }
        if self.ok:
            msgs = sum(s.msgs for s in self.samples)
            client_wall = sum(s.wall_s for s in self.samples)
            data.update(
                msgs_per_sec=self.best_rate,
                msgs_per_sec_median=self.median_rate,
                spread=self.spread,
                server_cpu_us_per_msg=self.server_us,
                server_user_us_per_msg=self.server_user_us,
                server_sys_us_per_msg=self.server_us - self.server_user_us,
                client_cpu_us_per_msg=self.client_us,
                client_user_us_per_msg=self.client_user_us,
                client_share=self.client_share,
                client_bound=self.client_bound,
                client_cpu_utilisation=sum(
                    s.client_user_s + s.client_sys_s for s in self.samples
                ) / client_wall,
                server_cpu_utilisation=sum(
                    s.server_user_s + s.server_sys_s for s in self.samples
                ) / sum(s.server_wall_s for s in self.samples),
                client_reads_per_msg=sum(s.reads for s in self.samples) / msgs,
                messages=msgs,
                verified_bytes=sum(s.verified_bytes for s in self.samples),
            )
        else:
            data["detail"] = self.detail
        data["rounds"] = [s.to_json() for s in self.samples]
        return data


@dataclass
class CaseResult:
    case: Case
    results: dict[str, LoopStats]

    def _pairs(self) -> list[tuple[LoopStats, LoopStats]]:
        stats = list(self.results.values())
        subjects = [r for r in stats if r.loop.startswith("tideloop")] or stats[:1]
        return [(s, o) for s in subjects for o in stats if o not in subjects]

    def ratios(self, kind: str = "best") -> dict[str, float | None]:
        """``{"tideloop/asyncio": x}``, ``> 1`` meaning tideloop is better:
        faster (``best``, ``median``) or cheaper per message (``cpu``, ``user``)."""
        out: dict[str, float | None] = {}
        for s, o in self._pairs():
            value: float | None = None
            if s.ok and o.ok:
                if kind == "best":
                    value = s.best_rate / o.best_rate
                elif kind == "median":
                    value = s.median_rate / o.median_rate
                elif kind == "cpu":
                    value = o.server_us / s.server_us if s.server_us > 0 else None
                elif kind == "user":
                    value = o.server_user_us / s.server_user_us if s.server_user_us > 0 else None
                else:
                    raise ValueError(kind)
            out[f"{s.loop}/{o.loop}"] = value
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.case.name,
            "description": self.case.description,
            "handler": self.case.handler,
            "size": self.case.size,
            "conns": self.case.conns,
            "unit": "request" if self.case.mode == "http" else "message",
            "results": {name: r.to_json() for name, r in self.results.items()},
            "ratios": self.ratios("best"),
            "ratios_median": self.ratios("median"),
            "cpu_ratios": self.ratios("cpu"),
            "user_cpu_ratios": self.ratios("user"),
        }


@dataclass
class StreamsReport:
    loops: list[str]
    quick: bool
    full: bool
    plan: Plan
    client: ClientInfo
    cases: list[CaseResult]
    elapsed: float
    versions: dict[str, str | None]

    @property
    def failed(self) -> list[tuple[str, LoopStats]]:
        return [(c.case.name, r) for c in self.cases for r in c.results.values() if not r.ok]

    def to_json(self) -> dict[str, Any]:
        return {
            "tool": "tideloop bench",
            "group": "streams",
            "quick": self.quick,
            "full": self.full,
            "rounds": self.plan.rounds,
            "warmup_s": self.plan.warmup_s,
            "duration_s": self.plan.duration_s,
            "loops": self.loops,
            "client": self.client.to_json(),
            "versions": self.versions,
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "elapsed_s": self.elapsed,
            "benchmarks": [c.to_json() for c in self.cases],
        }


def run_streams(
    cases: Sequence[Case],
    loops: Sequence[LoopSpec],
    client: ClientInfo,
    plan: Plan,
    *,
    quick: bool = False,
    full: bool = False,
    progress: ProgressFn | None = None,
) -> StreamsReport:
    """Run every case on every loop, ``plan.rounds`` times, rounds alternating."""
    labels = [spec.label for spec in loops]
    results = {case.name: {label: LoopStats(label) for label in labels} for case in cases}
    env = _worker_env()
    total = plan.rounds * len(cases) * len(loops)
    step = 0
    start = time.perf_counter()
    for rnd in range(plan.rounds):
        shift = rnd % len(loops)
        order = list(loops[shift:]) + list(loops[:shift])
        for case in cases:
            for spec in order:
                step += 1
                stats = results[case.name][spec.label]
                if stats.error is not None:
                    continue  # failed once: do not pay for it again
                head = (
                    f"[{step:>3}/{total}] streams/{case.name:<18} {spec.label:<14} "
                    f"round {rnd + 1}/{plan.rounds}"
                )
                if progress is not None:
                    progress(head)
                try:
                    sample, loop_type = run_once(case, spec, client, plan, env)
                except RunError as exc:
                    stats.error = str(exc)
                    stats.detail = exc.detail
                    if progress is not None:
                        progress(f"{head}  FAILED: {exc}")
                    continue
                stats.samples.append(sample)
                stats.loop_type = loop_type
                if progress is not None:
                    srv = (sample.server_user_s + sample.server_sys_s) / sample.server_msgs * 1e6
                    usr = sample.server_user_s / sample.server_msgs * 1e6
                    cl = (sample.client_user_s + sample.client_sys_s) / sample.msgs * 1e6
                    progress(
                        f"{head}  {_si(sample.msgs_per_sec)} msg/s  server {srv:.2f}/{usr:.2f} µs"
                        f"  client {cl:.2f} µs"
                    )
    return StreamsReport(
        loops=labels,
        quick=quick,
        full=full,
        plan=plan,
        client=client,
        cases=[CaseResult(case, results[case.name]) for case in cases],
        elapsed=time.perf_counter() - start,
        versions=loop_versions(loops),
    )


# -- formatting ----------------------------------------------------------------------


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _cpu(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def format_streams_report(report: StreamsReport) -> str:
    loops = report.loops
    plan = report.plan
    mode = "quick" if report.quick else "full matrix" if report.full else "default"
    lines = [
        f"tideloop bench --group streams ({mode}): Python {platform.python_version()} "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        f"{plan.rounds} round(s), loop order rotated; per run a fresh server process, "
        f"{plan.warmup_s:g} s warm-up, {plan.duration_s:g} s window; "
        f"load generator: {report.client.describe()}",
    ]
    vers = ", ".join(f"{k} {v}" for k, v in report.versions.items() if v)
    lines.append(f"versions: {vers}")
    if report.client.kind != "c" and report.client.note:
        lines.append(f"note: no C client ({report.client.note})")
    lines.append("")

    ratio_keys = list(report.cases[0].ratios()) if report.cases else []
    flagged = False
    rows = []
    for c in report.cases:
        row = [c.case.name]
        for lp in loops:
            r = c.results[lp]
            if not r.ok:
                row.append("FAILED")
                continue
            cell = _si(r.best_rate)
            if report.plan.rounds > 1:
                cell += f" ±{r.spread * 100:.0f}%"
            if r.client_bound:
                cell += " !"
                flagged = True
            row.append(cell)
        row.extend(_ratio(v) for v in c.ratios("best").values())
        rows.append(row)
    lines.append("Throughput, messages/s (best round ± spread; ratio > 1: the first loop is faster)")
    lines.extend(_table(["case", *loops, *ratio_keys], rows))
    if flagged:
        lines.append(
            "  ! client-bound: the load generator used more CPU per message than the server,"
            " so msg/s is the client's limit"
        )
    lines.append("")

    rows = []
    for c in report.cases:
        row = [c.case.name]
        for lp in loops:
            r = c.results[lp]
            row.append(f"{_cpu(r.server_us)} / {_cpu(r.server_user_us)}" if r.ok else "FAILED")
        row.extend(_ratio(v) for v in c.ratios("cpu").values())
        row.extend(_ratio(v) for v in c.ratios("user").values())
        rows.append(row)
    header = [
        "case",
        *loops,
        *[f"cpu {k}" for k in ratio_keys],
        *[f"user {k}" for k in ratio_keys],
    ]
    lines.append(
        "Server CPU per message, µs: total / user-space (from getrusage, pooled over rounds;"
        " ratio > 1: the first loop is cheaper)"
    )
    lines.extend(_table(header, rows))
    lines.append("")

    rows = []
    for c in report.cases:
        row = [c.case.name]
        for lp in loops:
            r = c.results[lp]
            row.append(
                f"{_cpu(r.client_us)} / {_cpu(r.client_user_us)} ({r.client_share * 100:.0f}%)"
                if r.ok
                else "FAILED"
            )
        rows.append(row)
    lines.append(
        "Load generator CPU per message, µs: total / user-space (% of the server's total),"
        " by server loop"
    )
    lines.extend(_table(["case", *loops], rows))
    lines.append("")
    for c in report.cases:
        lines.append(f"  {c.case.name:<18} {c.case.description}")
    for name, r in report.failed:
        lines.append("")
        lines.append(f"FAILED {name} on {r.loop}: {r.error}")
        if r.detail:
            lines.extend("    " + ln for ln in r.detail.rstrip().splitlines()[-16:])
    lines.append("")
    lines.append(f"total {report.elapsed:.1f} s")
    return "\n".join(lines)


# -- the command line ----------------------------------------------------------------


def select_cases(*, quick: bool, full: bool, only: Sequence[str] | None) -> list[Case]:
    if only:
        return [_CASES_BY_NAME[name] for name in only]
    if full:
        return list(FULL_CASES)
    return list(QUICK_CASES if quick else DEFAULT_CASES)


def run_cli(
    args: argparse.Namespace,
    loops: Sequence[LoopSpec],
    only: Sequence[str] | None,
    progress: ProgressFn | None,
) -> int:
    """``tideloop bench --group streams`` with parsed ``args`` (see ``_cli``)."""
    try:
        if args.repeats is not None:
            raise ValueError("--repeats applies to the micro group (streams: one window per run)")
        for opt in ("duration", "warmup"):
            value = getattr(args, opt, None)
            if value is not None and value <= 0:
                raise ValueError(f"--{opt} must be positive")
        client = resolve_client(args.client, args.client_procs)
    except (ValueError, RuntimeError) as exc:
        print(f"tideloop bench: error: {exc}", file=sys.stderr)
        return 2
    if client.kind != "c" and not args.quiet:
        print(
            f"tideloop bench: using the Python load generator ({client.note or 'requested'}); "
            "it may be slower than the servers (flagged with !)",
            file=sys.stderr,
        )
    plan = Plan.make(
        quick=args.quick,
        rounds=args.rounds,
        warmup_s=args.warmup,
        duration_s=args.duration,
        timeout_s=args.timeout,
    )
    cases = select_cases(quick=args.quick, full=args.full, only=only)
    report = run_streams(
        cases, loops, client, plan, quick=args.quick, full=args.full, progress=progress
    )
    if args.json:
        json.dump(report.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_streams_report(report))
    if report.failed:
        for name, res in report.failed:
            print(f"tideloop bench: {name} failed on {res.loop}: {res.error}", file=sys.stderr)
        return 1
    return 0


def _not_in_a_worker(loop: Any, n: int, timer: Timer) -> None:
    raise RuntimeError("stream benchmarks run a server process and a client, not a worker")


def _tagged(case: Case) -> str:
    tags = [tag for tag, cases in (("default", DEFAULT_CASES), ("quick", QUICK_CASES)) if case in cases]
    return case.description + (f" [{', '.join(tags)}]" if tags else "")


#: The group's entry in ``GROUPS``: names and descriptions for ``--list`` and
#: ``--bench``; the module's ``run_cli`` runs it (not the worker runner).
GROUP: Final = BenchGroup(
    name="streams",
    description="TCP echo and HTTP servers under a C load generator, server CPU per message",
    benchmarks=tuple(
        Benchmark(case.name, _tagged(case), "message", n=0, quick_n=0, fn=_not_in_a_worker)
        for case in FULL_CASES
    ),
    rounds=3,
    repeats=1,
    quick_rounds=1,
    quick_repeats=1,
)


def main(argv: list[str] | None = None) -> int:
    """``python benchmarks/echo.py [options]``: the streams group of ``tideloop bench``."""
    from ._cli import run_bench_main

    return run_bench_main(argv, group="streams", prog="benchmarks/echo.py")
