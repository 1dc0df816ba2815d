"""Test-runner glue for virtual time: helpers, and a pytest plugin.

Importable without pytest. pytest loads this module as a plugin (the
``pytest11`` entry point named ``tideloop``) and calls ``pytest_configure``,
which imports pytest and registers the fixtures; nothing else here imports
pytest, so tideloop does not depend on it.

Helpers (any test runner):
- :func:`virtual_loop_factory` makes a loop factory whose loops run on a
  virtual clock: pass it as ``loop_factory`` to ``asyncio.Runner``, to
  ``asyncio.run`` (3.12+), to ``unittest.IsolatedAsyncioTestCase.loop_factory``
  (3.13+), to anyio's asyncio backend options, or return it from
  pytest-asyncio's ``pytest_asyncio_loop_factories`` hook;
- :func:`current_clock` finds the clock of the running loop from a test.

Fixtures (pytest): ``virtual_clock`` (a fresh ``VirtualClock()``) and
``virtual_loop_factory`` (a factory of loops on that clock). See
docs/testing.md for each runner.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ._clock import VirtualClock, clock_of
from ._loop import EventLoop, new_event_loop

if TYPE_CHECKING:  # pragma: no cover
    import pytest

__all__ = ["VirtualLoopFactory", "current_clock", "virtual_loop_factory"]


class VirtualLoopFactory:
    """A loop factory: each call makes a tideloop loop on a virtual clock.

    With a ``clock``, every loop runs on it (they share its time); without
    one, each loop gets a new ``VirtualClock(autojump_threshold, start)``.
    A callable object rather than a function, so that it can be a class
    attribute (``IsolatedAsyncioTestCase.loop_factory``) without binding.
    """

    def __init__(
        self,
        clock: VirtualClock | None = None,
        *,
        autojump_threshold: float = 0.0,
        start: float = 0.0,
        **loop_kwargs: Any,
    ) -> None:
        self.clock = clock
        self._autojump_threshold = autojump_threshold
        self._start = start
        self._loop_kwargs = loop_kwargs

    def __call__(self) -> EventLoop:
        clock = self.clock
        if clock is None:
            clock = VirtualClock(autojump_threshold=self._autojump_threshold, start=self._start)
        return new_event_loop(clock=clock, **self._loop_kwargs)

    def __repr__(self) -> str:
        return f"<VirtualLoopFactory clock={self.clock!r}>"


def virtual_loop_factory(
    clock: VirtualClock | None = None,
    *,
    autojump_threshold: float = 0.0,
    start: float = 0.0,
    **loop_kwargs: Any,
) -> VirtualLoopFactory:
    """A loop factory for virtual-time tests (``loop_kwargs``: ``backend=``, ``metrics=``)."""
    return VirtualLoopFactory(
        clock, autojump_threshold=autojump_threshold, start=start, **loop_kwargs
    )


def current_clock() -> VirtualClock:
    """The virtual clock of the running loop (call it from a coroutine)."""
    loop = asyncio.get_running_loop()
    clock = clock_of(loop)
    if clock is None:
        raise RuntimeError(f"the running loop {loop!r} has no virtual clock")
    return clock


# -- the pytest plugin (the `pytest11` entry point) ------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    import pytest

    class VirtualTimeFixtures:
        @pytest.fixture
        def virtual_clock(self) -> VirtualClock:
            """A fresh VirtualClock (autojump at once when the loop is idle)."""
            return VirtualClock()

        @pytest.fixture
        def virtual_loop_factory(self, virtual_clock: VirtualClock) -> VirtualLoopFactory:
            """A loop factory whose loops run on the ``virtual_clock`` fixture."""
            return VirtualLoopFactory(virtual_clock)

    config.pluginmanager.register(VirtualTimeFixtures(), "tideloop-virtual-time-fixtures")
