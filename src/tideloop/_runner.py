"""Entry points: ``run()``, the legacy ``EventLoopPolicy`` and ``install()``.

The modern way needs nothing from here: ``asyncio.run(main(),
loop_factory=tideloop.new_event_loop)`` (3.12+) or
``asyncio.Runner(loop_factory=tideloop.new_event_loop)`` (3.11+). ``run()``
wraps ``asyncio.Runner`` so it inherits asyncio.run's exact semantics:
leftover tasks cancelled, async generators and the default executor shut
down, Ctrl-C cancelling the main task.

The policy API is deprecated from Python 3.14 on; ``install()`` and
``EventLoopPolicy()`` then warn as asyncio's own policy functions do.
"""

from __future__ import annotations

import asyncio
import sys
import warnings
from collections.abc import Coroutine
from typing import Any, TypeVar

from ._loop import EventLoop, new_event_loop

_T = TypeVar("_T")

_POLICY_DEPRECATED = sys.version_info >= (3, 14)


def run(main: Coroutine[Any, Any, _T], *, debug: bool | None = None, **loop_kwargs: Any) -> _T:
    """Run a coroutine on a new tideloop loop, as ``asyncio.run`` does."""
    if asyncio._get_running_loop() is not None:
        raise RuntimeError("asyncio.run() cannot be called from a running event loop")

    def factory() -> EventLoop:
        return new_event_loop(**loop_kwargs)

    with asyncio.Runner(debug=debug, loop_factory=factory) as runner:
        return runner.run(main)


class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):  # type: ignore[misc,valid-type,unused-ignore]
    """asyncio's default policy, but its new loops are tideloop loops."""

    def __init__(self) -> None:
        if _POLICY_DEPRECATED:  # pragma: no cover - 3.14+
            warnings.warn(
                "tideloop.EventLoopPolicy is deprecated with asyncio's policy system; "
                "use asyncio.run(..., loop_factory=tideloop.new_event_loop)",
                DeprecationWarning,
                stacklevel=2,
            )
        super().__init__()

    def new_event_loop(self) -> EventLoop:
        return new_event_loop()


def install() -> None:
    """Make asyncio's default loop a tideloop loop (the legacy policy path)."""
    if _POLICY_DEPRECATED:  # pragma: no cover - 3.14+
        warnings.warn(
            "tideloop.install() is deprecated with asyncio's policy system; "
            "use asyncio.run(..., loop_factory=tideloop.new_event_loop)",
            DeprecationWarning,
            stacklevel=2,
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_event_loop_policy(EventLoopPolicy())
