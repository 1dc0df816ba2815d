"""The UDP echo benchmark: datagram endpoints, tideloop against asyncio and uvloop.

The server under test (``_udp_server``) is one ``asyncio.DatagramProtocol``
echo on ``loop.create_datagram_endpoint`` (``datagram_received`` ->
``transport.sendto(data, addr)``) in a process of its own, one per loop and
run.  A load generator that costs less per datagram than the servers
(``_udp_loadgen``: a C epoll client built at bench time; else a Python one)
keeps INFLIGHT datagrams outstanding on each of SOCKETS connected UDP
sockets, verifies every echo whole (length, header, every payload byte) and
counts a datagram unanswered after ``RESEND_TIMEOUT_MS`` as lost (its slot
then sends a fresh one; an echo arriving after that is verified and counted
late).  On loopback nothing should be lost.

Figures per (case, loop), as in the ``streams`` group (whose run machinery
and statistics this module shares: ``_streams_run``, ``_streams_report``):
datagrams/s (echoes completed; the table shows the median round: ping-pong
rates on a small shared machine move too much for the best one to mean much;
the JSON has both); the server's CPU time per datagram as the OS accounts
it (``getrusage`` in the server over the window), total and user-space; the
client's CPU per datagram and its share of the server's (flagged when the
client, not the server, set the pace); ratios; lost and late datagrams.
Every round runs every case on every loop, the loop order rotated each round.

Run it with ``python -m tideloop bench --group udp`` or
``python benchmarks/udp.py``; see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

from ._core import BenchGroup, Benchmark, LoopSpec, Timer
from ._loadgen import ClientInfo
from ._runner import _si, _table, _worker_env, loop_versions
from ._streams_report import NOISY_CORES, LoopStats, _cpu, _ratio
from ._streams_run import (
    Plan,
    RunError,
    RunSample,
    _Lines,
    _send,
    _sleep_until,
    _stop,
    _tail,
    machine_cpu,
)
from ._udp_loadgen import MIN_SIZE, resolve_udp_client, udp_client_command
from ._udp_server import UDP_SERVER_BOOTSTRAP

__all__ = [
    "DEFAULT_CASES",
    "FULL_CASES",
    "GROUP",
    "QUICK_CASES",
    "RESEND_TIMEOUT_MS",
    "UdpCase",
    "UdpReport",
    "UdpSample",
    "format_udp_report",
    "main",
    "run_cli",
    "run_udp",
    "select_cases",
    "udp_server_command",
]

ProgressFn = Callable[[str], None]

HOST: Final = "127.0.0.1"
#: A datagram unanswered this long is counted lost and replaced.  Loopback
#: round trips take tens of µs; this only has to outlast a descheduled server.
RESEND_TIMEOUT_MS: Final = 100.0


@dataclass(frozen=True)
class UdpCase:
    """One cell of the matrix: datagram size, client sockets, datagrams in flight per socket."""

    size: int
    sockets: int
    inflight: int

    def __post_init__(self) -> None:
        if self.size < MIN_SIZE:
            raise ValueError(f"datagrams carry a {MIN_SIZE}-byte header: size >= {MIN_SIZE}")

    @property
    def name(self) -> str:
        size = f"{self.size // 1024}k" if self.size % 1024 == 0 else f"{self.size}b"
        return f"echo-{size}-{self.sockets}x{self.inflight}"

    @property
    def description(self) -> str:
        size = f"{self.size // 1024} KiB" if self.size % 1024 == 0 else f"{self.size} B"
        return (
            f"DatagramProtocol echo (datagram_received -> sendto), {size} datagrams, "
            f"{self.sockets} client sockets x {self.inflight} in flight"
        )


#: In-flight datagrams must fit the server socket's receive buffer (Linux's
#: default ``net.core.rmem_default``, 208 KiB, holds ~90 datagrams of 1 KiB,
#: ~25 of 4 KiB: a datagram is charged its buffer's true size, ~2.3 KiB for
#: 1 KiB of payload): the client turns each echo around at once, so when the
#: server falls behind, all of them wait in that buffer, and what does not fit
#: is dropped by the kernel, whatever the loop (the slots beyond the buffer's
#: capacity then lose every datagram: the "Loss" line counts them).
SIZES: Final = (64, 1024)
SHAPES: Final = ((10, 1), (50, 1), (10, 4))

#: Every case (``--full``); ``--bench`` picks any of them by name.
FULL_CASES: Final = (
    *(UdpCase(size, s, f) for size in SIZES for s, f in SHAPES),
    UdpCase(4096, 10, 1),
)
#: The default run: 64 B and 1 KiB from 10 sockets with one datagram in flight
#: each, 1 KiB from 50 sockets, and 1 KiB with 4 in flight per socket.
DEFAULT_CASES: Final = (
    UdpCase(64, 10, 1),
    UdpCase(1024, 10, 1),
    UdpCase(1024, 50, 1),
    UdpCase(1024, 10, 4),
)
#: ``--quick``: short windows, one round.
QUICK_CASES: Final = DEFAULT_CASES[:2]

_CASES_BY_NAME: Final = {case.name: case for case in FULL_CASES}


@dataclass(frozen=True)
class UdpSample(RunSample):
    """One (case, loop, round) run: the stream sample plus the datagram counts
    of the client's window."""

    sent: int = 0
    lost: int = 0  # timed out and replaced
    late: int = 0  # echoes of lost datagrams that came after all
    eagain: int = 0  # sends the kernel refused for lack of room (sent when writable)

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        data.update(sent=self.sent, lost=self.lost, late=self.late, eagain=self.eagain)
        return data


