"""loop.metrics(): opt-in health metrics (timer lag, busy/idle time, slow
callbacks). asyncio has no equivalent, so these run on tideloop's backends
only; a virtual clock makes the lag figures exact."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import tideloop
from tideloop._metrics import LAG_BUCKET_BOUNDS_S

BACKENDS = tideloop.available_backends()

MakeLoop = Callable[..., tideloop.EventLoop]


@pytest.fixture(params=BACKENDS)
def make_loop(request: pytest.FixtureRequest) -> Iterator[MakeLoop]:
    loops: list[tideloop.EventLoop] = []

    def make(**kwargs: Any) -> tideloop.EventLoop:
        kwargs.setdefault("metrics", True)
        loop = tideloop.new_event_loop(backend=request.param, **kwargs)
        loops.append(loop)
        return loop

    yield make
    for loop in loops:
        loop.close()


def test_off_by_default(make_loop: MakeLoop, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIDELOOP_METRICS", raising=False)
    loop = make_loop(metrics=None)
    with pytest.raises(RuntimeError, match=r"metrics are off for this loop"):
        loop.metrics()


@pytest.mark.parametrize(("value", "on"), [("1", True), ("0", False), ("", False)])
def test_environment_turns_them_on(
    make_loop: MakeLoop, monkeypatch: pytest.MonkeyPatch, value: str, on: bool
) -> None:
    monkeypatch.setenv("TIDELOOP_METRICS", value)
    loop = make_loop(metrics=None)
    if on:
        assert loop.metrics().iterations == 0
    else:
        with pytest.raises(RuntimeError):
            loop.metrics()
    # An explicit argument wins over the environment.
    assert make_loop(metrics=True).metrics().callbacks == 0


def test_lag_histogram_in_virtual_time(make_loop: MakeLoop) -> None:
    clock = tideloop.VirtualClock(autojump_threshold=float("inf"))
    loop = make_loop(clock=clock)
    done = loop.create_future()
    for delay in (1.0, 2.0, 3.0):
        loop.call_later(delay, lambda: None)
    loop.call_later(10.0, done.set_result, None)
    # Ten seconds pass at once: the timers run 9, 8, 7 and 0 seconds late.
    loop.call_soon(clock.advance, 10.0)
    loop.run_until_complete(done)
    lag = loop.metrics().lag
    assert lag.count == 4
    assert lag.sum == 24.0
    assert lag.max == 9.0
    assert lag.mean == 6.0
    assert lag.bounds == LAG_BUCKET_BOUNDS_S
    assert len(lag.counts) == len(lag.bounds) + 1
    expected = [0] * len(lag.counts)
    expected[0] += 1  # 0 s
    expected[lag.bounds.index(10.0)] += 3  # 7, 8, 9 s: above 5, at most 10
    assert list(lag.counts) == expected
    assert lag.quantile(0.25) == 1e-5
    assert lag.quantile(0.5) == 9.0  # the bucket's bound (10) capped at the max
    assert lag.quantile(1.0) == 9.0


def test_lag_buckets_and_overflow() -> None:
    bounds = LAG_BUCKET_BOUNDS_S
    assert bounds[0] == 1e-5 and bounds[-1] == 10.0
    assert list(bounds) == sorted(bounds)
    # log-spaced: 1, 2, 5 per decade
    assert bounds[:4] == (1e-5, 2e-5, 5e-5, 1e-4)
    loop = tideloop.new_event_loop(metrics=True)
    loop.close()
    meter = tideloop._metrics.Meter(loop)
    for lag in (-1e-9, 1e-5, 1.5e-5, 30.0):
        meter.record_lag(lag)
    snap = meter.snapshot().lag
    assert snap.counts[0] == 2 and snap.counts[1] == 1 and snap.counts[-1] == 1
    assert snap.quantile(1.0) == 30.0
    with pytest.raises(ValueError):
        snap.quantile(0.0)


def test_busy_and_idle_time(make_loop: MakeLoop) -> None:
    loop = make_loop()

    async def main() -> None:
        await asyncio.sleep(0.1)  # idle: waiting in the poll
        time.sleep(0.1)  # busy: a callback that blocks

    loop.run_until_complete(main())
    m = loop.metrics()
    stats = loop.stats()
    assert m.idle_seconds >= 0.09
    assert m.busy_seconds >= 0.09
    assert 0.0 < m.utilisation < 1.0
    assert m.utilisation == pytest.approx(m.busy_seconds / (m.busy_seconds + m.idle_seconds))
    # One poll per iteration, and every callback went through the meter.
    assert m.iterations == stats["polls"]
    assert m.callbacks == stats["callbacks_run"]
    assert m.idle_seconds == pytest.approx(stats["poll_seconds"])


def _named_sleeper(name: str, seconds: float) -> Callable[[], None]:
    def sleeper() -> None:
        time.sleep(seconds)

    sleeper.__qualname__ = sleeper.__name__ = name
    return sleeper


def test_slow_callbacks_without_debug_mode(make_loop: MakeLoop) -> None:
    loop = make_loop()
    loop.set_debug(False)  # whatever PYTHONASYNCIODEBUG says
    # Thresholds well above a loaded machine's scheduling hiccups.
    loop.slow_callback_duration = 0.05

    async def main() -> None:
        for i in range(12):
            loop.call_soon(_named_sleeper(f"slow_{i:02d}", 0.055))
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        loop.call_soon(_named_sleeper("fast", 0.0))  # not counted

    loop.run_until_complete(main())
    m = loop.metrics()
    assert m.slow_callback_threshold == 0.05
    assert m.slow_callbacks == 12
    # The last ten, oldest first, named as asyncio names handles.
    names = [s.name for s in m.recent_slow_callbacks]
    assert [n.split()[1].split("(")[0] for n in names] == [f"slow_{i:02d}" for i in range(2, 12)]
    assert all(n.startswith("<Handle slow_") for n in names)
    assert all(s.seconds >= 0.055 for s in m.recent_slow_callbacks)
    slowest = [s.seconds for s in m.slowest_callbacks]
    assert len(slowest) == 10 and slowest == sorted(slowest, reverse=True)
    # Nothing slower than the tenth slowest was left out.
    recent = [s.seconds for s in m.recent_slow_callbacks]
    assert {d for d in recent if d > min(slowest)} <= set(slowest)
    assert loop.stats()["slow_callbacks"] == 0  # stats() counts debug mode's


def test_slow_io_callback_is_seen(make_loop: MakeLoop) -> None:
    # An I/O callback run straight from the poll (the direct path) is timed too.
    loop = make_loop()
    loop.slow_callback_duration = 0.05
    a, b = socket.socketpair()
    got = loop.create_future()

    def on_readable() -> None:
        time.sleep(0.06)
        loop.remove_reader(a.fileno())
        got.set_result(a.recv(1))

    with a, b:
        loop.add_reader(a.fileno(), on_readable)
        threading.Thread(target=b.send, args=(b"x",)).start()
        assert loop.run_until_complete(got) == b"x"
    m = loop.metrics()
    assert m.slow_callbacks == 1
    assert "on_readable" in m.recent_slow_callbacks[0].name


def test_slow_callbacks_in_debug_mode_still_warn(
    make_loop: MakeLoop, caplog: pytest.LogCaptureFixture
) -> None:
    loop = make_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = 0.05

    async def main() -> None:
        time.sleep(0.06)

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        loop.run_until_complete(main())
    assert loop.metrics().slow_callbacks == 1
    assert loop.stats()["slow_callbacks"] == 1
    assert any(
        r.getMessage().startswith("Executing <Task") and "took 0.0" in r.getMessage()
        for r in caplog.records
    )


def _io_order(loop: asyncio.AbstractEventLoop) -> list[str]:
    """The order of I/O, timer and call_soon callbacks: first with only I/O
    ready when the loop polls (tideloop runs those straight from the poll),
    then with a due timer and a queued callback as well."""
    order: list[str] = []
    a, b = socket.socketpair()
    c, d = socket.socketpair()

    got = loop.create_future()

    def reader(name: str, sock: socket.socket) -> None:
        order.append(name + ":" + sock.recv(1).decode())
        loop.call_soon(order.append, name + "-soon")
        if name == "c" and not got.done():
            got.set_result(None)

    async def main() -> None:
        loop.add_reader(a.fileno(), reader, "a", a)
        loop.add_reader(c.fileno(), reader, "c", c)
        b.send(b"1")
        d.send(b"1")
        await got  # nothing else is ready: the loop polls and finds both fds
        order.append("woken")
        b.send(b"2")
        d.send(b"2")
        loop.call_later(0, order.append, "timer")
        loop.call_soon(order.append, "soon")
        for _ in range(3):
            await asyncio.sleep(0)
        loop.remove_reader(a.fileno())
        loop.remove_reader(c.fileno())

    try:
        loop.run_until_complete(main())
    finally:
        for s in (a, b, c, d):
            s.close()
    return order


@pytest.mark.parametrize("debug", [False, True])
def test_metered_loop_runs_callbacks_in_the_same_order(make_loop: MakeLoop, debug: bool) -> None:
    plain = make_loop(metrics=False)
    metered = make_loop(metrics=True)
    plain.set_debug(debug)
    metered.set_debug(debug)
    assert _io_order(metered) == _io_order(plain)


def test_callback_errors_reach_the_handler(make_loop: MakeLoop) -> None:
    loop = make_loop()
    seen: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _l, ctx: seen.append(ctx))
    loop.call_soon(lambda: 1 / 0)
    loop.run_until_complete(asyncio.sleep(0))
    assert len(seen) == 1 and isinstance(seen[0]["exception"], ZeroDivisionError)
    assert loop.metrics().callbacks >= 2


def test_metrics_cost_nothing_when_off() -> None:
    # Without metrics, the loop runs its own methods: nothing is replaced.
    code = (
        "import tideloop; loop = tideloop.new_event_loop(metrics=False);"
        "print(sorted(n for n in ('_run_once', '_run_handles', '_run_handles_debug', 'time')"
        " if n in vars(loop))); loop.close()"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_as_dict(make_loop: MakeLoop) -> None:
    loop = make_loop()
    loop.run_until_complete(asyncio.sleep(0))
    d = loop.metrics().as_dict()
    assert d["iterations"] >= 1 and d["lag_bounds"] == list(LAG_BUCKET_BOUNDS_S)
    assert set(d) >= {"busy_seconds", "idle_seconds", "utilisation", "slow_callbacks"}
