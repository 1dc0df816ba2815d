"""Loop health metrics, opt-in: timer lag, busy/idle time, slow callbacks.

``loop.stats()`` holds the counters that are always on. What this module
measures costs a clock read or two per callback, so it is off unless the loop
is made with ``new_event_loop(metrics=True)`` or ``TIDELOOP_METRICS=1`` is set
in the environment. ``loop.metrics()`` returns a :class:`LoopMetrics` snapshot.

What is measured:
- **lag**: for each timer callback, how late it ran (loop time when it ran
  minus its deadline), in a histogram with fixed log-spaced buckets (1-2-5 per
  decade, 10 µs to 10 s, then one overflow bucket), with count, sum and max;
- **busy and idle time**: the time the loop ran, split into the time spent
  waiting in the backend's poll (idle) and the rest (busy: running callbacks,
  timers, flushing writes); utilisation is busy / total. These come from the
  always-on counters of ``loop.stats()`` (``run_seconds``, ``poll_seconds``,
  ``polls``: one poll per iteration), so they cost nothing more;
- **slow callbacks**: callbacks that ran at least ``loop.slow_callback_duration``
  seconds (asyncio's setting, 0.1 by default), in or out of debug mode: a count,
  the last ``SLOW_CALLBACKS_KEPT`` of them and the slowest ``SLOW_CALLBACKS_KEPT``,
  each with asyncio's name for the handle and its duration.

How the meter joins a loop, without a second copy of the run loop: the
loop's constructor makes a ``Meter`` and replaces the loop's handle runner
(on the instance) with ``LoopCore._run_handles_metered``, which runs each
handle through the one runner and reports to the meter (``record_lag``,
``record_callback``). Debug mode's runner wraps that in turn.
A loop without metrics runs exactly the code it runs today.

Must not import the loop module (the loop imports this one).
"""

from __future__ import annotations

import bisect
import heapq
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from ._handles import format_handle

__all__ = ["LAG_BUCKET_BOUNDS_S", "LagHistogram", "LoopMetrics", "SlowCallback"]

logger = logging.getLogger("asyncio")
_monotonic = time.monotonic

# Upper bounds (inclusive) of the lag buckets, in seconds: 1-2-5 per decade
# from 10 µs to 10 s. One more bucket counts what is above the last bound.
LAG_BUCKET_BOUNDS_S: tuple[float, ...] = tuple(
    round(m * 10.0**e, 9) for e in range(-5, 2) for m in (1, 2, 5) if m * 10.0**e <= 10.0
)
SLOW_CALLBACKS_KEPT = 10


def metrics_enabled_by_default() -> bool:
    """``TIDELOOP_METRICS=1`` (or a ``collect()`` in progress) turns metrics on."""
    if _collector is not None:
        return True
    return os.environ.get("TIDELOOP_METRICS", "").strip() not in ("", "0")


@dataclass(frozen=True)
class SlowCallback:
    """A callback that ran at least the slow-callback threshold."""

    name: str
    seconds: float


@dataclass(frozen=True)
class LagHistogram:
    """How late timer callbacks ran, in seconds of loop time."""

    count: int
    sum: float
    max: float
    bounds: tuple[float, ...]
    #: ``len(bounds) + 1`` counts: bucket i holds lags <= bounds[i] (and above
    #: bounds[i - 1]); the last one holds the lags above every bound.
    counts: tuple[int, ...]

    @property
    def mean(self) -> float:
        return self.sum / self.count if self.count else 0.0

    def quantile(self, q: float) -> float:
        """An upper estimate of the ``q`` quantile (0 < q <= 1): the bound of
        the bucket that holds it, or ``max`` when that is smaller or the
        quantile lies in the overflow bucket. 0.0 when nothing was measured."""
        if not 0.0 < q <= 1.0:
            raise ValueError(f"q must be in (0, 1], got {q!r}")
        if not self.count:
            return 0.0
        rank = q * self.count
        seen = 0
        for i, n in enumerate(self.counts):
            seen += n
            if seen >= rank and n:
                if i < len(self.bounds):
                    return min(self.bounds[i], self.max)
                break
        return self.max


@dataclass(frozen=True)
class LoopMetrics:
    """A snapshot of a loop's health (``loop.metrics()``)."""

    #: run-loop iterations and callbacks run since the loop was made
    iterations: int
    callbacks: int
    #: seconds spent running (busy) and waiting in the backend's poll (idle)
    busy_seconds: float
    idle_seconds: float
    lag: LagHistogram
    #: the threshold in force (the loop's ``slow_callback_duration``)
    slow_callback_threshold: float
    slow_callbacks: int
    #: the last slow callbacks, oldest first
    recent_slow_callbacks: tuple[SlowCallback, ...]
    #: the slowest callbacks seen, slowest first
    slowest_callbacks: tuple[SlowCallback, ...]

    @property
    def utilisation(self) -> float:
        """busy / (busy + idle), 0.0 before the loop ran."""
        total = self.busy_seconds + self.idle_seconds
        return self.busy_seconds / total if total > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """Plain values (for JSON, logs)."""
        return {
            "iterations": self.iterations,
            "callbacks": self.callbacks,
            "busy_seconds": self.busy_seconds,
            "idle_seconds": self.idle_seconds,
            "utilisation": self.utilisation,
            "lag_count": self.lag.count,
            "lag_sum": self.lag.sum,
            "lag_max": self.lag.max,
            "lag_bounds": list(self.lag.bounds),
            "lag_counts": list(self.lag.counts),
            "slow_callback_threshold": self.slow_callback_threshold,
            "slow_callbacks": self.slow_callbacks,
            "recent_slow_callbacks": [
                {"name": s.name, "seconds": s.seconds} for s in self.recent_slow_callbacks
            ],
            "slowest_callbacks": [
                {"name": s.name, "seconds": s.seconds} for s in self.slowest_callbacks
            ],
        }


