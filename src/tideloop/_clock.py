"""VirtualClock: virtual time for tests (``new_event_loop(clock=...)``).

A loop built with a clock reads its time from the clock, so its timers, and
everything built on them (``asyncio.sleep``, ``asyncio.timeout``,
``wait_for``, TLS handshake and shutdown timeouts, Happy Eyeballs delays, a
server's accept back-off), run in virtual time. The clock moves only when
asked: by hand with :meth:`VirtualClock.advance`, or by itself (autojump)
when the loop has nothing left to do but wait for a timer.

The autojump rule is trio's ``MockClock``'s: when no callback is ready and
the loop has waited ``autojump_threshold`` seconds of *real* time for I/O
without any arriving, the clock jumps to the next timer. With a threshold of
0 the loop first polls with timeout 0 and jumps at once if nothing arrived;
with ``math.inf`` the clock never jumps by itself and only ``advance()``
moves it. The trade-off for programs that also wait on real peers: a jump
does not know that a reply is on its way, so with a small threshold a
timeout can fire before a reply that a real clock would have seen in time.
Give such tests a threshold longer than the peers' real latency.

How the clock joins a loop: the loop's constructor sets the instance
attribute ``time`` to the clock's ``time`` (so ``mock.patch.object(loop,
"time")`` still works on top), and wraps its backend's ``poll`` with
``_attach``. Every wait of the loop goes through that ``poll(timeout)``, with
``timeout`` the loop time to the next timer (0 when callbacks are ready, None
when no timer is pending); the wrapper waits the autojump threshold in real
time instead and then moves the clock. The backend's ``wakeup()`` makes a
sleeping poll return: ``advance()`` calls it.

Must not import the loop module (the loop imports this one).
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["VirtualClock", "clock_of"]

_monotonic = time.monotonic
# loop -> the VirtualClock it runs on.
_clocks: weakref.WeakKeyDictionary[Any, VirtualClock] = weakref.WeakKeyDictionary()


def clock_of(loop: Any) -> VirtualClock | None:
    """The virtual clock ``loop`` runs on, or None for a loop on real time."""
    return _clocks.get(loop)


class VirtualClock:
    """A clock that moves only when told to, or when the loop would only wait.

    ``VirtualClock(autojump_threshold=0.0, start=0.0)``: ``start`` is the
    first value of ``loop.time()``; ``autojump_threshold`` is how long (real
    seconds) the loop must be idle before the clock jumps to its next timer
    (0: at once; ``math.inf``: never, only :meth:`advance` moves time).

    One clock may drive several loops (they then share one virtual time); a
    loop is attached with ``tideloop.new_event_loop(clock=clock)``.
    """

    def __init__(self, autojump_threshold: float = 0.0, start: float = 0.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()
        # loop -> its backend's wakeup (weak: a clock does not keep loops alive).
        self._wakeups: weakref.WeakKeyDictionary[Any, Callable[[], None]] = (
            weakref.WeakKeyDictionary()
        )
        self.jumps = 0
        self.autojump_threshold = autojump_threshold

    def __repr__(self) -> str:
        return f"<VirtualClock time={self._now!r} autojump_threshold={self._autojump_threshold!r}>"

    @property
    def autojump_threshold(self) -> float:
        """Real seconds of idleness before the clock jumps to the next timer."""
        return self._autojump_threshold

    @autojump_threshold.setter
    def autojump_threshold(self, value: float) -> None:
        value = float(value)
        if math.isnan(value) or value < 0:
            raise ValueError(f"autojump_threshold must be >= 0, got {value!r}")
        self._autojump_threshold = value
        # A loop waiting with the old threshold re-reads it.
        self._wake_loops()

    def time(self) -> float:
        """The current virtual time (what ``loop.time()`` returns)."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``; timers now due run soon after.

        Safe from any thread: a loop sleeping in its poll wakes up, so its due
        timers run without waiting for I/O.
        """
        seconds = float(seconds)
        if math.isnan(seconds) or seconds < 0:
            raise ValueError(f"time can only move forward, got {seconds!r}")
        with self._lock:
            self._now += seconds
        self._wake_loops()

    def _jump(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds
            self.jumps += 1

    def _wake_loops(self) -> None:
        for wakeup in list(self._wakeups.values()):
            wakeup()

    # -- joining a loop ------------------------------------------------------------

    def _attach(
        self,
        loop: Any,
        poll: Callable[[float | None], list[tuple[int, int]]],
        wakeup: Callable[[], None],
    ) -> Callable[[float | None], list[tuple[int, int]]]:
        """Called by the constructor of a loop that runs on this clock: the
        loop's ``time`` reads the clock (the loop sets it), and its backend's
        ``poll``, wrapped here, waits in virtual time. ``wakeup`` makes the
        loop's poll return (``advance()`` calls it)."""
        self._wakeups[loop] = wakeup
        _clocks[loop] = self
        return self._make_poll(poll)

    def _make_poll(
        self, poll: Callable[[float | None], list[tuple[int, int]]]
    ) -> Callable[[float | None], list[tuple[int, int]]]:
        def virtual_poll(timeout: float | None) -> list[tuple[int, int]]:
            # ``timeout`` is in loop time: None (no timer), 0 (work to do or a
            # timer already due) or the time until the next timer.
            if not timeout:
                return poll(timeout)
            threshold = self._autojump_threshold
            if threshold == math.inf:
                # Only advance() (which wakes the poll) or I/O end the wait.
                return poll(None)
            started = _monotonic()
            events = poll(threshold)
            if events or _monotonic() - started < threshold:
                # I/O, a wake-up, or a signal cut the wait short: not idle.
                return events
            self._jump(timeout)
            return events

        return virtual_poll
