"""Statistics and the report of the stream benchmark.

Throughput keeps the best round (noise only slows a run down) and the median.
CPU per message is the median of the rounds: on a shared machine one round
is often disturbed by other processes (the report measures how much: the
machine's CPU time not spent by server or client, ``background_cores``), and
the median ignores one bad round of three.  The JSON report also has the
figures pooled over the rounds (sum of CPU / sum of messages), the better
estimate on a quiet machine: Linux splits CPU time into user and system time
by sampling at the timer tick (250 Hz on the reference machines), so the
user part of one short window is itself noisy.
Ratios are "the subject" (each tideloop loop, else the first loop) against
every other loop, oriented so that ``> 1`` always means the subject is better:
faster, or cheaper per message.
"""

from __future__ import annotations

import os
import platform
import statistics
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Generic, Protocol, TypeVar

from ._loadgen import ClientInfo
from ._runner import RatioFns, _si, _table, builds_line, merge_build, pair_ratios
from ._streams_run import Case, Plan, RunSample

__all__ = [
    "NOISY_CORES",
    "CaseResult",
    "CaseStats",
    "LoopStats",
    "ServerReport",
    "StreamsReport",
    "cpu_lines",
    "format_streams_report",
    "head_lines",
    "tail_lines",
    "throughput_lines",
]

#: Background load (cores used by other processes during a window) above
#: which a run counts as disturbed in the report's noise line.
NOISY_CORES: Final = 0.25


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

    def _median(self, values: list[float]) -> float:
        return float(statistics.median(values))

    @property
    def server_us(self) -> float:
        """Server CPU (user + system) per message, µs: median of the rounds."""
        return self._median([s.server_us for s in self.samples])

    @property
    def server_user_us(self) -> float:
        return self._median([s.server_user_us for s in self.samples])

    @property
    def client_us(self) -> float:
        return self._median([s.client_us for s in self.samples])

    @property
    def client_user_us(self) -> float:
        return self._median([s.client_user_us for s in self.samples])

    def pooled(self) -> dict[str, float]:
        """CPU per message over all rounds together (sum of CPU / sum of messages)."""
        server_msgs = sum(s.server_msgs for s in self.samples)
        msgs = sum(s.msgs for s in self.samples)
        return {
            "server_cpu_us_per_msg": sum(s.server_user_s + s.server_sys_s for s in self.samples)
            / server_msgs
            * 1e6,
            "server_user_us_per_msg": sum(s.server_user_s for s in self.samples)
            / server_msgs
            * 1e6,
            "client_cpu_us_per_msg": sum(s.client_user_s + s.client_sys_s for s in self.samples)
            / msgs
            * 1e6,
        }

    @property
    def build(self) -> str | None:
        """tideloop rows: the build the servers ran (``_build.build_label``)."""
        seen: str | None = None
        for s in self.samples:
            seen = merge_build(seen, s.build)
        return seen

    @property
    def background_cores(self) -> float | None:
        values = [s.background_cores for s in self.samples if s.background_cores is not None]
        return max(values) if values else None

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
            "build": self.build,
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
                client_cpu_utilisation=sum(s.client_user_s + s.client_sys_s for s in self.samples)
                / client_wall,
                server_cpu_utilisation=sum(s.server_user_s + s.server_sys_s for s in self.samples)
                / sum(s.server_wall_s for s in self.samples),
                client_reads_per_msg=sum(s.reads for s in self.samples) / msgs,
                pooled=self.pooled(),
                background_cores_max=self.background_cores,
                messages=msgs,
                verified_bytes=sum(s.verified_bytes for s in self.samples),
            )
        else:
            data["detail"] = self.detail
        data["rounds"] = [s.to_json() for s in self.samples]
        return data


class _Case(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...


CaseT = TypeVar("CaseT", bound=_Case)

#: ``CaseStats.ratios``: the subject's rate over the other's (``best``,
#: ``median``), the other's CPU per message over the subject's (``cpu``, ``user``).
_RATIOS: RatioFns[LoopStats] = {
    "best": lambda s, o: s.best_rate / o.best_rate,
    "median": lambda s, o: s.median_rate / o.median_rate,
    "cpu": lambda s, o: o.server_us / s.server_us if s.server_us > 0 else None,
    "user": lambda s, o: o.server_user_us / s.server_user_us if s.server_user_us > 0 else None,
}


@dataclass
class CaseStats(Generic[CaseT]):
    """Every loop's rounds of one case (of the streams or the udp group)."""

    case: CaseT
    results: dict[str, LoopStats]

    def ratios(self, kind: str = "best") -> dict[str, float | None]:
        """``{"tideloop/asyncio": x}``, ``> 1`` meaning tideloop is better:
        faster (``best``, ``median``) or cheaper per message (``cpu``, ``user``)."""
        return pair_ratios(list(self.results.values()), kind, _RATIOS, first_if_no_tideloop=True)

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError

    def ratios_json(self) -> dict[str, Any]:
        return {
            "ratios": self.ratios("best"),
            "ratios_median": self.ratios("median"),
            "cpu_ratios": self.ratios("cpu"),
            "user_cpu_ratios": self.ratios("user"),
        }


class CaseResult(CaseStats[Case]):
    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.case.name,
            "description": self.case.description,
            "handler": self.case.handler,
            "size": self.case.size,
            "conns": self.case.conns,
            "unit": "request" if self.case.mode == "http" else "message",
            "results": {name: r.to_json() for name, r in self.results.items()},
            **self.ratios_json(),
        }


ResultT = TypeVar("ResultT", bound=CaseStats[Any])