class Meter:
    """The running totals of one metered loop (loop thread only)."""

    def __init__(self, loop: Any) -> None:
        self.loop = loop
        if _collector is not None:
            _collector.append(loop)
        self.callbacks = 0
        self.lag_counts = [0] * (len(LAG_BUCKET_BOUNDS_S) + 1)
        self.lag_count = 0
        self.lag_sum = 0.0
        self.lag_max = 0.0
        self.slow_count = 0
        self.recent_slow: list[SlowCallback] = []
        # (seconds, order, SlowCallback): a min-heap of the slowest.
        self.slowest: list[tuple[float, int, SlowCallback]] = []

    def record_lag(self, lag: float) -> None:
        if lag < 0.0:
            lag = 0.0  # due within the clock's resolution
        self.lag_count += 1
        self.lag_sum += lag
        if lag > self.lag_max:
            self.lag_max = lag
        self.lag_counts[bisect.bisect_left(LAG_BUCKET_BOUNDS_S, lag)] += 1

    def record_callback(self, handle: Any, callback: Any, args: Any, seconds: float) -> None:
        """A callback ran for ``seconds`` (``callback``/``args`` read before it
        ran: a handle cancelled while running forgets them)."""
        self.callbacks += 1
        if seconds >= self.loop.slow_callback_duration:
            self.record_slow(handle, callback, args, seconds)

    def record_slow(self, handle: Any, callback: Any, args: Any, seconds: float) -> None:
        self.slow_count += 1
        slow = SlowCallback(format_handle(handle, callback, args), seconds)
        recent = self.recent_slow
        recent.append(slow)
        if len(recent) > SLOW_CALLBACKS_KEPT:
            del recent[0]
        entry = (seconds, self.slow_count, slow)
        if len(self.slowest) < SLOW_CALLBACKS_KEPT:
            heapq.heappush(self.slowest, entry)
        elif seconds > self.slowest[0][0]:
            heapq.heapreplace(self.slowest, entry)

    def snapshot(self) -> LoopMetrics:
        # Iterations and the busy/idle split come from the counters that are
        # always on: one poll per iteration, the time spent in polls, and the
        # time the loop ran.
        stats = self.loop.stats()
        idle = stats["poll_seconds"]
        busy = stats["run_seconds"] - idle
        return LoopMetrics(
            iterations=stats["polls"],
            callbacks=self.callbacks,
            busy_seconds=busy if busy > 0.0 else 0.0,
            idle_seconds=idle,
            lag=LagHistogram(
                count=self.lag_count,
                sum=self.lag_sum,
                max=self.lag_max,
                bounds=LAG_BUCKET_BOUNDS_S,
                counts=tuple(self.lag_counts),
            ),
            slow_callback_threshold=float(self.loop.slow_callback_duration),
            slow_callbacks=self.slow_count,
            recent_slow_callbacks=tuple(self.recent_slow),
            slowest_callbacks=tuple(e[2] for e in sorted(self.slowest, reverse=True)),
        )


# Loops metered while ``collect()`` runs (for ``python -m tideloop run --stats``).
_collector: list[Any] | None = None


def collect() -> list[Any]:
    """From now on, meter every new loop and keep it in the returned list."""
    global _collector
    _collector = []
    return _collector


def _format_seconds(seconds: float) -> str:
    if seconds >= 1.0:
        return f"{seconds:.3f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


def format_summary(loops: list[Any], slowest: int = 5) -> str:
    """The ``python -m tideloop run --stats`` report: one block per loop."""
    lines = [f"tideloop: {len(loops)} loop{'' if len(loops) == 1 else 's'} measured"]
    for n, loop in enumerate(loops, 1):
        m: LoopMetrics = loop.metrics()
        stats = loop.stats()
        total = m.busy_seconds + m.idle_seconds
        lines.append(
            f"loop {n} ({stats['backend']}): {m.iterations} iterations, {m.callbacks} callbacks, "
            f"{stats['events']} I/O events in {_format_seconds(total)}"
        )
        lines.append(
            f"  utilisation {m.utilisation:.1%} (busy {_format_seconds(m.busy_seconds)}, "
            f"idle {_format_seconds(m.idle_seconds)})"
        )
        lag = m.lag
        if lag.count:
            quantiles = ", ".join(
                f"p{round(q * 100)} <= {_format_seconds(lag.quantile(q))}" for q in (0.5, 0.9, 0.99)
            )
            lines.append(
                f"  timer lag: {lag.count} timers, {quantiles}, max {_format_seconds(lag.max)}"
            )
        else:
            lines.append("  timer lag: no timers ran")
        threshold = _format_seconds(m.slow_callback_threshold)
        lines.append(f"  slow callbacks (>= {threshold}): {m.slow_callbacks}")
        for slow in m.slowest_callbacks[:slowest]:
            lines.append(f"    {_format_seconds(slow.seconds):>10}  {slow.name}")
    return "\n".join(lines)
