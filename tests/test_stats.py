"""loop.stats(): tideloop's introspection counters (asyncio has no equivalent,
so these tests run on tideloop's backends only)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest

import tideloop

BACKENDS = tideloop.available_backends()


@pytest.fixture(params=BACKENDS)
def tloop(request: pytest.FixtureRequest) -> Iterator[tideloop.EventLoop]:
    loop = tideloop.new_event_loop(backend=request.param)
    yield loop
    loop.close()


def test_counters_follow_what_ran(tloop: tideloop.EventLoop) -> None:
    before = tloop.stats()
    assert before["backend"] in BACKENDS
    assert before["callbacks_run"] == 0 and before["timers_scheduled"] == 0

    async def main() -> None:
        for _ in range(10):
            await asyncio.sleep(0)
        h = tloop.call_later(60, lambda: None)
        h.cancel()
        tloop.call_later(60, lambda: None)

    tloop.run_until_complete(main())
    after = tloop.stats()
    assert after["callbacks_run"] >= 11  # the task's steps
    assert after["timers_scheduled"] == 2
    assert after["timers_cancelled"] == 1
    assert after["timers_pending"] == 1
    assert after["polls"] >= 11
    assert 0.0 <= after["poll_seconds"] <= after["run_seconds"]


def test_io_events_and_poll_time(tloop: tideloop.EventLoop) -> None:
    a, b = socket.socketpair()
    with a, b:
        got = tloop.create_future()
        tloop.add_reader(a.fileno(), lambda: got.done() or got.set_result(a.recv(10)))
        tloop.call_later(0.05, b.send, b"x")
        assert tloop.run_until_complete(got) == b"x"
        tloop.remove_reader(a.fileno())
    stats = tloop.stats()
    assert stats["events"] >= 1
    # The loop waited for the timer in the backend.
    assert stats["poll_seconds"] >= 0.03
    assert stats["run_seconds"] >= stats["poll_seconds"]


def test_slow_callbacks_counted_in_debug_mode(tloop: tideloop.EventLoop) -> None:
    tloop.set_debug(True)
    tloop.slow_callback_duration = 0.001

    def busy() -> None:
        end = time.monotonic() + 0.01
        while time.monotonic() < end:
            pass

    async def main() -> None:
        tloop.call_soon(busy)
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    tloop.run_until_complete(main())
    assert tloop.stats()["slow_callbacks"] >= 1