@dataclass
class ServerReport(Generic[ResultT]):
    """The report of a group of server runs (``streams``, ``udp``)."""

    loops: list[str]
    quick: bool
    full: bool
    plan: Plan
    client: ClientInfo
    cases: list[ResultT]
    elapsed: float
    versions: dict[str, str | None]

    #: The ``--group`` name.
    group: ClassVar[str] = ""

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

    def builds(self) -> dict[str, str | None]:
        """``{tideloop row: build label}`` (None where no run of the row worked)."""
        out: dict[str, str | None] = {}
        for label in self.loops:
            if label.startswith("tideloop"):
                seen: str | None = None
                for c in self.cases:
                    seen = merge_build(seen, c.results[label].build)
                out[label] = seen
        return out

    def settings_json(self) -> dict[str, Any]:
        """The group's own settings, after the plan's in the JSON report."""
        return {}

    def to_json(self) -> dict[str, Any]:
        return {
            "tool": "tideloop bench",
            "group": self.group,
            "quick": self.quick,
            "full": self.full,
            "rounds": self.plan.rounds,
            "warmup_s": self.plan.warmup_s,
            "duration_s": self.plan.duration_s,
            **self.settings_json(),
            "loops": self.loops,
            "builds": self.builds(),
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


@dataclass
class StreamsReport(ServerReport[CaseResult]):
    group: ClassVar[str] = "streams"


# -- formatting ----------------------------------------------------------------------


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _cpu(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def head_lines(report: ServerReport[Any], loadgen: str) -> list[str]:
    """The report's first lines: the machine, the plan, the versions."""
    plan = report.plan
    mode = "quick" if report.quick else "full matrix" if report.full else "default"
    lines = [
        f"tideloop bench --group {report.group} ({mode}): Python {platform.python_version()} "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        f"{plan.rounds} round(s), loop order rotated; per run a fresh server process, "
        f"{plan.warmup_s:g} s warm-up, {plan.duration_s:g} s window; "
        f"load generator: {loadgen}",
    ]
    vers = ", ".join(f"{k} {v}" for k, v in report.versions.items() if v)
    lines.append(f"versions: {vers}")
    builds = builds_line(report.builds())
    if builds:
        lines.append(builds)
    if report.client.kind != "c" and report.client.note:
        lines.append(f"note: no C client ({report.client.note})")
    lines.append("")
    return lines


def _ratio_keys(report: ServerReport[Any]) -> list[str]:
    return list(report.cases[0].ratios()) if report.cases else []


def throughput_lines(
    report: ServerReport[Any], *, kind: str, title: str, unit: str, rate: str
) -> list[str]:
    """The throughput table: each loop's ``best`` or ``median`` rate, ratios."""
    loops = report.loops
    flagged = False
    rows = []
    for c in report.cases:
        row = [c.case.name]
        for lp in loops:
            r = c.results[lp]
            if not r.ok:
                row.append("FAILED")
                continue
            cell = _si(r.best_rate if kind == "best" else r.median_rate)
            if report.plan.rounds > 1:
                cell += f" ±{r.spread * 100:.0f}%"
            if r.client_bound:
                cell += " !"
                flagged = True
            row.append(cell)
        row.extend(_ratio(v) for v in c.ratios(kind).values())
        rows.append(row)
    lines = [title]
    lines.extend(_table(["case", *loops, *_ratio_keys(report)], rows))
    if flagged:
        lines.append(
            f"  ! client-bound: the load generator used more CPU per {unit} than the server,"
            f" so {rate} is the client's limit"
        )
    lines.append("")
    return lines


def cpu_lines(report: ServerReport[Any], unit: str) -> list[str]:
    """The server's and the load generator's CPU per message tables."""
    loops = report.loops
    ratio_keys = _ratio_keys(report)
    rows = []
    for c in report.cases:
        row = [c.case.name]
        for lp in loops:
            r = c.results[lp]
            row.append(f"{_cpu(r.server_us)} / {_cpu(r.server_user_us)}" if r.ok else "FAILED")
        cpu, user = c.ratios("cpu"), c.ratios("user")
        row.extend(f"{_ratio(cpu[k])} / {_ratio(user[k])}" for k in cpu)
        rows.append(row)
    header = ["case", *loops, *ratio_keys]
    lines = [
        f"Server CPU per {unit}, µs: total / user-space (getrusage; median of rounds;"
        " ratios A/B of total / of user-space > 1: A is cheaper)"
    ]
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
        f"Load generator CPU per {unit}, µs: total / user-space (% of the server's total),"
        " by server loop"
    )
    lines.extend(_table(["case", *loops], rows))
    lines.append("")
    return lines


def tail_lines(report: ServerReport[Any], name_width: int) -> list[str]:
    """The report's last lines: noise, what each case is, failures, time taken."""
    lines = []
    name_width = max([name_width, *(len(c.case.name) for c in report.cases)])
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
        lines.append(f"  {c.case.name:<{name_width}} {c.case.description}")
    for name, r in report.failed:
        lines.append("")
        lines.append(f"FAILED {name} on {r.loop}: {r.error}")
        if r.detail:
            lines.extend("    " + ln for ln in r.detail.rstrip().splitlines()[-16:])
    lines.append("")
    lines.append(f"total {report.elapsed:.1f} s")
    return lines


def format_streams_report(report: StreamsReport) -> str:
    lines = head_lines(report, report.client.describe())
    lines += throughput_lines(
        report,
        kind="best",
        title="Throughput, messages/s (best round ± spread; ratio A/B > 1: A is faster)",
        unit="message",
        rate="msg/s",
    )
    lines += cpu_lines(report, "message")
    lines += tail_lines(report, 18)
    return "\n".join(lines)
