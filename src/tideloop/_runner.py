"""Entry points: ``run()``, the legacy ``EventLoopPolicy`` and ``install()``.

The modern way needs nothing from here: ``asyncio.run(main(),
loop_factory=tideloop.new_event_loop)`` (3.12+) or
``asyncio.Runner(loop_factory=tideloop.new_event_loop)`` (3.11+). ``run()``
wraps ``asyncio.Runner`` so it inherits asyncio.run's exact semantics:
leftover tasks cancelled, async generators and the default executor shut
down, Ctrl-C cancelling the main task (a second Ctrl-C raising
``KeyboardInterrupt`` at once). Like ``asyncio.run(main,
loop_factory=...)`` it does not make its loop the policy's current loop:
inside ``main`` ``asyncio.get_event_loop()`` returns the running loop, which
is what code written for asyncio.run needs.

The legacy path: ``EventLoopPolicy`` is asyncio's default policy whose
``new_event_loop()`` makes tideloop loops, so everything that consults the
policy (``asyncio.run()`` and ``asyncio.Runner()`` without a loop factory,
``asyncio.new_event_loop()``, the implicit loop of ``asyncio.get_event_loop()``)
gets a tideloop loop; per-thread loops, ``get_event_loop``'s errors and
``DeprecationWarning``s are asyncio's own code, so they match the running
Python exactly.

Python 3.14 deprecates the policy system: reading
``asyncio.DefaultEventLoopPolicy`` and calling ``asyncio.set_event_loop_policy``
warn there. This module reads the base class once at import with that warning
silenced (importing tideloop must not warn), and ``install()`` and
``EventLoopPolicy()`` warn instead, as asyncio's own policy functions do.
"""

from __future__ import annotations

import asyncio
import sys
import warnings
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from ._loop import EventLoop, new_event_loop

_T = TypeVar("_T")

_POLICY_DEPRECATED = sys.version_info >= (3, 14)
_POLICY_DEPRECATION = (
    "is deprecated with asyncio's event loop policy system (Python 3.14); "
    "use asyncio.run(main, loop_factory=tideloop.new_event_loop) "
    "or asyncio.Runner(loop_factory=tideloop.new_event_loop)"
)

if TYPE_CHECKING:
    _DefaultPolicy = asyncio.DefaultEventLoopPolicy
else:
    with warnings.catch_warnings():
        # 3.14+: the module attribute warns; the class itself does not.
        warnings.simplefilter("ignore", DeprecationWarning)
        _DefaultPolicy = asyncio.DefaultEventLoopPolicy


def run(main: Coroutine[Any, Any, _T], *, debug: bool | None = None, **loop_kwargs: Any) -> _T:
    """Run a coroutine on a new tideloop loop, as ``asyncio.run`` does.

    ``loop_kwargs`` go to :func:`tideloop.new_event_loop` (``backend=``).
    Equivalent to ``asyncio.run(main, debug=debug,
    loop_factory=lambda: tideloop.new_event_loop(**loop_kwargs))`` on Python
    3.12+, and available on 3.11 too.
    """
    # asyncio.run's own check, with its message, before any loop exists.
    if asyncio._get_running_loop() is not None:
        raise RuntimeError("asyncio.run() cannot be called from a running event loop")

    def factory() -> EventLoop:
        return new_event_loop(**loop_kwargs)

    with asyncio.Runner(debug=debug, loop_factory=factory) as runner:
        return runner.run(main)


class EventLoopPolicy(_DefaultPolicy):  # type: ignore[misc,valid-type,unused-ignore]
    """asyncio's default policy, but its new loops are tideloop loops.

    Subclass it and override ``new_event_loop`` to configure every loop the
    policy makes (see docs/policies.md).
    """

    def __init__(self) -> None:
        if _POLICY_DEPRECATED:
            warnings.warn(
                f"tideloop.EventLoopPolicy {_POLICY_DEPRECATION}", DeprecationWarning, stacklevel=2
            )
        super().__init__()

    def new_event_loop(self) -> EventLoop:
        return new_event_loop()


def install() -> None:
    """Make asyncio's default loop a tideloop loop (the legacy policy path).

    Sets a new :class:`EventLoopPolicy` as asyncio's policy, after which
    ``asyncio.run()``, ``asyncio.Runner()``, ``asyncio.new_event_loop()`` and
    ``asyncio.get_event_loop()`` create tideloop loops.
    """
    if _POLICY_DEPRECATED:
        warnings.warn(f"tideloop.install() {_POLICY_DEPRECATION}", DeprecationWarning, stacklevel=2)
    with warnings.catch_warnings():
        # Our warning above stands for asyncio's (3.14+) and EventLoopPolicy's.
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_event_loop_policy(EventLoopPolicy())
