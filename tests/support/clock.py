"""A fake clock for timer tests: the loop's time moves only when the test
moves it, so tests assert the order and the deadlines of timers and timeouts
without waiting for them.

It is installed on the loop instance (``mock.patch.object(loop, "time",
clock.time)``, the ``fake_clock`` fixture in tests/conftest.py). Stock
asyncio and tideloop both read ``self.time()`` to schedule timers and to pick
the ones that are due, so the same test runs on both.

The loop still blocks in its poll for as long as the earliest timer seems to
be away, in real seconds, and the fake time does not move meanwhile: so a test
never runs the loop until a timer fires; it advances the clock past the
deadline first and then runs the loop (``run_once`` runs one iteration with a
zero poll timeout; ``run_until_complete`` returns once what is due has run).
Inside a coroutine, ``advance_until`` moves the clock one step per iteration.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        assert seconds >= 0, "a monotonic clock does not go back"
        self.now += seconds

    def set(self, now: float) -> None:
        assert now >= self.now, "a monotonic clock does not go back"
        self.now = now

    async def advance_until(self, aw: Awaitable[object], step: float) -> None:
        """Advance by ``step`` per loop iteration until ``aw`` is done.

        For code whose timers are set inside the loop, where the test cannot
        tell when they were scheduled: the clock moves as the loop turns,
        never faster than one step per iteration.
        """
        fut = asyncio.ensure_future(aw)
        while not fut.done():
            self.advance(step)
            await asyncio.sleep(0)


def run_once(loop: asyncio.AbstractEventLoop) -> None:
    """Run one iteration: the poll does not wait, due timers run."""
    loop.call_soon(loop.stop)
    loop.run_forever()
