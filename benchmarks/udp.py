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

Run it with ``python -m benchmarks --group udp`` or
``python -m benchmarks.udp`` from the repository's root; see
benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final, cast

from ._core import LoopSpec
from ._loadgen import ClientInfo
from ._runner import _table
from ._server_bench import CaseMatrix, check_positive, refuse_repeats, run_report, run_server_cli
from ._streams_report import (
    CaseStats,
    LoopStats,
    ServerReport,
    cpu_lines,
    head_lines,
    tail_lines,
    throughput_lines,
)
from ._streams_run import Plan, RunError, RunSample, run_window
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

MATRIX: Final = CaseMatrix(FULL_CASES, DEFAULT_CASES, QUICK_CASES)


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

    The stream benchmark's sequence (``_streams_run.run_window``): server up, client up
    (it announces its window), server CPU samples at both ends of the window,
    the client's result, both stopped; the server must exit 0 with no call
    of its loop's exception handler nor of ``error_received``.
    """

    def command(port: int) -> list[str]:
        return udp_client_command(
            client,
            host=HOST,
            port=port,
            sockets=case.sockets,
            inflight=case.inflight,
            size=case.size,
            warmup_s=plan.warmup_s,
            duration_s=plan.duration_s,
            timeout_ms=timeout_ms,
        )

    def check_closed(closed: dict[str, Any]) -> None:
        if closed.get("error_received"):
            errors = "; ".join(str(e) for e in closed["error_received"][:3])
            raise RunError(f"server's protocol.error_received() was called: {errors}")

    server_cmd = [*udp_server_command(), "--loop", loop.label, "--host", HOST, "--port", "0"]
    window = run_window(server_cmd, command, plan, env, check_closed)
    result = window.result
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
    sample = window.sample(
        UdpSample,
        sent=int(result["sent"]),
        lost=int(result["lost"]),
        late=late,
        eagain=int(result["eagain"]),
    )
    return sample, window.loop_type


# -- statistics and report -------------------------------------------------------------


def _udp_samples(stats: LoopStats) -> list[UdpSample]:
    return [cast(UdpSample, s) for s in stats.samples]


class UdpCaseResult(CaseStats[UdpCase]):
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
            **self.ratios_json(),
        }


@dataclass
class UdpReport(ServerReport[UdpCaseResult]):
    timeout_ms: float

    group: ClassVar[str] = "udp"

    def settings_json(self) -> dict[str, Any]:
        return {"resend_timeout_ms": self.timeout_ms}


def _describe_client(client: ClientInfo) -> str:
    if client.kind == "c":
        return "C epoll client (1 process)"
    return "Python selectors client (1 process)"


def format_udp_report(report: UdpReport) -> str:
    lines = head_lines(
        report,
        f"{_describe_client(report.client)}, resend after {report.timeout_ms:g} ms",
    )
    lines += throughput_lines(
        report,
        kind="median",
        title="Throughput, datagrams/s echoed (median of rounds ± spread; ratio of medians"
        " A/B > 1: A is faster)",
        unit="datagram",
        rate="datagrams/s",
    )
    lines += cpu_lines(report, "datagram")

    sent = lost = late = 0
    rows = []
    for c in report.cases:
        row = [c.case.name]
        for lp in report.loops:
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
        lines.extend(_table(["case", *report.loops], rows))
    lines.append("")
    lines += tail_lines(report, 16)
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

    def run(case: UdpCase, spec: LoopSpec, env: dict[str, str]) -> tuple[UdpSample, str]:
        return run_once(case, spec, client, plan, env, timeout_ms)

    def note(sample: UdpSample) -> str:
        return f"  lost {sample.lost}" if sample.lost else ""

    return run_report(
        UdpReport,
        UdpCaseResult,
        cases,
        loops,
        client,
        plan,
        run,
        quick=quick,
        full=full,
        name_width=16,
        rate="dgram/s",
        note=note,
        progress=progress,
        timeout_ms=timeout_ms,
    )


# -- the command line ------------------------------------------------------------------

select_cases: Final = MATRIX.select


def run_cli(
    args: argparse.Namespace,
    loops: Sequence[LoopSpec],
    only: Sequence[str] | None,
    progress: ProgressFn | None,
) -> int:
    """``python -m benchmarks --group udp`` with parsed ``args`` (see ``_cli``)."""

    def resolve() -> ClientInfo:
        refuse_repeats(args, "udp")
        if getattr(args, "client_procs", None) is not None:
            raise ValueError("--client-procs applies to the streams group (udp: one client)")
        check_positive(args, ("duration", "warmup"))
        return resolve_udp_client(getattr(args, "client", "auto"))

    return run_server_cli(
        args,
        loops,
        only,
        progress,
        resolve=resolve,
        matrix=MATRIX,
        run=run_udp,
        format_report=format_udp_report,
        slower="is slower",
    )


#: The group's entry in ``GROUPS`` (see ``CaseMatrix.group``).
GROUP: Final = MATRIX.group(
    name="udp",
    description="UDP echo (DatagramProtocol) under a C load generator, server CPU per datagram",
    unit="datagram",
    what="UDP",
)


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.udp [options]``: ``python -m benchmarks --group udp``."""
    from ._cli import run_bench_main

    return run_bench_main(argv, group="udp")


if __name__ == "__main__":
    sys.exit(main())