# -- one run ---------------------------------------------------------------------------


def udp_server_command() -> list[str]:
    """The server's command line, minus its options (see ``UDP_SERVER_BOOTSTRAP``)."""
    return [sys.executable, "-c", UDP_SERVER_BOOTSTRAP, str(Path(__file__).resolve().parent)]


def run_once(
    case: UdpCase,
    loop: LoopSpec,
    client: ClientInfo,
    plan: Plan,
    env: dict[str, str],
    timeout_ms: float = RESEND_TIMEOUT_MS,
) -> tuple[UdpSample, str]:
    """Measure ``case`` on ``loop`` once; returns the sample and the loop type.

    The stream benchmark's sequence (``_streams_run``): server up, client up
    (it announces its window), server CPU samples at both ends of the window,
    the client's result, both stopped; the server must exit 0 with no call
    of its loop's exception handler nor of ``error_received``.
    """
    deadline = time.monotonic() + plan.timeout_s + plan.warmup_s + plan.duration_s
    with tempfile.TemporaryFile() as server_err, tempfile.TemporaryFile() as client_err:
        server = subprocess.Popen(
            [*udp_server_command(), "--loop", loop.label, "--host", HOST, "--port", "0"],
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
            cmd = udp_client_command(
                client,
                host=HOST,
                port=int(hello["port"]),
                sockets=case.sockets,
                inflight=case.inflight,
                size=case.size,
                warmup_s=plan.warmup_s,
                duration_s=plan.duration_s,
                timeout_ms=timeout_ms,
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
            if closed.get("error_received"):
                errors = "; ".join(str(e) for e in closed["error_received"][:3])
                raise RunError(f"server's protocol.error_received() was called: {errors}")
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
        raise RunError("no datagram was echoed in the measurement window")
    # The client checks every echo whole before it counts it (and fails the
    # run on the first wrong one); this checks that it did.
    late = int(result["late"])
    if int(result["verified_bytes"]) != (msgs + late) * case.size:
        raise RunError(
            f"client verified {result['verified_bytes']} bytes of {msgs} + {late} datagrams"
        )
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
    sample = UdpSample(
        msgs=msgs,
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
        sent=int(result["sent"]),
        lost=int(result["lost"]),
        late=late,
        eagain=int(result["eagain"]),
    )
    return sample, str(hello.get("loop_type"))


# -- statistics and report -------------------------------------------------------------


def _udp_samples(stats: LoopStats) -> list[UdpSample]:
    return [cast(UdpSample, s) for s in stats.samples]


@dataclass
class UdpCaseResult:
    case: UdpCase
    results: dict[str, LoopStats]

    def _pairs(self) -> list[tuple[LoopStats, LoopStats]]:
        stats = list(self.results.values())
        subjects = [r for r in stats if r.loop.startswith("tideloop")] or stats[:1]
        return [(s, o) for s in subjects for o in stats if o not in subjects]

    def ratios(self, kind: str = "best") -> dict[str, float | None]:
        """``{"tideloop/asyncio": x}``, ``> 1`` meaning tideloop is better:
        faster (``best``, ``median``) or cheaper per datagram (``cpu``, ``user``)."""
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

    def loss(self, loop: str) -> tuple[int, int, int]:
        """``(sent, lost, late)`` over the rounds of ``loop``."""
        samples = _udp_samples(self.results[loop])
        return (
            sum(s.sent for s in samples),
            sum(s.lost for s in samples),
            sum(s.late for s in samples),
        )

    def to_json(self) -> dict[str, Any]:
        results: dict[str, Any] = {}
        for name, stats in self.results.items():
            data = stats.to_json()
            if stats.ok:
                sent, lost, late = self.loss(name)
                data.update(
                    sent=sent,
                    lost=lost,
                    late=late,
                    loss_rate=lost / sent if sent else 0.0,
                    eagain=sum(s.eagain for s in _udp_samples(stats)),
                )
            results[name] = data
        return {
            "name": self.case.name,
            "description": self.case.description,
            "size": self.case.size,
            "sockets": self.case.sockets,
            "inflight": self.case.inflight,
            "unit": "datagram",
            "results": results,
            "ratios": self.ratios("best"),
            "ratios_median": self.ratios("median"),
            "cpu_ratios": self.ratios("cpu"),
            "user_cpu_ratios": self.ratios("user"),
        }


@dataclass
class UdpReport:
    loops: list[str]
    quick: bool
    full: bool
    plan: Plan
    client: ClientInfo
    timeout_ms: float
    cases: list[UdpCaseResult]
    elapsed: float
    versions: dict[str, str | None]

    @property
    def failed(self) -> list[tuple[str, LoopStats]]:
        return [(c.case.name, r) for c in self.cases for r in c.results.values() if not r.ok]

    def noise(self) -> dict[str, Any] | None:
        """How busy the rest of the machine was during the windows (None off Linux)."""
        runs = [
            (s.background_cores, f"{c.case.name} {r.loop} {s.background_cores:.2f}")
            for c in self.cases
            for r in c.results.values()
            for s in r.samples
            if s.background_cores is not None
        ]
        if not runs:
            return None
        values = [v for v, _ in runs]
        noisy = sorted((run for run in runs if run[0] > NOISY_CORES), reverse=True)
        return {
            "median": float(statistics.median(values)),
            "max": max(values),
            "runs": len(runs),
            "noisy_runs": len(noisy),
            "worst": [label for _, label in noisy[:3]],
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "tool": "tideloop bench",
            "group": "udp",
            "quick": self.quick,
            "full": self.full,
            "rounds": self.plan.rounds,
            "warmup_s": self.plan.warmup_s,
            "duration_s": self.plan.duration_s,
            "resend_timeout_ms": self.timeout_ms,
            "loops": self.loops,
            "client": self.client.to_json(),
            "versions": self.versions,
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "elapsed_s": self.elapsed,
            "noise": self.noise(),
            "benchmarks": [c.to_json() for c in self.cases],
        }


def _describe_client(client: ClientInfo) -> str:
    if client.kind == "c":
        return "C epoll client (1 process)"
    return "Python selectors client (1 process)"


def format_udp_report(report: UdpReport) -> str:
    loops = report.loops
    plan = report.plan
    mode = "quick" if report.quick else "full matrix" if report.full else "default"
    lines = [
        f"tideloop bench --group udp ({mode}): Python {platform.python_version()} "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        f"{plan.rounds} round(s), loop order rotated; per run a fresh server process, "
        f"{plan.warmup_s:g} s warm-up, {plan.duration_s:g} s window; "
        f"load generator: {_describe_client(report.client)}, "
        f"resend after {report.timeout_ms:g} ms",
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
            cell = _si(r.median_rate)
            if plan.rounds > 1:
                cell += f" ±{r.spread * 100:.0f}%"
            if r.client_bound:
                cell += " !"
                flagged = True
            row.append(cell)
        row.extend(_ratio(v) for v in c.ratios("median").values())
        rows.append(row)
    lines.append(
        "Throughput, datagrams/s echoed (median of rounds ± spread; ratio of medians A/B > 1:"
        " A is faster)"
    )
    lines.extend(_table(["case", *loops, *ratio_keys], rows))
    if flagged:
        lines.append(
            "  ! client-bound: the load generator used more CPU per datagram than the server,"
            " so datagrams/s is the client's limit"
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
        "Server CPU per datagram, µs: total / user-space (getrusage; median of rounds;"
        " ratio A/B > 1: A is cheaper)"
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
        "Load generator CPU per datagram, µs: total / user-space (% of the server's total),"
        " by server loop"
    )
    lines.extend(_table(["case", *loops], rows))
    lines.append("")

    sent = lost = late = 0
    rows = []
    for c in report.cases:
        row = [c.case.name]
        for lp in loops:
            if not c.results[lp].ok:
                row.append("FAILED")
                continue
            s, lo, la = c.loss(lp)
            sent, lost, late = sent + s, lost + lo, late + la
            row.append(f"{lo} / {la}")
        rows.append(row)
    lines.append(
        f"Loss: {lost} of {sent} datagrams sent in the windows went unanswered for "
        f"{report.timeout_ms:g} ms (counted lost, replaced); {late} of them were echoed late"
    )
    if lost or late:
        lines.append("Lost / late datagrams, by server loop")
        lines.extend(_table(["case", *loops], rows))
    lines.append("")
    noise = report.noise()
    if noise is not None:
        lines.append(
            f"Noise: other processes (and steal) used median {noise['median']:.2f}, max "
            f"{noise['max']:.2f} cores during the windows; {noise['noisy_runs']} of "
            f"{noise['runs']} runs above {NOISY_CORES:g} cores"
            + (f" ({', '.join(noise['worst'])})" if noise["worst"] else "")
        )
        lines.append("")
    for c in report.cases:
        lines.append(f"  {c.case.name:<16} {c.case.description}")
    for name, r in report.failed:
        lines.append("")
        lines.append(f"FAILED {name} on {r.loop}: {r.error}")
        if r.detail:
            lines.extend("    " + ln for ln in r.detail.rstrip().splitlines()[-16:])
    lines.append("")
    lines.append(f"total {report.elapsed:.1f} s")
    return "\n".join(lines)


# -- the round robin -------------------------------------------------------------------


def run_udp(
    cases: Sequence[UdpCase],
    loops: Sequence[LoopSpec],
    client: ClientInfo,
    plan: Plan,
    *,
    quick: bool = False,
    full: bool = False,
    timeout_ms: float = RESEND_TIMEOUT_MS,
    progress: ProgressFn | None = None,
) -> UdpReport:
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
                    f"[{step:>3}/{total}] udp/{case.name:<16} {spec.label:<14} "
                    f"round {rnd + 1}/{plan.rounds}"
                )
                if progress is not None:
                    progress(head)
                try:
                    sample, loop_type = run_once(case, spec, client, plan, env, timeout_ms)
                except RunError as exc:
                    stats.error = str(exc)
                    stats.detail = exc.detail
                    if progress is not None:
                        progress(f"{head}  FAILED: {exc}")
                    continue
                stats.samples.append(sample)
                stats.loop_type = loop_type
                if progress is not None:
                    bg = sample.background_cores
                    progress(
                        f"{head}  {_si(sample.msgs_per_sec)} dgram/s  server "
                        f"{sample.server_us:.2f}/{sample.server_user_us:.2f} µs  client "
                        f"{sample.client_us:.2f} µs"
                        + (f"  lost {sample.lost}" if sample.lost else "")
                        + ("" if bg is None else f"  bg {bg:.2f}")
                    )
    return UdpReport(
        loops=labels,
        quick=quick,
        full=full,
        plan=plan,
        client=client,
        timeout_ms=timeout_ms,
        cases=[UdpCaseResult(case, results[case.name]) for case in cases],
        elapsed=time.perf_counter() - start,
        versions=loop_versions(loops),
    )


# -- the command line ------------------------------------------------------------------


def select_cases(*, quick: bool, full: bool, only: Sequence[str] | None) -> list[UdpCase]:
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
    """``tideloop bench --group udp`` with parsed ``args`` (see ``_cli``)."""
    try:
        if args.repeats is not None:
            raise ValueError("--repeats applies to the micro group (udp: one window per run)")
        if getattr(args, "client_procs", None) is not None:
            raise ValueError("--client-procs applies to the streams group (udp: one client)")
        for opt in ("duration", "warmup"):
            value = getattr(args, opt, None)
            if value is not None and value <= 0:
                raise ValueError(f"--{opt} must be positive")
        client = resolve_udp_client(getattr(args, "client", "auto"))
    except (ValueError, RuntimeError) as exc:
        print(f"tideloop bench: error: {exc}", file=sys.stderr)
        return 2
    if client.kind != "c" and not args.quiet:
        print(
            f"tideloop bench: using the Python load generator ({client.note or 'requested'}); "
            "it is slower than the servers (flagged with !)",
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
    report = run_udp(
        cases, loops, client, plan, quick=args.quick, full=args.full, progress=progress
    )
    if args.json:
        json.dump(report.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_udp_report(report))
    if report.failed:
        for name, res in report.failed:
            print(f"tideloop bench: {name} failed on {res.loop}: {res.error}", file=sys.stderr)
        return 1
    return 0


def _not_in_a_worker(loop: Any, n: int, timer: Timer) -> None:
    raise RuntimeError("UDP benchmarks run a server process and a client, not a worker")


def _tagged(case: UdpCase) -> str:
    tags = [
        tag for tag, cases in (("default", DEFAULT_CASES), ("quick", QUICK_CASES)) if case in cases
    ]
    return case.description + (f" [{', '.join(tags)}]" if tags else "")


#: The group's entry in ``GROUPS``: names and descriptions for ``--list`` and
#: ``--bench``; the module's ``run_cli`` runs it (not the worker runner).
GROUP: Final = BenchGroup(
    name="udp",
    description="UDP echo (DatagramProtocol) under a C load generator, server CPU per datagram",
    benchmarks=tuple(
        Benchmark(case.name, _tagged(case), "datagram", n=0, quick_n=0, fn=_not_in_a_worker)
        for case in FULL_CASES
    ),
    rounds=3,
    repeats=1,
    quick_rounds=1,
    quick_repeats=1,
)


def main(argv: list[str] | None = None) -> int:
    """``python benchmarks/udp.py [options]``: the udp group of ``tideloop bench``."""
    from ._cli import run_bench_main

    return run_bench_main(argv, group="udp", prog="benchmarks/udp.py")
